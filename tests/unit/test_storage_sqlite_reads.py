"""The history list read with ``sqlite3`` alone gives what the SQLAlchemy path gives."""

from __future__ import annotations

import sqlite3

import pytest

from services.storage import (
    complete_generation,
    create_generation,
    dispose_engines,
    fail_generation,
    get_all_generations,
    get_session,
    init_db,
    update_generation_status,
)
from services.storage.sqlite_reads import list_generations, sqlite_file


def record(session, index: int, **extra):
    return create_generation(session=session, prompt=f"techno at {120 + index} BPM", model_name="procedural",
                             duration_seconds=4.0 + index, sample_rate=32000, channels=2,
                             file_path=f"/out/gen_{index:08d}.wav", job_id=f"gen_{index:08d}", **extra)


@pytest.fixture
def history(tmp_path):
    """A SQLite history with one generation of every final status, and one pending."""
    path = tmp_path / "history.db"
    url = f"sqlite:///{path}"
    init_db(url)
    with get_session(url) as session:
        done = record(session, 0, runner="cli", request={"duration": 4.0, "seed": 3, "bit_depth": "PCM_16"})
        complete_generation(session=session, generation_id=done.id, generation_time=0.25, file_size_bytes=512_044,
                            metadata={"bpm": 121.5, "key": "F# minor", "loudness_lufs": -16.0,
                                      "true_peak_dbtp": -1.2, "nested": {"a": [1, 2.5, None]}})
        failed = record(session, 1, model_version="v1")
        fail_generation(session, failed.id, "GPU fell off the bus")
        cancelled = record(session, 2)
        update_generation_status(session, cancelled.id, "cancelled")
        record(session, 3)  # pending
    yield path, url
    dispose_engines()


def orm_dicts(url, **query):
    with get_session(url, readonly=True) as session:
        return [g.to_dict() for g in get_all_generations(session, **query)]


@pytest.mark.parametrize("query", [
    {"limit": 20, "offset": 0, "status": None},
    {"limit": None, "offset": 0, "status": None},
    {"limit": 2, "offset": 1, "status": None},
    {"limit": 20, "offset": 0, "status": "completed"},
    {"limit": 20, "offset": 0, "status": "failed"},
    {"limit": 20, "offset": 5, "status": None},
])
def test_same_rows_as_the_orm(history, query):
    path, url = history
    fast = list_generations(path, **query)
    assert fast == orm_dicts(url, **query)
    assert fast is not None and all(data["created_at"].endswith("+00:00") for data in fast)


def test_values_read_back_as_stored(history):
    path, _ = history
    (done,) = list_generations(path, limit=20, offset=0, status="completed")
    assert done["metadata"]["nested"] == {"a": [1, 2.5, None]} and done["key"] == "F# minor"
    assert done["bpm"] == 121.5 and done["request"] == {"duration": 4.0, "seed": 3, "bit_depth": "PCM_16"}
    assert done["file_size_bytes"] == 512_044 and done["completed_at"] >= done["created_at"]


def test_defers_when_a_job_is_processing(history):
    path, url = history
    with get_session(url) as session:
        pending = get_all_generations(session, status="pending")[0]
        update_generation_status(session, pending.id, "processing")
    assert list_generations(path, limit=20, offset=0, status=None) is None


def test_defers_when_the_schema_is_not_current(history):
    path, _ = history
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0002'")
    assert list_generations(path, limit=20, offset=0, status=None) is None


def test_defers_on_an_error_and_on_a_limit_below_one(history, tmp_path):
    path, _ = history
    assert list_generations(path, limit=0, offset=0, status=None) is None
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()  # no tables
    assert list_generations(empty, limit=20, offset=0, status=None) is None
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("not a database, " * 100)
    assert list_generations(not_a_database, limit=20, offset=0, status=None) is None
    folder = tmp_path / "folder.db"
    folder.mkdir()
    assert list_generations(folder, limit=20, offset=0, status=None) is None


def test_sqlite_file_takes_only_plain_urls_of_existing_files(history, tmp_path, monkeypatch):
    path, url = history
    assert sqlite_file(url) == path
    monkeypatch.chdir(tmp_path)
    assert sqlite_file("sqlite:///history.db").resolve() == path.resolve()  # relative to the working folder
    for other in ("postgresql://u@h/db", "sqlite://", "sqlite:///:memory:", f"{url}?mode=ro",
                  f"sqlite:///{tmp_path / 'missing.db'}"):
        assert sqlite_file(other) is None
