"""Schemathesis against the service's own ``/openapi.json``: requests generated from the
schema (valid and invalid, plus stateful sequences that follow the links between
operations) never get a server error (5xx), on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.databases import database_url  # noqa: F401  (fixture)
from tests.service import dgx_process, running_service, service_env

pytestmark = pytest.mark.slow


def test_no_generated_request_gets_a_server_error(tmp_path, database_url):  # noqa: F811
    env = service_env(tmp_path, database_url)
    # One finished generation first, so the audio and peaks operations have a file to serve.
    with dgx_process(tmp_path, env, "generate", "house at 124 BPM", "--duration", "3", "--seed", "1") as made:
        assert made.popen.wait(120) == 0, made.output()
    if not _module_runs():
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    with running_service(tmp_path, env, "--workers", "0") as service:  # requests queue; none run
        schema = f"{service.base_url}/openapi.json"
        # The event stream of a queued job lasts until the job ends, which it never does here
        # (no workers): the stream is fuzzed on its own, without the stateful phase that
        # would hand it real ids.
        runs = [["--exclude-path-regex", "/events$"],
                ["--include-path-regex", "/events$", "--phases", "examples,coverage,fuzzing"]]
        for selection in runs:
            command = [sys.executable, "-m", "schemathesis.cli", "run", schema, *selection,
                       "--checks", "not_a_server_error", "--max-examples", "25", "--workers", "1",
                       "--seed", "20261129", "--request-timeout", "30"]
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
            report = done.stdout + done.stderr
            assert done.returncode == 0, report[-6000:]
            assert " passed" in report and "Server error" not in report
        service.client.get("/healthz").raise_for_status()  # still answering afterwards


def _module_runs() -> bool:
    return subprocess.run([sys.executable, "-m", "schemathesis.cli", "--version"], capture_output=True).returncode == 0
