"""The start-up schema check: one query when current, Alembic only when a migration must run.

Each case runs on SQLite and on PostgreSQL (``TEST_POSTGRES_URL``).
"""

from __future__ import annotations

from unittest import mock

import pytest
from sqlalchemy import inspect, text

from services.storage import dispose_engines, get_engine, get_session, init_db
from services.storage import schema
from services.storage.database import get_engine_unmigrated
from tests.databases import database_url  # noqa: F401  (fixture)


def test_static_head_is_alembics_head():
    from alembic.script import ScriptDirectory

    assert schema.HEAD_REVISION == ScriptDirectory.from_config(schema.alembic_config()).get_current_head()
    assert schema.head_revision() == schema.HEAD_REVISION


def test_is_current_only_at_the_head(database_url):  # noqa: F811
    engine = get_engine_unmigrated(database_url)
    assert not schema.is_current(engine)  # empty: no alembic_version table
    schema.upgrade_to_head(engine)
    assert schema.is_current(engine)
    schema.downgrade_to_base(engine)  # the table stays, with no row
    assert not schema.is_current(engine)


def test_current_database_opens_without_running_alembic(database_url):  # noqa: F811
    init_db(database_url)
    dispose_engines()  # as a new process would
    with mock.patch.object(schema, "upgrade_to_head", side_effect=AssertionError("Alembic ran")):
        with get_session(database_url, readonly=True) as session:
            assert session.execute(text("SELECT count(*) FROM generations")).scalar() == 0


def test_database_behind_the_head_is_migrated_on_first_use(database_url):  # noqa: F811
    from alembic import command

    engine = get_engine_unmigrated(database_url)
    schema.upgrade_to_head(engine)
    with engine.begin() as connection:
        command.downgrade(schema.alembic_config(connection), "0001")
    assert not schema.is_current(engine)
    dispose_engines()
    migrated = get_engine(database_url)
    assert schema.current_revision(migrated) == schema.HEAD_REVISION
    assert "lease_owner" in {c["name"] for c in inspect(migrated).get_columns("generations")}


def test_unreachable_database_is_not_current(tmp_path):
    from sqlalchemy import create_engine

    folder = tmp_path / "not-a-file.db"
    folder.mkdir()  # SQLite cannot open a folder: the check says False, Alembic then reports it
    assert not schema.is_current(create_engine(f"sqlite:///{folder}"))


def test_init_db_reports_a_database_it_cannot_open(tmp_path):
    from services.errors import StorageError

    folder = tmp_path / "history.db"
    folder.mkdir()
    with pytest.raises(StorageError, match="history.db"):
        init_db(f"sqlite:///{folder}")
    dispose_engines()
