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
from typing import Callable, List, Optional, Set

from .owner import current_owner

__all__ = ["IDLE_POLL_SECONDS", "LocalRunner", "warm_up"]

logger = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0


def warm_up(engine) -> None:
    """Load now what a runner's first job would load (the analysis libraries; a procedural
    engine renders a quarter second on NumPy, without torch; MusicGen's torch), so that job
    does not pay the imports. A MusicGen engine's model still loads at its first job."""
    import soundfile  # noqa: F401  (the exporter's and reader's library)

    from ..audio import AudioMetadataExtractor

    if getattr(engine, "backend", None) == "procedural":
        audio = engine.generate_array("warm-up", duration=0.25, seed=0).audio
        AudioMetadataExtractor(extract_bpm=True, extract_key=True).extract_metadata_from_tensor(
            audio, engine.sample_rate, compute_stats=True)
    else:
        import torch  # noqa: F401


class LocalRunner:
    """Run queued ``local`` jobs on ``workers`` threads (>= 1).

    Each thread makes one generation engine (the configured
    :class:`~services.generation.MusicGenerationEngine`) and keeps it for its life, so a
    model loads once. ``wakeups``, an object with ``acquire(timeout=...)`` such as a
    multiprocessing semaphore, wakes an idle thread from another process (the API's, in
    :class:`~services.jobs.pool.WorkerPool`).
    """

    def __init__(
        self,
        workers: int = 1,
        *,
        database_url: Optional[str] = None,
        lease_seconds: Optional[float] = None,
        wakeups=None,
    ):
        from ..config import get_settings

        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1; got {workers!r}")
        self.workers = workers
        self.database_url = database_url
        self.lease_seconds = get_settings().lease_seconds if lease_seconds is None else float(lease_seconds)
        self.sweep_seconds = self.lease_seconds / 3.0
        self.owner = current_owner()
        self._external_wakeups = wakeups
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._stopping = threading.Event()  # no new claims
        self._interrupt = threading.Event()  # running jobs: stop at the next step
        self._threads: List[threading.Thread] = []
        self._running: Set[str] = set()  # ids of the jobs running now
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
        from . import lifecycle
        from .events import changing
        from .recovery import remove_job_file

        requeued = []
        for generation_id in self.running:
            try:
                with changing(generation_id, self.database_url) as session:
                    generation = lifecycle.owned(session, generation_id, self.owner)
                    lifecycle.requeue(generation, "stopped by a shutdown; re-queued")
                    path = generation.file_path
                remove_job_file(path)
                requeued.append(generation_id)
            except Exception:
                logger.exception("could not re-queue generation %s at shutdown", generation_id)
        return requeued

    # --- threads ------------------------------------------------------------------------

    def _work(self) -> None:
        from ..storage import get_session
        from . import lifecycle

        from ..generation import MusicGenerationEngine

        engine = MusicGenerationEngine()
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

    def _run(self, generation_id: str, engine) -> None:
        from ..errors import JobCancelledError, JobInterruptedError, LeaseLostError
        from ..pipeline import run_generation

        with self._running_lock:
            self._running.add(generation_id)
        try:
            run_generation(generation_id, owner=self.owner, engine=engine, database_url=self.database_url,
                           should_stop=self._interrupt.is_set, claimed=True)
        except (JobCancelledError, JobInterruptedError, LeaseLostError):
            pass  # recorded by run_generation (or by the process that took the job over)
        except Exception:
            logger.exception("generation %s failed", generation_id)
        finally:
            with self._running_lock:
                self._running.discard(generation_id)

    def _sweep(self) -> None:
        from .recovery import recover_jobs

        while True:
            try:
                recover_jobs(self.database_url, lease_seconds=self.lease_seconds)
            except Exception:
                logger.exception("could not recover interrupted jobs")
            if self._stopping.wait(self.sweep_seconds):
                return
