"""services.jobs: leases, steps, cancel, re-queue and recovery, on SQLite and PostgreSQL.

A dead owner is a real process that has ended (started, then reaped); another host's
owner is judged by its heartbeat only, which the tests age by writing ``heartbeat_at``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from services.errors import InvalidTransitionError, JobCancelledError, LeaseLostError
from services.jobs import lifecycle
from services.jobs.owner import _process_start, current_owner, owner_is_alive, parse_owner
from services.jobs.recovery import recover_jobs, remove_job_file, worst_case_recovery_seconds
from services.storage import create_generation, get_generation, get_session, init_db
from services.storage.models import utcnow
from tests.databases import database_url  # noqa: F401  (fixture)

LEASE = 30.0


@pytest.fixture
def db(database_url):  # noqa: F811
    init_db(database_url)
    return database_url


def dead_owner() -> str:
    """The owner string of a process of this host that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    owner = f"{socket.gethostname()}:{child.pid}:{_process_start(child.pid)}"
    child.wait()
    return owner


def new_job(runner="local", path="outputs/2026/01/01/gen_x.wav", job_id=None, **overrides) -> str:
    with get_session() as session:
        generation = create_generation(
            session=session, prompt="techno at 128 BPM", model_name="procedural", duration_seconds=8.0,
            sample_rate=32000, channels=2, file_path=path, job_id=job_id, runner=runner,
            request={"duration": 8.0, "seed": 1, "bit_depth": "PCM_16"}, **overrides,
        )
        return generation.id


def row(generation_id: str) -> dict:
    with get_session(readonly=True) as session:
        return get_generation(session, generation_id).to_dict()


def claim(generation_id: str, owner: str):
    with get_session() as session:
        generation = lifecycle.claim(session, generation_id, owner, lease_seconds=LEASE)
        return None if generation is None else generation.to_dict()


def age_heartbeat(generation_id: str, seconds: float) -> None:
    with get_session() as session:
        generation = get_generation(session, generation_id)
        generation.heartbeat_at = utcnow() - timedelta(seconds=seconds)


def recover(max_attempts: int = 3):
    return recover_jobs(lease_seconds=LEASE, max_attempts=max_attempts)


# --------------------------------------------------------------------------- owners


def test_this_process_is_alive_and_an_ended_one_is_not():
    me = current_owner()
    assert parse_owner(me)[1] > 0
    assert owner_is_alive(me) is True
    assert owner_is_alive(dead_owner()) is False


@pytest.mark.parametrize("owner", ["elsewhere:123:abc-1", "not an owner", "", None])
def test_another_hosts_owner_or_garbage_is_unknown(owner):
    assert owner_is_alive(owner) is None


def test_a_new_process_with_a_recycled_pid_is_not_the_old_owner():
    host, pid, start = parse_owner(current_owner())
    boot, ticks = start.split("-")
    assert owner_is_alive(f"{host}:{pid}:{boot}-{int(ticks) + 1}") is False  # same pid, other start
    assert owner_is_alive(f"{host}:{pid}:rebooted0000-{ticks}") is False  # another boot


# --------------------------------------------------------------------------- claim and steps


def test_claim_takes_a_pending_job_once(db):
    generation_id = new_job()
    first = claim(generation_id, "a:1:x")
    assert first["status"] == "processing" and first["lease_owner"] == "a:1:x" and first["attempts"] == 1
    assert first["progress_step"] == "starting" and first["heartbeat_at"] is not None
    assert claim(generation_id, "b:2:y") is None  # alive elsewhere (fresh heartbeat)


def test_claim_next_takes_the_oldest_local_job(db):
    ids = [new_job(path=f"o/gen_{i}.wav") for i in range(3)]
    new_job(runner="procrastinate", path="o/gen_q.wav")  # not the local runner's
    with get_session() as session:
        assert lifecycle.claim_next(session, "a:1:x", lease_seconds=LEASE).id == ids[0]
    with get_session() as session:
        assert lifecycle.claim_next(session, "a:1:x", lease_seconds=LEASE).id == ids[1]


def test_queue_positions_count_the_jobs_ahead(db):
    ids = [new_job(path=f"o/gen_{i}.wav") for i in range(4)]
    claim(ids[0], "a:1:x")
    with get_session(readonly=True) as session:
        positions = [lifecycle.queue_position(session, get_generation(session, i)) for i in ids]
    assert positions == [None, 1, 2, 3]


def test_steps_renew_the_lease_and_stop_when_cancelled_or_taken_over(db):
    generation_id = new_job()
    claim(generation_id, "a:1:x")
    age_heartbeat(generation_id, 20)
    with get_session() as session:
        lifecycle.enter_step(session, generation_id, "a:1:x", "generate")
    assert row(generation_id)["progress_step"] == "generate"
    assert lifecycle.dead_lease(_generation(generation_id), LEASE) is False

    with get_session() as session:
        lifecycle.request_cancel(session, generation_id)
    with pytest.raises(JobCancelledError):
        with get_session() as session:
            lifecycle.enter_step(session, generation_id, "a:1:x", "export")
    with pytest.raises(LeaseLostError):
        with get_session() as session:
            lifecycle.enter_step(session, generation_id, "b:2:y", "export")


def _generation(generation_id):
    with get_session(readonly=True) as session:
        return get_generation(session, generation_id)


def test_renewal_touches_only_the_owners_running_jobs(db):
    mine, theirs = new_job(path="o/gen_1.wav"), new_job(path="o/gen_2.wav")
    claim(mine, "a:1:x")
    claim(theirs, "b:2:y")
    for generation_id in (mine, theirs):
        age_heartbeat(generation_id, 100)
    with get_session() as session:
        assert lifecycle.renew_leases(session, "a:1:x") == 1
    assert not lifecycle.dead_lease(_generation(mine), LEASE)
    assert lifecycle.dead_lease(_generation(theirs), LEASE)


# --------------------------------------------------------------------------- cancel


def test_cancel_a_queued_job_at_once_a_running_one_at_its_next_step_a_finished_one_never(db):
    queued, running = new_job(path="o/gen_1.wav"), new_job(path="o/gen_2.wav")
    claim(running, "a:1:x")
    with get_session() as session:
        lifecycle.request_cancel(session, queued)
        lifecycle.request_cancel(session, running)
    assert row(queued)["status"] == "cancelled" and row(queued)["completed_at"] is not None
    assert row(running)["status"] == "processing" and row(running)["cancel_requested_at"] is not None
    assert claim(queued, "b:2:y") is None
    with pytest.raises(InvalidTransitionError, match="no longer be cancelled"):
        with get_session() as session:
            lifecycle.request_cancel(session, queued)


# --------------------------------------------------------------------------- recovery


@pytest.mark.parametrize("runner, expected", [("local", "requeued"), ("procrastinate", "requeued"),
                                              ("cli", "failed")])
def test_a_dead_processes_job_is_requeued_or_failed(db, tmp_path, runner, expected, monkeypatch):
    monkeypatch.setattr("services.jobs.queue.requeue_queue_jobs", lambda url, actions: None)
    path = tmp_path / "out" / "gen_dead.wav"
    path.parent.mkdir()
    path.write_bytes(b"RIFF left by the dead run")
    (path.parent / ".gen_dead.wav.0123abcd.tmp").write_bytes(b"half an export")
    (path.parent / "gen_other.wav").write_bytes(b"not this job's")
    generation_id = new_job(runner=runner, path=str(path))
    claim(generation_id, dead_owner())

    (action,) = recover()
    assert (action.generation_id, action.action) == (generation_id, expected)
    after = row(generation_id)
    if expected == "requeued":
        assert after["status"] == "pending" and after["lease_owner"] is None
        assert "interrupted" in after["error_message"] and after["progress_step"] == "queued"
    else:
        assert after["status"] == "failed" and after["error_message"].startswith("interrupted: its process stopped")
    assert sorted(p.name for p in path.parent.iterdir()) == ["gen_other.wav"]
    assert recover() == []  # nothing left to do


def test_a_job_that_keeps_dying_fails_after_max_attempts(db):
    generation_id = new_job()
    for attempt in (1, 2):
        claim(generation_id, dead_owner())
        assert [a.action for a in recover(max_attempts=2)] == (["requeued"] if attempt == 1 else ["failed"])
    after = row(generation_id)
    assert after["status"] == "failed" and "after 2 runs" in after["error_message"]


def test_another_hosts_job_is_recovered_only_when_its_heartbeat_is_old(db):
    generation_id = new_job()
    claim(generation_id, "far-away-host:4242:abc-1")
    age_heartbeat(generation_id, LEASE - 5)
    assert recover() == []
    age_heartbeat(generation_id, LEASE + 1)
    assert [a.action for a in recover()] == ["requeued"]
    # The requeued job runs again under the same id (and path), on attempt 2.
    assert claim(generation_id, "a:1:x")["attempts"] == 2


def test_a_dead_lease_is_taken_over_directly_by_claim(db):
    generation_id = new_job()
    claim(generation_id, dead_owner())
    taken = claim(generation_id, "a:1:x")
    assert taken["lease_owner"] == "a:1:x" and taken["attempts"] == 2


def test_a_cancel_requested_job_of_a_dead_process_ends_cancelled(db):
    generation_id = new_job()
    claim(generation_id, dead_owner())
    with get_session() as session:
        lifecycle.request_cancel(session, generation_id)
    assert [a.action for a in recover()] == ["cancelled"]
    assert row(generation_id)["status"] == "cancelled"


def test_rows_without_a_runner_are_left_to_their_caller(db):
    """The spec's storage API moves rows by hand; recovery only judges jobs."""
    generation_id = new_job(runner=None)
    with get_session() as session:
        from services.storage import update_generation_status

        update_generation_status(session, generation_id, "processing")
        get_generation(session, generation_id).created_at = utcnow() - timedelta(days=1)
    assert recover() == []
    assert row(generation_id)["status"] == "processing"


def test_the_stated_bound_is_a_lease_and_a_half():
    assert worst_case_recovery_seconds(30.0) == 45.0  # the README's "within 45 s" by default


def test_remove_job_file_leaves_other_files(tmp_path):
    target = tmp_path / "gen_a.wav"
    keep = [tmp_path / "gen_ab.wav", tmp_path / ".gen_ab.wav.1.tmp", tmp_path / ".gen_a.wav.notes"]
    for path in [target, tmp_path / ".gen_a.wav.ff00.tmp", *keep]:
        path.write_bytes(b"x")
    remove_job_file(str(target))
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == sorted(p.name for p in keep)


# --------------------------------------------------------------------------- migration 0002


def test_migration_0002_keeps_old_rows_and_copies_their_measurements(database_url):  # noqa: F811
    """A history made before jobs existed: its rows get a job id (from the file name), and
    their tempo, key, loudness and true peak as columns; statuses stay valid."""
    import json as jsonlib

    from alembic import command
    from sqlalchemy import text

    from services.storage import schema
    from services.storage.database import get_engine_unmigrated

    engine = get_engine_unmigrated(database_url)
    with engine.begin() as connection:
        command.upgrade(schema.alembic_config(connection), "0001")
        rows = [
            ("a", "outputs/2025/01/01/gen_aaaa0001.wav", "completed",
             {"bpm": 128.0, "key": "A minor", "loudness_lufs": -16.0, "true_peak_dbtp": -1.2}),
            ("b", "outputs/2025/01/01/gen_bbbb0002.wav", "failed", None),
            ("c", "elsewhere/take 3.wav", "completed", {"bpm": -3.0, "key": 5}),
        ]
        for identifier, path, status, metadata in rows:
            connection.execute(text(
                "INSERT INTO generations (id, prompt, model_name, duration_seconds, sample_rate, channels, "
                "file_path, status, created_at, metadata) VALUES (:id, 'p', 'm', 8, 32000, 2, :path, :status, "
                "'2025-01-01 00:00:00', :metadata)"),
                {"id": identifier, "path": path, "status": status,
                 "metadata": None if metadata is None else jsonlib.dumps(metadata)})
    init_db(database_url)  # 0002 and 0003
    with get_session(readonly=True) as session:
        a, b, c = (get_generation(session, i).to_dict() for i in "abc")
    assert (a["job_id"], a["bpm"], a["key"], a["loudness_lufs"], a["true_peak_dbtp"]) == \
        ("gen_aaaa0001", 128.0, "A minor", -16.0, -1.2)
    assert (b["job_id"], b["bpm"], b["status"], b["attempts"]) == ("gen_bbbb0002", None, "failed", 0)
    assert c["job_id"] is None and c["bpm"] is None and c["key"] is None  # no job-like name, no usable values
    with get_session() as session:
        generation = get_generation(session, "a")
    assert generation.to_dict()["status"] == "completed"
