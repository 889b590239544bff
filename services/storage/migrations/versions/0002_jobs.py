"""Jobs: the cancelled status, leases, progress, the job id, and tempo and key as columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 00:00:00

- status gains ``cancelled``; ``processing -> pending`` (a re-queue) becomes legal in code.
- a running job holds a lease: ``lease_owner`` ("host:pid:start") and ``heartbeat_at``;
  ``started_at``, ``attempts``, ``progress_step`` and ``cancel_requested_at`` follow it.
- ``job_id`` (unique; the file's name), ``runner``, ``request`` (duration, seed, bit depth)
  and ``queue_job_id`` (the Procrastinate job, PostgreSQL only).
- ``bpm`` and ``musical_key`` (indexed for search), ``loudness_lufs`` and ``true_peak_dbtp``
  copied out of the metadata JSON, so lists and searches read no JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD_STATUSES = ("pending", "processing", "completed", "failed")
NEW_STATUSES = OLD_STATUSES + ("cancelled",)
_JOB_ID = re.compile(r"([A-Za-z0-9_-]{1,64})\.[A-Za-z0-9]+")  # a whole file name: "<job id>.<ext>"
_BATCH = 1000


def _status_check(statuses) -> str:
    return "status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"


def upgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_constraint(op.f("ck_generations_generation_status"), type_="check")
        batch.create_check_constraint(op.f("ck_generations_generation_status"), _status_check(NEW_STATUSES))
        batch.add_column(sa.Column("job_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("runner", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("request", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("progress_step", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("queue_job_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("bpm", sa.Float(), nullable=True))
        batch.add_column(sa.Column("musical_key", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("loudness_lufs", sa.Float(), nullable=True))
        batch.add_column(sa.Column("true_peak_dbtp", sa.Float(), nullable=True))
        batch.create_check_constraint(op.f("ck_generations_attempts_non_negative"), "attempts >= 0")
        batch.create_unique_constraint(op.f("uq_generations_job_id"), ["job_id"])
    op.create_index("ix_generations_musical_key_created_at_id", "generations", ["musical_key", "created_at", "id"])
    op.create_index("ix_generations_bpm", "generations", ["bpm"])
    _copy_out_of_metadata()


def _copy_out_of_metadata() -> None:
    """Fill job_id, bpm and musical_key of the rows recorded before this revision."""
    connection = op.get_bind()
    generations = sa.table(
        "generations",
        sa.column("id", sa.String),
        sa.column("file_path", sa.Text),
        sa.column("metadata", sa.Text),
        sa.column("job_id", sa.String),
        sa.column("bpm", sa.Float),
        sa.column("musical_key", sa.String),
        sa.column("loudness_lufs", sa.Float),
        sa.column("true_peak_dbtp", sa.Float),
    )
    seen_job_ids: set[str] = set()
    last_id = ""
    while True:
        rows = connection.execute(
            sa.select(generations.c.id, generations.c.file_path, sa.cast(generations.c.metadata, sa.Text))
            .where(generations.c.id > last_id)
            .order_by(generations.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for generation_id, file_path, metadata_text in rows:
            values = _derived_values(file_path, metadata_text, seen_job_ids)
            if values:
                connection.execute(
                    generations.update().where(generations.c.id == generation_id).values(**values)
                )
        last_id = rows[-1][0]


def _derived_values(file_path, metadata_text, seen_job_ids: set) -> dict:
    values = {}
    match = _JOB_ID.fullmatch(str(file_path or "").replace("\\", "/").rsplit("/", 1)[-1])
    if match and match.group(1) not in seen_job_ids:
        seen_job_ids.add(match.group(1))
        values["job_id"] = match.group(1)
    try:
        metadata = json.loads(metadata_text) if metadata_text else None
    except ValueError:
        metadata = None
    if isinstance(metadata, dict):
        for field, column, positive in (("bpm", "bpm", True), ("loudness_lufs", "loudness_lufs", False),
                                        ("true_peak_dbtp", "true_peak_dbtp", False)):
            value = metadata.get(field)
            if (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and (value > 0 or not positive)):
                values[column] = float(value)
        key = metadata.get("key")
        if isinstance(key, str) and 0 < len(key) <= 16:
            values["musical_key"] = key
    return values


def downgrade() -> None:
    op.execute("DELETE FROM generations WHERE status = 'cancelled'")
    op.drop_index("ix_generations_bpm", table_name="generations")
    op.drop_index("ix_generations_musical_key_created_at_id", table_name="generations")
    with op.batch_alter_table("generations") as batch:
        batch.drop_constraint(op.f("uq_generations_job_id"), type_="unique")
        batch.drop_constraint(op.f("ck_generations_attempts_non_negative"), type_="check")
        for column in ("true_peak_dbtp", "loudness_lufs", "musical_key", "bpm", "queue_job_id", "cancel_requested_at", "heartbeat_at",
                       "lease_owner", "started_at", "attempts", "progress_step", "request", "runner",
                       "job_id"):
            batch.drop_column(column)
        batch.drop_constraint(op.f("ck_generations_generation_status"), type_="check")
        batch.create_check_constraint(op.f("ck_generations_generation_status"), _status_check(OLD_STATUSES))
