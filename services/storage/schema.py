"""Alembic, driven from code: the migration scripts ship inside the package.

``upgrade_to_head`` is what :func:`services.storage.init_db` runs when the schema is
behind (:func:`is_current` first reads the stored revision with one query and compares
it with :data:`HEAD_REVISION`, so a current database costs no Alembic import); it is safe when
several processes start on a fresh database at once (SQLite: the migration runs in a
``BEGIN IMMEDIATE`` transaction; PostgreSQL: under a transaction-level advisory lock).
Developers create new revisions with the Alembic command line::

    alembic -c services/storage/alembic.ini revision --autogenerate -m "what changed"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "HEAD_REVISION",
    "READONLY_OPTION",
    "SCRIPT_LOCATION",
    "alembic_config",
    "current_revision",
    "downgrade_to_base",
    "head_revision",
    "include_name",
    "is_current",
    "upgrade_to_head",
]

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"

# The newest revision in migrations/versions (a test holds it equal to Alembic's head):
# known statically, so the start-up check needs neither Alembic nor the scripts.
HEAD_REVISION = "0003"

# Execution option of read-only connections: SQLite begins them DEFERRED, not IMMEDIATE.
READONLY_OPTION = "dgx_music_readonly"

# Arbitrary 64-bit key of the PostgreSQL advisory lock that serializes migrations.
_ADVISORY_LOCK_KEY = 0x64677820_6D757369  # "dgx musi"


def include_name(name: Optional[str], type_: str, parent_names: dict) -> bool:
    """Alembic's filter for comparing the database with the models: only the history's own
    tables count; the job queue's (``procrastinate_*``, PostgreSQL) come from migration 0003,
    which applies Procrastinate's schema, not from our models."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def alembic_config(connection: Optional["Connection"] = None) -> "Config":
    """An Alembic ``Config`` for the packaged scripts; ``env.py`` uses ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of the packaged migrations."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: "Engine") -> Optional[str]:
    """The revision a database is at (``None`` for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.execution_options(**{READONLY_OPTION: True}).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: "Engine") -> bool:
    """True when the database is at :data:`HEAD_REVISION` (one read-only query; an empty
    database, a missing ``alembic_version`` table or any failure reads False, and Alembic
    then decides)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.execution_options(**{READONLY_OPTION: True}).connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return False
    return rows == [HEAD_REVISION]


def _run(engine: "Engine", command_name: str, revision: str) -> None:
    from alembic import command
    from sqlalchemy import text

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        getattr(command, command_name)(alembic_config(connection), revision)


def upgrade_to_head(engine: "Engine") -> None:
    """Apply every migration the database lacks, in one transaction."""
    _run(engine, "upgrade", "head")


def downgrade_to_base(engine: "Engine") -> None:
    """Undo every migration (drops the history's tables), in one transaction."""
    _run(engine, "downgrade", "base")
