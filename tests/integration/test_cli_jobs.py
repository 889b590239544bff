"""Foreground jobs of ``dgx-music generate`` that are stopped: SIGTERM, ``kill -9``, and
``dgx-music jobs recover``; in subprocesses, the way systemd or a user stops them."""

from __future__ import annotations

import json
import signal
import sqlite3

from tests.service import dgx_process, service_env, wait_for
from tests.service import output_files as files


def rows(database: str):
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT status, progress_step, error_message, file_path FROM generations").fetchall()


def started_generating(database: str):
    def running() -> bool:
        return _exists(database) and any(
            (status, step) == ("processing", "generate") for status, step, _, _ in rows(database))
    return running


def _exists(database: str) -> bool:
    try:
        return bool(rows(database))
    except sqlite3.Error:
        return False


def test_sigterm_ends_the_job_failed_terminated_with_no_file_and_exit_143(tmp_path):
    database = tmp_path / "history.db"
    env = service_env(tmp_path, f"sqlite:///{database}")
    with dgx_process(tmp_path, env, "generate", "slow ambient drone at 60 BPM", "--duration", "300") as job:
        wait_for(started_generating(str(database)), 60, what="the job to start generating")
        job.popen.send_signal(signal.SIGTERM)
        assert job.popen.wait(60) == 143
    (status, _, error, _), = rows(str(database))
    assert (status, error) == ("failed", "terminated (SIGTERM)")
    assert "dgx-music: terminated" in job.output() and "Traceback" not in job.output()
    assert files(tmp_path) == []


def test_kill_9_is_found_by_the_next_command_and_by_jobs_recover(tmp_path):
    database = tmp_path / "history.db"
    env = service_env(tmp_path, f"sqlite:///{database}")
    for expected_by in ("jobs --json", "jobs", "history"):
        with dgx_process(tmp_path, env, "generate", "slow ambient drone at 60 BPM", "--duration", "300") as job:
            wait_for(started_generating(str(database)), 60, what="the job to start generating")
            job.kill()
        assert [r[0] for r in rows(str(database))].count("processing") == 1  # stuck until someone looks
        command = {"jobs --json": ("jobs", "recover", "--json"), "jobs": ("jobs", "recover"),
                   "history": ("history", "--json")}[expected_by]
        with dgx_process(tmp_path, env, *command) as follow_up:
            assert follow_up.popen.wait(120) == 0
        if expected_by == "jobs --json":
            (action,) = json.loads(follow_up.output()[follow_up.output().index("["):])
            assert action["action"] == "failed" and action["runner"] == "cli"
        elif expected_by == "jobs":
            assert "failed" in follow_up.output() and "action" in follow_up.output()  # a table
        else:
            assert "failed: its process" in follow_up.output()
    statuses = [(status, error.split(":")[0]) for status, _, error, _ in rows(str(database))]
    assert statuses == [("failed", "interrupted")] * 3
    assert files(tmp_path) == []
    with dgx_process(tmp_path, env, "jobs", "recover") as nothing_left:
        assert nothing_left.popen.wait(120) == 0
    assert "no interrupted jobs" in nothing_left.output()


def test_a_local_worker_runs_what_serve_workers_0_queues_and_stops_on_sigterm(tmp_path):
    from tests.service import running_service

    env = service_env(tmp_path, f"sqlite:///{tmp_path / 'history.db'}")
    with running_service(tmp_path, env, "--workers", "0") as service, \
            dgx_process(tmp_path, env, "worker", "--concurrency", "2", name="worker") as worker:
        ids = [service.submit(f"house groove {n} at 124 BPM", duration=3, seed=n)["id"] for n in range(3)]
        finals = [service.wait_for_status(i, ("completed", "failed"), timeout=120) for i in ids]
        worker.popen.send_signal(signal.SIGTERM)
        assert worker.popen.wait(60) == 0
    assert [f["status"] for f in finals] == ["completed"] * 3
    assert "local worker" in worker.output() and "Traceback" not in worker.output()
    assert len(files(tmp_path)) == 3
