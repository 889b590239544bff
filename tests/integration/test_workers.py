"""Scale-out on PostgreSQL: ``serve --workers 0`` and ``dgx-music worker`` processes that
share the history (and its Procrastinate queue) and the output folder.

The kill test is the one the platform is built for: ``kill -9`` the worker in the middle
of a job, and the job still completes once, on another worker, with one file and one
``completed`` row.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import pytest

from tests.databases import postgres_url  # noqa: F401  (fixture)
from tests.service import dgx_process, output_files, running_service, service_env, wait_for

pytestmark = pytest.mark.postgres

LONG = dict(duration=300, seed=11)  # a few seconds of work: long enough to kill mid-job


def queue_jobs(url: str) -> list:
    """(generation id, Procrastinate status) of every queue job, by id."""
    from sqlalchemy import text

    from services.storage import get_engine

    with get_engine(url).connect() as connection:
        rows = connection.execute(text(
            "SELECT args->>'generation_id', status::text FROM procrastinate_jobs ORDER BY id")).all()
    return [tuple(row) for row in rows]


def wav_files(tmp_path: Path) -> list:
    return [path.name for path in output_files(tmp_path)]


@contextlib.contextmanager
def workers(tmp_path, env, count: int):
    with contextlib.ExitStack() as stack:
        processes = [stack.enter_context(dgx_process(tmp_path, env, "worker", name=f"worker{n}"))
                     for n in range(count)]
        for process in processes:
            wait_for(lambda p=process: "queue worker on PostgreSQL" in p.output(), 60, what="a worker to start")
        yield processes


def test_kill_9_a_worker_mid_job_and_the_job_completes_once_elsewhere(tmp_path, postgres_url):  # noqa: F811
    env = service_env(tmp_path, postgres_url)
    with running_service(tmp_path, env, "--workers", "0") as service, workers(tmp_path, env, 2) as (one, two):
        job = service.submit("slow ambient drone at 60 BPM", **LONG)
        running = wait_for(lambda: (lambda r: r if r["step"] == "generate" else None)(service.record(job["id"])),
                           60, what="a worker to start the job")
        victim = {one.pid: one, two.pid: two}[_owner_pid(postgres_url, job["id"])]
        victim.kill()  # SIGKILL: no goodbye, no cleanup
        survivor = two if victim is one else one
        final = service.wait_for_status(job["id"], ("completed", "failed"), timeout=120)
        assert running["attempts"] == 1
        assert final["status"] == "completed" and final["attempts"] == 2
        assert survivor.popen.poll() is None
        assert wav_files(tmp_path) == [f"{job['job_id']}.wav"]
        assert [item["id"] for item in service.client.get("/api/v1/generations").json()["items"]] == [job["id"]]


def _owner_pid(url: str, generation_id: str) -> int:
    from services.storage import get_generation, get_session

    with get_session(url, readonly=True) as session:
        owner = get_generation(session, generation_id).lease_owner
    return int(owner.rsplit(":", 2)[1])


def test_two_workers_share_the_queue_and_every_row_has_its_queue_job(tmp_path, postgres_url):  # noqa: F811
    env = service_env(tmp_path, postgres_url)
    with running_service(tmp_path, env, "--workers", "0") as service, workers(tmp_path, env, 2):
        ids = [service.submit(f"house groove {n} at 124 BPM", duration=4, seed=n)["id"] for n in range(6)]
        finals = [service.wait_for_status(i, ("completed", "failed"), timeout=120) for i in ids]
    assert {f["status"] for f in finals} == {"completed"}
    assert len({f["metadata"]["job_id"] for f in finals}) == 6 and len(wav_files(tmp_path)) == 6
    assert queue_jobs(postgres_url) == []  # each queue job succeeded (and was deleted): none left behind


def test_a_refused_submission_leaves_neither_row_nor_queue_job(tmp_path, postgres_url):  # noqa: F811
    env = service_env(tmp_path, postgres_url, DGX_MUSIC_QUEUE_LIMIT="1")
    with running_service(tmp_path, env, "--workers", "0") as service:
        kept = service.submit("house", duration=2)
        assert service.client.post("/api/v1/generations", json={"prompt": "techno"}).status_code == 429
        assert service.client.post("/api/v1/generations", json={"prompt": ""}).status_code == 422
        assert [i["id"] for i in service.client.get("/api/v1/generations").json()["items"]] == [kept["id"]]
        assert queue_jobs(postgres_url) == [(kept["id"], "todo")]
        service.client.post(kept["links"]["cancel"])
        assert queue_jobs(postgres_url) == [(kept["id"], "cancelled")]


def test_sigterm_stops_a_worker_cleanly_and_its_job_finishes(tmp_path, postgres_url):  # noqa: F811
    env = service_env(tmp_path, postgres_url)
    with running_service(tmp_path, env, "--workers", "0") as service:
        with workers(tmp_path, env, 1) as (worker,):
            job = service.submit("slow ambient drone at 60 BPM", **LONG)
            wait_for(lambda: service.record(job["id"])["status"] == "processing", 60, what="the job to start")
            worker.popen.send_signal(signal.SIGTERM)
            assert worker.popen.wait(120) == 0
        assert service.record(job["id"])["status"] == "completed"  # finished within the grace period
    assert wav_files(tmp_path) == [f"{job['job_id']}.wav"]


def test_serve_with_workers_runs_the_queue_in_process(tmp_path, postgres_url):  # noqa: F811
    env = service_env(tmp_path, postgres_url)
    with running_service(tmp_path, env, "--workers", "2") as service:
        ids = [service.submit("dub techno at 118 BPM", duration=3, seed=n)["id"] for n in range(3)]
        finals = [service.wait_for_status(i, ("completed", "failed"), timeout=120) for i in ids]
        assert service.client.get("/healthz").json() | {"runner": "procrastinate", "workers": 2} == \
            service.client.get("/healthz").json()
    assert [f["status"] for f in finals] == ["completed"] * 3


def test_a_requeued_job_whose_queue_job_is_gone_gets_a_new_one(tmp_path, postgres_url):  # noqa: F811
    """No row without a job, even after recovery: a dead run's row whose queue job ended
    (or was deleted) goes back to the queue with a new queue job."""
    from sqlalchemy import text

    from services.jobs.recovery import recover_jobs
    from services.storage import get_engine, get_generation, get_session
    from services.storage.models import utcnow

    env = service_env(tmp_path, postgres_url)
    with running_service(tmp_path, env, "--workers", "0") as service:
        job = service.submit("house", duration=2)
    with get_engine(postgres_url).begin() as connection:
        connection.execute(text("DELETE FROM procrastinate_jobs"))
    with get_session(postgres_url) as session:
        generation = get_generation(session, job["id"])
        old_queue_job = generation.queue_job_id
        generation.status, generation.lease_owner, generation.attempts = "processing", "gone-host:1:x", 1
        generation.heartbeat_at = generation.started_at = utcnow().replace(year=2020)
    (action,) = recover_jobs(postgres_url, lease_seconds=6, max_attempts=3)
    assert action.action == "requeued"
    with get_session(postgres_url, readonly=True) as session:
        row = get_generation(session, job["id"])
        assert row.status == "pending" and row.queue_job_id not in (None, old_queue_job)
    assert queue_jobs(postgres_url) == [(job["id"], "todo")]
