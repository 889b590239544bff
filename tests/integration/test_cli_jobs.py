"""Foreground jobs of ``dgx-music generate`` that are stopped: SIGTERM, ``kill -9``, and
``dgx-music jobs recover``; in subprocesses, the way systemd or a user stops them."""

from __future__ import annotations

import json
import signal
import sqlite3

from tests.service import dgx_process, service_env, wait_for


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


def files(tmp_path):
    root = tmp_path / "outputs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


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
    for expected_by in ("jobs", "history"):
        with dgx_process(tmp_path, env, "generate", "slow ambient drone at 60 BPM", "--duration", "300") as job:
            wait_for(started_generating(str(database)), 60, what="the job to start generating")
            job.kill()
        assert [r[0] for r in rows(str(database))].count("processing") == 1  # stuck until someone looks
        command = ("jobs", "recover", "--json") if expected_by == "jobs" else ("history", "--json")
        with dgx_process(tmp_path, env, *command) as follow_up:
            assert follow_up.popen.wait(120) == 0
        if expected_by == "jobs":
            (action,) = json.loads(follow_up.output()[follow_up.output().index("["):])
            assert action["action"] == "failed" and action["runner"] == "cli"
        else:
            assert "failed: its process" in follow_up.output()
    statuses = [(status, error.split(":")[0]) for status, _, error, _ in rows(str(database))]
    assert statuses == [("failed", "interrupted"), ("failed", "interrupted")]
    assert files(tmp_path) == []
