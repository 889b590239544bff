"""services.storage: the generation history, on SQLite and on a real PostgreSQL server.

Every database test runs once per backend. The PostgreSQL cases need
``TEST_POSTGRES_URL`` (``eval "$(scripts/postgres-test-server.sh start)"``) and are
skipped with that hint when it is unset; each test gets a fresh schema that is
dropped afterwards. SQLite cases use a fresh file under ``tmp_path``.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text

import services.storage as storage
from services.errors import GenerationNotFoundError, InvalidTransitionError, StorageError
from services.storage import (
    ALLOWED_TRANSITIONS,
    GenerationStatus,
    StorageValueError,
    complete_generation,
    count_generations,
    create_generation,
    delete_generation,
    dispose_engines,
    fail_generation,
    get_all_generations,
    get_database_stats,
    get_engine,
    get_generation,
    get_most_used_prompts,
    get_pending_generations,
    get_prompt_by_text,
    get_session,
    init_db,
    reset_database,
    track_prompt_usage,
    update_generation_status,
)
from services.storage import schema
from services.storage.database import SQLITE_BUSY_TIMEOUT_SECONDS, resolve_url
from services.storage.models import Base, UTCDateTime
from services.storage.validation import json_safe
from tests.postgres import fresh_postgres_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ENV = "TEST_POSTGRES_URL"
S = GenerationStatus

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A URL of an empty database (nothing created yet) of each backend."""
    try:
        if request.param == "sqlite":
            yield f"sqlite:///{tmp_path / 'history' / 'generations.db'}"
        else:
            base = os.environ.get(POSTGRES_ENV, "").strip()
            if not base:
                pytest.skip(
                    f"{POSTGRES_ENV} is not set; start a server with "
                    '`eval "$(scripts/postgres-test-server.sh start)"`'
                )
            # A session time zone far from UTC: timestamps must still come back as UTC.
            with fresh_postgres_schema(base, time_zone="Asia/Kolkata") as url:
                yield url
    finally:
        dispose_engines()


@pytest.fixture
def db(database_url):
    """An initialized, empty history that ``get_session()`` uses by default."""
    init_db(database_url)
    return database_url


def new_generation(session, **overrides):
    arguments = dict(
        prompt="upbeat electronic dance music at 140 BPM",
        model_name="musicgen-small",
        duration_seconds=16.0,
        sample_rate=32000,
        channels=2,
        file_path="data/outputs/2025/01/01/gen_0001.wav",
    )
    arguments.update(overrides)
    return create_generation(session=session, **arguments)


def generation_in(status: GenerationStatus) -> str:
    """The id of a committed generation that has reached ``status`` by the normal path."""
    with get_session() as session:
        generation_id = new_generation(session).id
    with get_session() as session:
        if status is S.PROCESSING:
            update_generation_status(session, generation_id, "processing")  # str works too
        elif status is S.COMPLETED:
            complete_generation(session, generation_id, generation_time=2.0, file_size_bytes=10)
        elif status is S.FAILED:
            fail_generation(session, generation_id, "model crashed")
        elif status is S.CANCELLED:
            update_generation_status(session, generation_id, S.CANCELLED)
    return generation_id


def snapshot(generation_id: str):
    with get_session(readonly=True) as session:
        generation = get_generation(session, generation_id)
        return None if generation is None else generation.to_dict()


def table_counts():
    with get_session(readonly=True) as session:
        return count_generations(session), get_database_stats(session)["total_prompt_uses"]


# --------------------------------------------------------------------------- public surface


def test_public_names_are_pinned():
    assert sorted(storage.__all__) == sorted(
        [
            "ALLOWED_TRANSITIONS", "Generation", "GenerationStatus", "Prompt", "StorageValueError",
            "complete_generation", "count_generations", "create_generation", "delete_generation",
            "dispose_engines", "fail_generation", "get_all_generations", "get_database_stats",
            "get_engine", "get_generation", "get_most_used_prompts", "get_pending_generations",
            "get_prompt_by_text", "get_session", "init_db", "reset_database", "track_prompt_usage",
            "update_generation_status",
        ]
    )
    for name in storage.__all__:
        assert getattr(storage, name) is not None
    assert issubclass(StorageValueError, (ValueError, StorageError))


# --------------------------------------------------------------------------- the spec's workflow


def test_spec_workflow_reads_the_id_after_the_session_closed(db):
    prompt = "upbeat electronic dance music at 140 BPM"
    with get_session() as session:
        generation = create_generation(
            session=session,
            prompt=prompt,
            model_name="musicgen-small",
            duration_seconds=16.0,
            sample_rate=32000,
            channels=2,
            file_path="data/outputs/2025/01/01/gen_1a2b3c4d.wav",
        )
    assert inspect(generation).detached
    metadata = {"duration_seconds": 16.0, "bpm": np.float64(140.0), "peak_amplitude": np.float32(0.5)}
    with get_session() as session:
        complete_generation(
            session=session,
            generation_id=generation.id,
            generation_time=3.25,
            file_size_bytes=2_048_044,
            metadata=metadata,
        )
    stored = snapshot(generation.id)
    assert uuid.UUID(stored["id"]).version == 4
    assert stored["status"] == "completed"
    assert stored["prompt"] == prompt
    assert (stored["duration_seconds"], stored["sample_rate"], stored["channels"]) == (16.0, 32000, 2)
    assert stored["generation_time_seconds"] == 3.25
    assert stored["file_size_bytes"] == 2_048_044
    assert stored["metadata"] == {"duration_seconds": 16.0, "bpm": 140.0, "peak_amplitude": 0.5}
    created = datetime.fromisoformat(stored["created_at"])
    completed = datetime.fromisoformat(stored["completed_at"])
    assert created.utcoffset() == timedelta(0) and completed >= created
    assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=1)
    json.dumps(stored, allow_nan=False)  # the CLI's --json needs nothing more


# --------------------------------------------------------------------------- schema and migrations


def test_first_use_creates_the_schema_without_init(database_url):
    with get_session(database_url) as session:  # no init_db beforehand
        generation_id = new_generation(session).id
    engine = get_engine(database_url)
    assert {"generations", "prompts", "alembic_version"} <= set(inspect(engine).get_table_names())
    assert schema.current_revision(engine) == schema.head_revision()
    assert init_db(database_url) is init_db(database_url) is engine  # idempotent, cached
    dispose_engines()
    init_db(database_url)  # a new process: migrating again is a no-op that keeps the data
    assert snapshot(generation_id)["status"] == "pending"


def test_migrated_schema_matches_the_models(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with get_engine(db).connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": schema.include_name})
        assert compare_metadata(context, Base.metadata) == []
        indexes = {
            table: {tuple(index["column_names"]) for index in inspect(connection).get_indexes(table)}
            for table in ("generations", "prompts")
        }
    assert {("created_at",), ("status", "created_at")} <= indexes["generations"]
    assert ("use_count", "last_used_at") in indexes["prompts"]


def test_revision_history_is_linear_and_downgrades_to_nothing(db):
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(schema.alembic_config())
    assert len(scripts.get_heads()) == 1
    revisions = list(scripts.walk_revisions())
    assert revisions[-1].down_revision is None
    assert all(len(r.nextrev) <= 1 for r in revisions)
    engine = get_engine(db)
    schema.downgrade_to_base(engine)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert schema.current_revision(engine) is None
    schema.upgrade_to_head(engine)
    assert schema.current_revision(engine) == scripts.get_current_head()


def test_reset_database_deletes_every_record(db):
    with get_session() as session:
        new_generation(session)
    reset_database()
    assert table_counts() == (0, 0)
    assert schema.current_revision(get_engine()) == schema.head_revision()


def test_alembic_command_line_upgrades_and_finds_nothing_to_autogenerate(tmp_path):
    database = tmp_path / "cli" / "history.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "PYTHONPATH": str(REPO_ROOT)}
    ini = str(REPO_ROOT / "services" / "storage" / "alembic.ini")
    for arguments in (["upgrade", "head"], ["check"]):
        result = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", ini, *arguments],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr
    assert database.is_file()


# --------------------------------------------------------------------------- URLs and settings


def test_default_database_comes_from_the_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    dispose_engines()
    assert resolve_url() == f"sqlite:///{tmp_path.resolve() / 'data' / 'generations.db'}"
    monkeypatch.setenv("DATABASE_URL", "sqlite:///elsewhere/history.db")
    try:
        with get_session() as session:  # creates the parent folder and the schema
            new_generation(session)
        assert (tmp_path / "elsewhere" / "history.db").is_file()
        assert not (tmp_path / "data").exists()
    finally:
        dispose_engines()


@pytest.mark.parametrize(
    "given, expected",
    [
        ("postgresql://u:p@db.example:5432/music", "postgresql+psycopg://u:p@db.example:5432/music"),
        ("postgres://u@db.example/music", "postgresql+psycopg://u@db.example/music"),
        ("postgresql+psycopg://u@db.example/music", "postgresql+psycopg://u@db.example/music"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_urls_are_normalized(given, expected):
    assert resolve_url(given) == expected


@pytest.mark.parametrize("given", ["mysql://u@h/db", "not a url", "oracle://x"])
def test_unsupported_urls_are_refused(given):
    with pytest.raises(StorageValueError, match="database|URL"):
        resolve_url(given)


def test_unreachable_server_is_a_storage_error_without_the_password():
    url = "postgresql://dgx:s3cret-pw@/music?host=/nonexistent-dgx-socket-dir"
    with pytest.raises(StorageError, match="cannot prepare the database") as caught:
        init_db(url)
    assert "s3cret-pw" not in str(caught.value)
    dispose_engines()


def test_missing_driver_says_what_to_install():
    with pytest.raises(StorageError, match=r"not installed.*pip install 'dgx-music\[postgres\]'"):
        init_db("postgresql+pg8000://u@localhost/music")


def test_in_memory_sqlite_works_in_one_process():
    try:
        with get_session("sqlite://") as session:
            generation_id = new_generation(session).id
        with get_session("sqlite://") as session:
            assert get_generation(session, generation_id) is not None
    finally:
        dispose_engines()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    engine = init_db(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with engine.connect() as connection:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("busy_timeout") == int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000) == 30_000
            assert pragma("foreign_keys") == 1
            assert pragma("synchronous") == 1  # NORMAL
    finally:
        dispose_engines()


# --------------------------------------------------------------------------- sessions


def test_session_rolls_back_on_error_and_commits_otherwise(db):
    with pytest.raises(RuntimeError, match="boom"):
        with get_session() as session:
            new_generation(session)
            raise RuntimeError("boom")
    assert table_counts() == (0, 0)
    with get_session() as session:
        new_generation(session)
    assert table_counts() == (1, 1)


@pytest.mark.parametrize(
    "write",
    [
        lambda s, i: new_generation(s),
        lambda s, i: track_prompt_usage(s, "a prompt"),
        lambda s, i: complete_generation(s, i, generation_time=1.0, file_size_bytes=1),
        lambda s, i: delete_generation(s, i),
    ],
    ids=["create", "track_prompt", "complete", "delete"],
)
def test_readonly_sessions_refuse_writes(db, write):
    generation_id = generation_in(S.PENDING)
    before = table_counts(), snapshot(generation_id)
    with pytest.raises(StorageError, match="read-only"):
        with get_session(readonly=True) as session:
            write(session, generation_id)
    assert (table_counts(), snapshot(generation_id)) == before


def test_a_reader_does_not_block_a_writer_in_the_same_process(db):
    generation_id = generation_in(S.PENDING)
    with get_session(readonly=True) as reader:
        assert count_generations(reader) == 1  # the read transaction is open from here
        with get_session() as writer:  # would wait 30 s and fail if the reader held the write lock
            complete_generation(writer, generation_id, generation_time=1.0, file_size_bytes=5)
        assert get_generation(reader, generation_id) is not None
    assert snapshot(generation_id)["status"] == "completed"


# --------------------------------------------------------------------------- argument rules

VALID = dict(
    prompt="lofi piano",
    model_name="procedural",
    duration_seconds=8.0,
    sample_rate=32000,
    channels=2,
    file_path="out.wav",
)


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("prompt", "", StorageValueError),
        ("prompt", "   \n\t", StorageValueError),
        ("prompt", None, TypeError),
        ("prompt", 42, TypeError),
        ("model_name", "", StorageValueError),
        ("model_name", "m" * 101, StorageValueError),
        ("duration_seconds", 0.0, StorageValueError),
        ("duration_seconds", -16.0, StorageValueError),
        ("duration_seconds", math.nan, StorageValueError),
        ("duration_seconds", math.inf, StorageValueError),
        ("duration_seconds", "16", TypeError),
        ("duration_seconds", True, TypeError),
        ("sample_rate", 0, StorageValueError),
        ("sample_rate", -44100, StorageValueError),
        ("sample_rate", 44100.0, TypeError),
        ("sample_rate", True, TypeError),
        ("channels", 0, StorageValueError),
        ("channels", 9, StorageValueError),
        ("channels", -2, StorageValueError),
        ("channels", 2.0, TypeError),
        ("file_path", "", StorageValueError),
        ("file_path", None, TypeError),
        ("metadata", ["bpm", 120], TypeError),
        ("metadata", {1: "key must be str"}, TypeError),
        ("metadata", {"what": object()}, TypeError),
    ],
)
def test_invalid_values_raise_and_change_nothing(db, field, value, error):
    with get_session() as session:
        with pytest.raises(error) as caught:
            create_generation(session=session, **{**VALID, field: value})
        if error is StorageValueError:
            assert field in str(caught.value) and repr(value)[:50] in str(caught.value)
    assert table_counts() == (0, 0)


@pytest.mark.parametrize(
    "field, value, stored",
    [
        ("channels", 1, 1),
        ("channels", 8, 8),
        ("sample_rate", np.int64(48000), 48000),
        ("duration_seconds", np.float32(0.5), 0.5),
        ("duration_seconds", 30, 30.0),
        ("file_path", Path("data/outputs/x.wav"), str(Path("data/outputs/x.wav"))),
        ("prompt", "  padded prompt \n", "padded prompt"),
    ],
)
def test_boundary_and_numpy_values_are_accepted(db, field, value, stored):
    with get_session() as session:
        generation_id = create_generation(session=session, **{**VALID, field: value}).id
    assert snapshot(generation_id)[field] == stored


@pytest.mark.parametrize(
    "arguments, error",
    [
        (dict(generation_time=-0.1, file_size_bytes=10), StorageValueError),
        (dict(generation_time=math.nan, file_size_bytes=10), StorageValueError),
        (dict(generation_time=1.0, file_size_bytes=-1), StorageValueError),
        (dict(generation_time=1.0, file_size_bytes=10.5), TypeError),
        (dict(generation_time="1.0", file_size_bytes=10), TypeError),
        (dict(generation_time=1.0, file_size_bytes=10, metadata="bpm=120"), TypeError),
    ],
)
def test_invalid_completion_values_change_nothing(db, arguments, error):
    generation_id = generation_in(S.PENDING)
    before = snapshot(generation_id)
    with get_session() as session:
        with pytest.raises(error):
            complete_generation(session, generation_id, **arguments)
    assert snapshot(generation_id) == before


@pytest.mark.parametrize("message", ["", "   "])
def test_failing_needs_a_message(db, message):
    generation_id = generation_in(S.PENDING)
    with get_session() as session:
        with pytest.raises(StorageValueError, match="error_message"):
            fail_generation(session, generation_id, message)
    assert snapshot(generation_id)["status"] == "pending"


@pytest.mark.parametrize("status", ["done", "", "COMPLETE"])
def test_unknown_status_is_refused(db, status):
    generation_id = generation_in(S.PENDING)
    with get_session() as session:
        with pytest.raises(StorageValueError, match="status must be one of"):
            update_generation_status(session, generation_id, status)
        with pytest.raises(StorageValueError, match="status must be one of"):
            get_all_generations(session, status=status)
    assert snapshot(generation_id)["status"] == "pending"


def test_error_message_only_goes_with_failed(db):
    generation_id = generation_in(S.PENDING)
    with get_session() as session:
        with pytest.raises(StorageValueError, match="only for status 'failed'"):
            update_generation_status(session, generation_id, S.PROCESSING, error_message="why")
    assert snapshot(generation_id)["status"] == "pending"


# --------------------------------------------------------------------------- life cycle

ALL_PAIRS = list(itertools.product(list(S), list(S)))


def test_transition_table_is_the_documented_one():
    assert ALLOWED_TRANSITIONS == {
        S.PENDING: {S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELLED},
        S.PROCESSING: {S.PENDING, S.COMPLETED, S.FAILED, S.CANCELLED},  # -> pending: a re-queue
        S.COMPLETED: set(),
        S.FAILED: set(),
        S.CANCELLED: set(),
    }


@pytest.mark.parametrize("start, target", ALL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ALL_PAIRS])
def test_every_status_change_follows_the_table(db, start, target):
    generation_id = generation_in(start)
    before = snapshot(generation_id)
    with get_session() as session:
        if target in ALLOWED_TRANSITIONS[start]:
            update_generation_status(session, generation_id, target)
        else:
            with pytest.raises(InvalidTransitionError, match=f"{start.value!r}.*{target.value!r}"):
                update_generation_status(session, generation_id, target)
    after = snapshot(generation_id)
    if target in ALLOWED_TRANSITIONS[start]:
        assert after["status"] == target.value
        assert (after["completed_at"] is not None) == (target in (S.COMPLETED, S.FAILED, S.CANCELLED))
    else:
        assert after == before


@pytest.mark.parametrize("start", list(S), ids=[s.value for s in S])
@pytest.mark.parametrize("action", ["complete", "fail"])
def test_complete_and_fail_only_unfinished_generations(db, start, action):
    generation_id = generation_in(start)
    before = snapshot(generation_id)
    target = S.COMPLETED if action == "complete" else S.FAILED

    def act(session):
        if action == "complete":
            complete_generation(session, generation_id, generation_time=1.0, file_size_bytes=99)
        else:
            fail_generation(session, generation_id, "out of memory")

    with get_session() as session:
        if target in ALLOWED_TRANSITIONS[start]:
            act(session)
        else:
            with pytest.raises(InvalidTransitionError):
                act(session)
    after = snapshot(generation_id)
    if target in ALLOWED_TRANSITIONS[start]:
        assert after["status"] == target.value
        assert after["error_message"] == ("out of memory" if action == "fail" else None)
        assert after["file_size_bytes"] == (99 if action == "complete" else None)
    else:
        assert after == before


@pytest.mark.parametrize(
    "act",
    [
        lambda s, i: complete_generation(s, i, generation_time=1.0, file_size_bytes=1),
        lambda s, i: fail_generation(s, i, "lost"),
        lambda s, i: update_generation_status(s, i, S.PROCESSING),
    ],
    ids=["complete", "fail", "update"],
)
def test_unknown_generation_is_not_found(db, act):
    missing = str(uuid.uuid4())
    with get_session() as session:
        with pytest.raises(GenerationNotFoundError, match=missing):
            act(session, missing)
        assert get_generation(session, missing) is None
        assert delete_generation(session, missing) is False
    assert table_counts() == (0, 0)


def test_delete_removes_the_record(db):
    keep, gone = generation_in(S.PENDING), generation_in(S.COMPLETED)
    with get_session() as session:
        assert delete_generation(session, gone) is True
    assert snapshot(gone) is None and snapshot(keep) is not None


# --------------------------------------------------------------------------- metadata

EXTRACTOR_LIKE = {
    "duration_seconds": 16.0,
    "sample_rate": 32000,
    "channels": np.int64(2),
    "format": "WAV",
    "subtype": "PCM_16",
    "bpm": np.float64(140.0),
    "key": None,
    "peak_amplitude": np.float32(0.75),
    "rms_level": np.float64(0.125),
    "dynamic_range_db": np.float64(15.5),
    "loudness_lufs": -math.inf,  # silence
    "true_peak_dbtp": math.nan,
    "clipping": np.bool_(False),
    "band_energy": np.array([0.5, 0.25, np.inf]),
    "tags": ("edm", "dance"),
}
EXTRACTOR_STORED = {
    "duration_seconds": 16.0,
    "sample_rate": 32000,
    "channels": 2,
    "format": "WAV",
    "subtype": "PCM_16",
    "bpm": 140.0,
    "key": None,
    "peak_amplitude": 0.75,
    "rms_level": 0.125,
    "dynamic_range_db": 15.5,
    "loudness_lufs": None,
    "true_peak_dbtp": None,
    "clipping": False,
    "band_energy": [0.5, 0.25, None],
    "tags": ["edm", "dance"],
}


def test_extractor_metadata_is_stored_as_valid_json_and_merged(db):
    with get_session() as session:
        generation_id = new_generation(session, metadata={"seed": 7, "bpm": None}).id
    with get_session() as session:
        complete_generation(session, generation_id, 1.5, 1234, EXTRACTOR_LIKE)
    assert snapshot(generation_id)["metadata"] == {"seed": 7, **EXTRACTOR_STORED}
    with get_engine().connect() as connection:
        if connection.dialect.name == "sqlite":
            valid = connection.execute(text("SELECT json_valid(metadata) FROM generations")).scalar()
            assert valid == 1
        else:  # jsonb parsing refuses anything that is not JSON
            bpm = connection.execute(text("SELECT (metadata::jsonb ->> 'bpm')::float FROM generations"))
            assert bpm.scalar() == 140.0


@pytest.mark.parametrize(
    "value, expected",
    [
        (np.float32(0.5), 0.5),
        (np.int16(-3), -3),
        (np.bool_(True), True),
        (math.nan, None),
        (-math.inf, None),
        (np.array([[1, 2], [3, 4]], dtype=np.int32), [[1, 2], [3, 4]]),
        ({"nested": {"x": np.float64(math.inf)}}, {"nested": {"x": None}}),
        (Path("a/b.wav"), str(Path("a/b.wav"))),
        (S.FAILED, "failed"),
        (datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2025-01-02T03:04:05+00:00"),
        ({3, 1, 2}, [1, 2, 3]),
    ],
)
def test_json_safe(value, expected):
    assert json_safe(value) == expected


def test_naive_timestamps_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        UTCDateTime().process_bind_param(datetime(2025, 1, 1), create_engine("sqlite://").dialect)


# --------------------------------------------------------------------------- queries


def test_history_is_newest_first_with_paging_and_status_filter(db):
    statuses = [S.PENDING, S.COMPLETED, S.FAILED, S.COMPLETED, S.PROCESSING, S.COMPLETED, S.PENDING]
    ids = [generation_in(status) for status in statuses]
    newest_first = ids[::-1]
    with get_session() as session:
        assert [g.id for g in get_all_generations(session)] == newest_first
        assert [g.id for g in get_all_generations(session, limit=None)] == newest_first
        pages = [get_all_generations(session, limit=3, offset=offset) for offset in (0, 3, 6, 9)]
        assert [len(page) for page in pages] == [3, 3, 1, 0]
        assert [g.id for page in pages for g in page] == newest_first
        for status in S:
            expected = [i for i, s in zip(ids, statuses) if s is status][::-1]
            assert [g.id for g in get_all_generations(session, status=status)] == expected
            assert [g.id for g in get_all_generations(session, status=status.value)] == expected
            assert count_generations(session, status=status) == len(expected)
        assert count_generations(session) == len(ids)
        assert [g.id for g in get_pending_generations(session)] == [ids[0], ids[6]]  # oldest first
        assert [g.id for g in get_pending_generations(session, limit=1)] == [ids[0]]


@pytest.mark.parametrize(
    "query",
    [
        lambda s: get_all_generations(s, limit=0),
        lambda s: get_all_generations(s, offset=-1),
        lambda s: get_pending_generations(s, limit=-5),
        lambda s: get_most_used_prompts(s, limit=0),
    ],
)
def test_bad_paging_is_refused(db, query):
    with get_session() as session:
        with pytest.raises(StorageValueError):
            query(session)


def test_database_stats_add_up(db):
    with get_session() as session:
        ids = {
            "a": new_generation(session, duration_seconds=10.0).id,
            "b": new_generation(session, duration_seconds=20.0, prompt="ambient pads").id,
            "c": new_generation(session, duration_seconds=30.0).id,
            "failed": new_generation(session, duration_seconds=99.0).id,
            "processing": new_generation(session, duration_seconds=5.0).id,
        }
        new_generation(session, duration_seconds=7.0)  # stays pending
    with get_session() as session:
        for key, seconds, size in (("a", 1.0, 100), ("b", 2.0, 200), ("c", 6.0, 300)):
            complete_generation(session, ids[key], seconds, size)
        fail_generation(session, ids["failed"], "boom")
        update_generation_status(session, ids["processing"], S.PROCESSING)
    with get_session() as session:
        assert get_database_stats(session) == {
            "total_generations": 6,
            "pending_generations": 1,
            "processing_generations": 1,
            "completed_generations": 3,
            "failed_generations": 1,
            "cancelled_generations": 0,
            "total_prompts": 2,
            "total_prompt_uses": 6,
            "total_audio_seconds": 60.0,
            "total_file_size_bytes": 600,
            "average_generation_time_seconds": pytest.approx(3.0),
        }


def test_stats_of_an_empty_history(db):
    with get_session() as session:
        stats = get_database_stats(session)
    assert stats["total_generations"] == stats["total_prompts"] == 0
    assert stats["average_generation_time_seconds"] is None


def test_prompt_usage_is_counted_and_ranked(db):
    long_prompt = "ambient drone with evolving pads, 雨の音 " * 52  # 1,976 characters (the limit is 2,000), ~2.3 kB in UTF-8
    uses = {"techno 130 BPM": 3, "jazz trio": 1, "lofi piano": 2, long_prompt: 2}
    with get_session() as session:
        for prompt, count in uses.items():
            for _ in range(count):
                new_generation(session, prompt=prompt)
        track_prompt_usage(session, "  jazz trio  ")  # stripped: the same prompt
    with get_session() as session:
        ranked = get_most_used_prompts(session, limit=10)
        assert [(p.text, p.use_count) for p in ranked[:1]] == [("techno 130 BPM", 3)]
        assert [p.use_count for p in ranked] == [3, 2, 2, 2]
        assert {p.text for p in ranked[1:]} == {"lofi piano", long_prompt.strip(), "jazz trio"}
        assert [p.text for p in get_most_used_prompts(session, limit=1)] == ["techno 130 BPM"]
        jazz = get_prompt_by_text(session, "jazz trio")
        assert jazz.use_count == 2 and jazz.first_used_at < jazz.last_used_at
        assert jazz.last_used_at.tzinfo is not None
        assert get_prompt_by_text(session, "never used") is None
        assert json.loads(json.dumps(jazz.to_dict()))["use_count"] == 2


# --------------------------------------------------------------------------- concurrency

WORKERS, PER_WORKER = 4, 200


def _worker(url: str, worker: int, barrier, results) -> None:
    """Create and complete PER_WORKER generations in separate transactions."""
    try:
        barrier.wait(timeout=120)  # start together, even the first migration
        init_db(url)
        ids = []
        for index in range(PER_WORKER):
            with get_session() as session:
                generation = create_generation(
                    session=session,
                    prompt="shared prompt" if index % 2 else f"worker {worker} prompt",
                    model_name="procedural",
                    duration_seconds=1.0 + index,
                    sample_rate=32000,
                    channels=2,
                    file_path=f"w{worker}/{index}.wav",
                )
            with get_session() as session:
                complete_generation(session, generation.id, 0.5, 1000 + index, {"worker": worker})
            ids.append(generation.id)
        results.put((worker, ids, None))
    except BaseException as exc:  # report, never hang the parent
        results.put((worker, [], f"{type(exc).__name__}: {exc}"))
    finally:
        dispose_engines()


def test_four_processes_create_and_complete_at_once_and_lose_nothing(database_url):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(WORKERS), context.Queue()
    processes = [
        context.Process(target=_worker, args=(database_url, worker, barrier, results))
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [error for _, _, error in reports if error] == []
    expected_ids = {i for _, ids, _ in reports for i in ids}
    assert len(expected_ids) == WORKERS * PER_WORKER
    with get_session(database_url) as session:
        stored = get_all_generations(session, limit=None)
        assert {g.id for g in stored} == expected_ids
        assert all(g.status is S.COMPLETED for g in stored)
        assert count_generations(session, status=S.COMPLETED) == WORKERS * PER_WORKER
        assert get_prompt_by_text(session, "shared prompt").use_count == WORKERS * PER_WORKER // 2
        for worker in range(WORKERS):
            assert get_prompt_by_text(session, f"worker {worker} prompt").use_count == PER_WORKER // 2
