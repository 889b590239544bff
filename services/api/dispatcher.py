"""Where the API's jobs go: the local runner (SQLite) or Procrastinate (PostgreSQL).

The API never generates audio itself: it records and enqueues (:meth:`Dispatcher.submit`),
cancels, and, when ``serve`` runs workers (``--workers N``, N > 0), owns what runs them:
on SQLite a :class:`~services.jobs.pool.WorkerPool` of N worker processes; on PostgreSQL
a Procrastinate worker with concurrency N on its own thread and event loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any, Dict, Optional

from ..config import Settings

__all__ = ["Dispatcher"]

logger = logging.getLogger(__name__)


class Dispatcher:
    """Submit, cancel and run jobs for one history (``database_url``)."""

    def __init__(self, settings: Settings, *, database_url: str, workers: int = 1, engine: Any = None):
        from sqlalchemy.engine import make_url

        self.settings = settings
        self.database_url = database_url
        self.workers = int(workers)
        self.mode = "procrastinate" if make_url(database_url).get_backend_name() == "postgresql" else "local"
        self._engine = engine
        self._pool = None
        self._worker_thread: Optional[threading.Thread] = None
        self._worker_loop: Optional[asyncio.AbstractEventLoop] = None
        self._worker_task: Optional[asyncio.Future] = None
        self._lock = threading.Lock()

    # --- engine for request checks ------------------------------------------------------

    @property
    def engine(self):
        """The engine that checks requests (the configured backend; no model is loaded)."""
        with self._lock:
            if self._engine is None:
                from ..generation import MusicGenerationEngine

                self._engine = MusicGenerationEngine()
            return self._engine

    # --- jobs ---------------------------------------------------------------------------

    def submit(self, prompt: str, duration: float, seed: Optional[int], bit_depth: str, delivery=None):
        """Record and enqueue a job; returns its ``Generation`` row (``pending``)."""
        from ..pipeline import submit_generation

        enqueue = None
        if self.mode == "procrastinate":
            from ..jobs.queue import enqueue
        generation = submit_generation(
            prompt, duration, seed, bit_depth=bit_depth, delivery=delivery, runner=self.mode, engine=self.engine,
            database_url=self.database_url, queue_limit=self.settings.queue_limit, enqueue=enqueue,
        )
        if self._pool is not None:
            self._pool.wake()
        return generation

    def cancel(self, generation_id: str):
        """Cancel a job (see :func:`services.jobs.lifecycle.request_cancel`); returns the row."""
        from ..jobs import lifecycle
        from ..jobs.events import changing
        from ..jobs.recovery import remove_job_file

        with changing(generation_id, self.database_url) as session:
            generation = lifecycle.request_cancel(session, generation_id)
        if generation.status == "cancelled":
            remove_job_file(generation.file_path)  # a queued job has none; be sure
            if self.mode == "procrastinate":
                from ..jobs.queue import cancel_queue_job

                cancel_queue_job(self.database_url, generation.queue_job_id)
        return generation

    # --- runners ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the runner (nothing with ``workers == 0``). Call it from the thread that
        lives as long as the service (worker processes are tied to it)."""
        if self.workers <= 0:
            return
        if self.mode == "local":
            from ..jobs.pool import WorkerPool

            self._pool = WorkerPool(self.workers, database_url=self.database_url,
                                    grace_seconds=self.settings.shutdown_grace_seconds).start()
        else:
            ready = threading.Event()
            self._worker_thread = threading.Thread(target=self._run_queue_worker, args=(ready,),
                                                   name="dgx-music-queue-worker", daemon=True)
            self._worker_thread.start()
            if not ready.wait(timeout=30):
                raise RuntimeError("the queue worker did not start within 30 s")

    def _run_queue_worker(self, ready: threading.Event) -> None:
        from ..jobs.queue import run_worker_async

        loop = asyncio.new_event_loop()
        self._worker_loop = loop
        try:
            self._worker_task = loop.create_task(run_worker_async(
                self.database_url, concurrency=self.workers, install_signal_handlers=False, ready=ready,
            ))
            loop.run_until_complete(self._worker_task)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("the queue worker stopped with an error")
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop the runner: no new job; running ones get the shutdown grace period
        (``DGX_MUSIC_SHUTDOWN_GRACE``), then are re-queued."""
        grace = self.settings.shutdown_grace_seconds
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
        if self._worker_thread is not None and self._worker_loop is not None and self._worker_task is not None:
            self._worker_loop.call_soon_threadsafe(self._worker_task.cancel)
            self._worker_thread.join(timeout=grace + 15)
            self._worker_thread = None

    # --- health -------------------------------------------------------------------------

    def running_jobs(self) -> int:
        """Jobs running now in this service's worker processes (or its queue worker)."""
        from sqlalchemy import func, or_, select

        from ..jobs.owner import current_owner
        from ..storage import Generation, get_session

        if self._pool is not None:
            prefixes = [f"{socket.gethostname()}:{pid}:" for pid in self._pool.pids]
        elif self._worker_thread is not None:
            prefixes = [current_owner()]
        else:
            return 0
        if not prefixes:
            return 0
        with get_session(self.database_url, readonly=True) as session:
            return int(session.scalar(
                select(func.count()).select_from(Generation).where(
                    Generation.status == "processing",
                    or_(*[Generation.lease_owner.startswith(prefix, autoescape=True) for prefix in prefixes]))))

    def health(self) -> Dict[str, str]:
        """``database`` and ``queue``: "ok" or what is wrong."""
        from sqlalchemy import text

        from ..storage import get_session

        report = {"database": "ok", "queue": "ok"}
        try:
            with get_session(self.database_url, readonly=True) as session:
                session.execute(text("SELECT 1"))
                if self.mode == "procrastinate":
                    session.execute(text("SELECT 1 FROM procrastinate_jobs LIMIT 1"))
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            report["database"] = f"unreachable: {type(exc).__name__}"
            report["queue"] = "unknown"
            return report
        if self._pool is not None and not self._pool.alive():
            report["queue"] = "a worker process has stopped"
        if self._worker_thread is not None and not self._worker_thread.is_alive():
            report["queue"] = "the queue worker has stopped"
        return report
