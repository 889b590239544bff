"""Real processes for the service tests: ``dgx-music serve`` and ``worker`` on free ports.

Every process started here is stopped by the context manager that started it (SIGTERM,
then SIGKILL after a timeout), and its output is kept for the failure message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something true; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def output_files(folder: Path) -> List[Path]:
    """Every file under ``folder/outputs`` (the ``AUDIO_OUTPUT_DIR`` of :func:`service_env`),
    temporary ones included, sorted."""
    root = folder / "outputs"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def service_env(tmp_path: Path, database_url: str, **extra: str) -> Dict[str, str]:
    """The environment of a service under test: its outputs, history and temporary files
    under ``tmp_path``; short leases so recovery tests run in seconds."""
    temporary = tmp_path / "tmp"
    temporary.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "AUDIO_OUTPUT_DIR": str(tmp_path / "outputs"),
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(temporary),
        "DGX_MUSIC_LEASE_SECONDS": "6",
        "DGX_MUSIC_SHUTDOWN_GRACE": "20",
    }
    env.pop("DGX_MUSIC_API_KEYS", None)
    env.update(extra)
    return env


class Process:
    """A started ``dgx-music`` subprocess, its output in a log file."""

    def __init__(self, args, env, cwd: Path, log: Path):
        self.args = list(args)
        self.log_path = log
        self._log = open(log, "wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *self.args], env=env, cwd=cwd,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit status (SIGKILL first if it does not stop)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL, and reap it (a reaped process is gone, not a zombie)."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(30)

    def close(self) -> None:
        self.kill()
        self._log.close()


@contextlib.contextmanager
def dgx_process(tmp_path: Path, env: Dict[str, str], *args: str, name: str = "process") -> Iterator[Process]:
    """Run ``dgx-music ARGS`` for the block; stopped after it (SIGTERM, as systemd would,
    so that it ends cleanly and coverage saves what it measured; SIGKILL if it hangs)."""
    index = len(list(tmp_path.glob(f"{name}-*.log")))
    process = Process(args, env, tmp_path, tmp_path / f"{name}-{index}.log")
    try:
        yield process
    finally:
        process.terminate(timeout=30)
        process.close()


class Service:
    """A running ``dgx-music serve``: its process and an HTTP client on its base URL."""

    def __init__(self, process: Process, port: int):
        self.process = process
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.base_url, timeout=60)

    def wait_until_up(self, timeout: float = 90.0) -> None:
        def up():
            if self.process.popen.poll() is not None:
                raise AssertionError(f"the service exited ({self.process.popen.returncode}):\n{self.process.output()}")
            try:
                return self.client.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout, interval=0.1, what="the service to answer /healthz")

    def submit(self, prompt: str, **fields) -> dict:
        response = self.client.post("/api/v1/generations", json={"prompt": prompt, **fields})
        assert response.status_code == 202, response.text
        return response.json()

    def record(self, generation_id: str) -> dict:
        response = self.client.get(f"/api/v1/generations/{generation_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_status(self, generation_id: str, statuses, timeout: float = 120.0) -> dict:
        statuses = {statuses} if isinstance(statuses, str) else set(statuses)
        return wait_for(lambda: (lambda r: r if r["status"] in statuses else None)(self.record(generation_id)),
                        timeout, interval=0.05, what=f"{generation_id} to be {sorted(statuses)}")


@contextlib.contextmanager
def running_service(tmp_path: Path, env: Dict[str, str], *args: str, name: str = "serve",
                    port: Optional[int] = None) -> Iterator[Service]:
    """``dgx-music serve --port P ARGS`` for the block, up and answering; stopped after."""
    port = port or free_port()
    with dgx_process(tmp_path, env, "serve", "--port", str(port), *args, name=name) as process:
        service = Service(process, port)
        try:
            service.wait_until_up()
            yield service
        finally:
            service.client.close()
