"""Initial schema: generations and prompts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

STATUSES = ("pending", "processing", "completed", "failed")


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=50), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("file_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                *STATUSES,
                name="generation_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("generation_time_seconds", sa.Float(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.CheckConstraint("duration_seconds > 0", name=op.f("ck_generations_duration_positive")),
        sa.CheckConstraint("sample_rate > 0", name=op.f("ck_generations_sample_rate_positive")),
        sa.CheckConstraint("channels BETWEEN 1 AND 8", name=op.f("ck_generations_channels_range")),
        sa.CheckConstraint(
            "file_size_bytes IS NULL OR file_size_bytes >= 0",
            name=op.f("ck_generations_file_size_non_negative"),
        ),
        sa.CheckConstraint(
            "generation_time_seconds IS NULL OR generation_time_seconds >= 0",
            name=op.f("ck_generations_generation_time_non_negative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
    )
    op.create_index("ix_generations_created_at", "generations", ["created_at"])
    op.create_index("ix_generations_status_created_at", "generations", ["status", "created_at"])

    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column("use_count", sa.Integer(), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("use_count >= 1", name=op.f("ck_prompts_use_count_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompts")),
        sa.UniqueConstraint("text_sha256", name=op.f("uq_prompts_text_sha256")),
    )
    op.create_index("ix_prompts_use_count_last_used_at", "prompts", ["use_count", "last_used_at"])


def downgrade() -> None:
    op.drop_index("ix_prompts_use_count_last_used_at", table_name="prompts")
    op.drop_table("prompts")
    op.drop_index("ix_generations_status_created_at", table_name="generations")
    op.drop_index("ix_generations_created_at", table_name="generations")
    op.drop_table("generations")
