"""The job pool of ``dgx-music serve`` on SQLite: N worker processes supervised by the API's.

Each worker is a :class:`~services.jobs.local.LocalRunner` with one thread in a process of
its own, so N jobs really run at once (threads sharing the GIL reached 1.47x with 2 on 2
cores; processes 1.9x), and a job that crashes its process (a native library's fault, the
kernel's OOM killer) takes one worker down, not the API. The service stays one command:

- a submission in the API wakes one idle worker at once (a semaphore of wake-ups);
- the workers' progress reaches the API's event streams at once (a queue of notices);
- a worker whose supervisor dies is killed by the kernel (``PR_SET_PDEATHSIG``), so
  ``kill -9`` of ``serve`` leaves no orphan running jobs: they are recovered when a
  service or worker starts again, like any job whose process died;
- :meth:`WorkerPool.stop` (SIGTERM of ``serve``) asks every worker to stop: no new job, the
  grace period for the running ones, then their re-queue.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
from typing import List, Optional

__all__ = ["WorkerPool"]

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this process when its parent ends (a no-op elsewhere)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)


def _worker_main(database_url: str, parent_pid: int, wakeups, notices, grace_seconds: float) -> None:
    """A worker process: one LocalRunner thread until SIGTERM, then a graceful stop."""
    _die_with_parent(parent_pid)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops us

    from ..storage import init_db
    from . import events
    from .local import LocalRunner

    init_db(database_url)
    events.subscribe(notices.put)
    runner = LocalRunner(1, database_url=database_url, wakeups=wakeups).start()
    stop.wait()
    runner.stop(grace_seconds)
    notices.close()
    notices.join_thread()


class WorkerPool:
    """``workers`` (>= 1) worker processes running the ``local`` jobs of ``database_url``."""

    def __init__(self, workers: int, *, database_url: str, grace_seconds: float):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1; got {workers!r}")
        import multiprocessing

        self.workers = workers
        self.database_url = database_url
        self.grace_seconds = float(grace_seconds)
        self._context = multiprocessing.get_context("spawn")  # no copy of the API's threads and sockets
        self._wakeups = self._context.Semaphore(0)
        self._notices = self._context.Queue()
        self._processes: List = []
        self._relay: Optional[threading.Thread] = None

    def start(self) -> "WorkerPool":
        """Start the workers. Call it from a thread that lives as long as the pool (the
        kernel signals a worker when the thread that started it ends)."""
        for index in range(self.workers):
            process = self._context.Process(
                target=_worker_main, name=f"dgx-music-worker-{index + 1}", daemon=False,
                args=(self.database_url, os.getpid(), self._wakeups, self._notices, self.grace_seconds),
            )
            process.start()
            self._processes.append(process)
        self._relay = threading.Thread(target=self._relay_notices, name="dgx-music-worker-notices", daemon=True)
        self._relay.start()
        return self

    def _relay_notices(self) -> None:
        from . import events

        while True:
            try:
                generation_id = self._notices.get()
            except (EOFError, OSError):
                return
            if generation_id is None:
                return
            events.publish(generation_id)

    def wake(self) -> None:
        """A job was queued: let one idle worker look now."""
        self._wakeups.release()

    def alive(self) -> bool:
        return bool(self._processes) and all(process.is_alive() for process in self._processes)

    @property
    def pids(self) -> List[int]:
        return [process.pid for process in self._processes if process.pid is not None]

    def stop(self) -> None:
        """SIGTERM every worker and wait: each takes no new job, gives its running one the
        grace period, re-queues it if needed, and exits."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(self.grace_seconds + 20)
            if process.is_alive():  # pragma: no cover - a worker stuck past its own grace
                logger.error("worker %s did not stop; killing it", process.pid)
                process.kill()
                process.join(5)
        self._notices.put(None)
        if self._relay is not None:
            self._relay.join(5)
        self._processes = []
