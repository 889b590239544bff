"""The job queue of the PostgreSQL history: Procrastinate's schema, beside our tables.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 00:00:01

Procrastinate (pinned in the ``postgres`` extra) keeps its jobs in its own tables in
the same database and schema as the history, so that a generation's row and its queue
job are written in one transaction. This revision applies the schema that the pinned
version ships (``SchemaManager.get_schema()``); a later Procrastinate release is
adopted by a new revision that applies its migration files. SQLite has no queue: the
local runner takes pending rows from the history itself, and this revision does nothing.
"""

from __future__ import annotations

from typing import Sequence, Union

from alembic import op

revision: str = "0003"
down_revision: Union[str, None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from services.jobs.queue_schema import apply_queue_schema

    apply_queue_schema(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from services.jobs.queue_schema import drop_queue_schema

    drop_queue_schema(op.get_bind())
