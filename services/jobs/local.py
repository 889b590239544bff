"""The local runner: a bounded pool of threads that runs the history's queued jobs.

It runs inside ``dgx-music serve`` on SQLite (and as ``dgx-music worker`` on the same
machine). The queue is the history itself: each thread claims the oldest ``pending``
job of the ``local`` runner (SQLite's ``BEGIN IMMEDIATE`` makes the claim atomic), runs
:func:`services.pipeline.run_generation`, and waits for the next one (woken at once by
a submission in this process, else every :data:`IDLE_POLL_SECONDS`). One heartbeat
thread renews the leases of the running jobs; one sweep thread recovers the jobs of
runners that died (:mod:`services.jobs.recovery`), including this process's own jobs
from before a restart, which run again.

:meth:`LocalRunner.stop` takes no new job, lets running ones finish within the grace
period, then asks them to stop at their next step and re-queues them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, List, Optional

from .owner import current_owner

__all__ = ["IDLE_POLL_SECONDS", "LocalRunner", "warm_up"]

logger = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0


def warm_up(engine) -> None:
    """Load now what a runner's first job would load (torch, the analysis libraries; a
    procedural engine renders a quarter second), so that job does not pay seconds of
    imports. A MusicGen engine's model still loads at its first job."""
    import soundfile  # noqa: F401  (the exporter's and reader's library)

    from ..audio import AudioMetadataExtractor

    if getattr(engine, "backend", None) == "procedural":
        audio, _ = engine.generate_audio("warm-up", duration=0.25, seed=0)
        AudioMetadataExtractor(extract_bpm=True, extract_key=True).extract_metadata_from_tensor(
            audio, engine.sample_rate, compute_stats=True)
    else:
        import torch  # noqa: F401


class LocalRunner:
    """Run queued ``local`` jobs on ``workers`` threads (>= 1).

    ``engine_factory()`` makes one generation engine per thread (default: the configured
    :class:`~services.generation.MusicGenerationEngine`), kept for the thread's life so a
    model loads once. ``on_finish(generation_id, seconds, outcome)`` is called after
    each run (for metrics). ``wakeups``, an object with ``acquire(timeout=...)`` such as a
    multiprocessing semaphore, wakes an idle thread from another process (the API's, in
    :class:`~services.jobs.pool.WorkerPool`).
    """

    def __init__(
        self,
        workers: int = 1,
        *,
        database_url: Optional[str] = None,
        engine_factory: Optional[Callable[[], object]] = None,
        lease_seconds: Optional[float] = None,
        wakeups=None,
        on_finish: Optional[Callable[[str, float, str], None]] = None,
    ):
        from ..config import get_settings

        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1; got {workers!r}")
        self.workers = workers
        self.database_url = database_url
        self.lease_seconds = get_settings().lease_seconds if lease_seconds is None else float(lease_seconds)
        self.sweep_seconds = self.lease_seconds / 3.0
        self.owner = current_owner()
        self._engine_factory = engine_factory
        self._on_finish = on_finish
        self._external_wakeups = wakeups
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._stopping = threading.Event()  # no new claims
        self._interrupt = threading.Event()  # running jobs: stop at the next step
        self._threads: List[threading.Thread] = []
        self._running: Dict[str, float] = {}  # generation id -> start (monotonic)
        self._running_lock = threading.Lock()
        self._heartbeat = None
        self._blas = None
        self._unsubscribe: Optional[Callable[[], None]] = None

    # --- life ---------------------------------------------------------------------------

    def start(self) -> "LocalRunner":
        from ..audio._blas import single_threaded_blas
        from . import events
        from .heartbeat import Heartbeat

        # Jobs run side by side: each gets one BLAS thread, not a pool that fights the
        # other jobs' for the same cores (process-wide, for the runner's life).
        self._blas = single_threaded_blas()
        self._blas.__enter__()

        self._heartbeat = Heartbeat(self.owner, database_url=self.database_url,
                                    interval=self.lease_seconds / 6.0).start()
        self._unsubscribe = events.subscribe(lambda _generation_id: self.wake())
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"dgx-music-job-{index + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)
        sweeper = threading.Thread(target=self._sweep, name="dgx-music-sweep", daemon=True)
        sweeper.start()
        self._threads.append(sweeper)
        return self

    def wake(self) -> None:
        """A job may be waiting: let an idle thread look now."""
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def alive(self) -> bool:
        """Whether every worker thread still runs (False once stopped)."""
        workers = [t for t in self._threads if t.name.startswith("dgx-music-job-")]
        return bool(workers) and all(t.is_alive() for t in workers)

    @property
    def running(self) -> List[str]:
        """Ids of the jobs running now."""
        with self._running_lock:
            return list(self._running)

    def stop(self, grace_seconds: float = 30.0) -> List[str]:
        """Stop: no new job; running ones get ``grace_seconds`` to finish, then stop at their
        next step and go back to the queue (a job still inside a long step after that is
        re-queued here, and its thread's work is discarded). Returns the re-queued ids."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + max(0.0, grace_seconds)
        self._join_workers(deadline)
        if self.running:
            logger.warning("%d job(s) still running after %.0f s: re-queuing them", len(self.running), grace_seconds)
            self._interrupt.set()
            self._join_workers(time.monotonic() + 5.0)
        requeued = self._requeue_leftovers()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._heartbeat is not None:
            self._heartbeat.stop()
        if self._blas is not None:
            self._blas.__exit__(None, None, None)
            self._blas = None
        return requeued

    def _join_workers(self, deadline: float) -> None:
        for thread in self._threads:
            if thread.name.startswith("dgx-music-job-"):
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _requeue_leftovers(self) -> List[str]:
        from ..storage import get_session
        from . import events, lifecycle
        from .recovery import remove_job_file

        requeued = []
        for generation_id in self.running:
            try:
                with get_session(self.database_url) as session:
                    generation = lifecycle.owned(session, generation_id, self.owner)
                    lifecycle.requeue(generation, "stopped by a shutdown; re-queued")
                    path = generation.file_path
                    events.announce(session, generation_id)
                remove_job_file(path)
                events.publish(generation_id)
                requeued.append(generation_id)
            except Exception:
                logger.exception("could not re-queue generation %s at shutdown", generation_id)
        return requeued

    # --- threads ------------------------------------------------------------------------

    def _work(self) -> None:
        from ..storage import get_session
        from . import lifecycle

        engine = self._make_engine()
        try:
            warm_up(engine)
        except Exception:  # a warm-up that fails must not stop the runner; the job will tell
            logger.exception("the warm-up of a job thread failed")
        while not self._stopping.is_set():
            try:
                with get_session(self.database_url) as session:
                    generation = lifecycle.claim_next(session, self.owner, runner="local",
                                                      lease_seconds=self.lease_seconds)
                    generation_id = None if generation is None else generation.id
            except Exception:
                logger.exception("could not take a job from the queue")
                generation_id = None
                self._stopping.wait(IDLE_POLL_SECONDS)
            if generation_id is None:
                self._idle()
                continue
            self._run(generation_id, engine)

    def _idle(self) -> None:
        if self._external_wakeups is not None and self._pending_wakeups == 0:
            self._external_wakeups.acquire(timeout=IDLE_POLL_SECONDS)
            return
        with self._wake:
            if self._pending_wakeups == 0 and not self._stopping.is_set():
                self._wake.wait(IDLE_POLL_SECONDS)
            self._pending_wakeups = max(0, self._pending_wakeups - 1)

    def _make_engine(self):
        if self._engine_factory is not None:
            return self._engine_factory()
        from ..generation import MusicGenerationEngine

        return MusicGenerationEngine()

    def _run(self, generation_id: str, engine) -> None:
        from ..errors import JobCancelledError, JobInterruptedError, LeaseLostError
        from ..pipeline import run_generation

        started = time.monotonic()
        with self._running_lock:
            self._running[generation_id] = started
        outcome = "completed"
        try:
            run_generation(generation_id, owner=self.owner, engine=engine, database_url=self.database_url,
                           should_stop=self._interrupt.is_set, claimed=True)
        except JobCancelledError:
            outcome = "cancelled"
        except JobInterruptedError:
            outcome = "requeued"
        except LeaseLostError:
            outcome = "lost"
        except Exception:
            outcome = "failed"
            logger.exception("generation %s failed", generation_id)
        finally:
            with self._running_lock:
                self._running.pop(generation_id, None)
        if self._on_finish is not None:
            self._on_finish(generation_id, time.monotonic() - started, outcome)

    def _sweep(self) -> None:
        from .recovery import recover_jobs

        while True:
            try:
                recover_jobs(self.database_url, lease_seconds=self.lease_seconds)
            except Exception:
                logger.exception("could not recover interrupted jobs")
            if self._stopping.wait(self.sweep_seconds):
                return
