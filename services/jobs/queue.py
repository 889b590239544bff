"""The PostgreSQL job queue: Procrastinate, in the history's own database and schema.

- One task, :data:`TASK_NAME` on queue :data:`QUEUE` (:func:`_register_task`): it takes a generation id (never a payload) and runs :func:`services.pipeline.run_generation`.
- :func:`enqueue` defers that task on the connection of the caller's SQLAlchemy session,
  inside the same transaction as the history row: both are written, or neither.
- :func:`run_worker` is ``dgx-music worker``: a Procrastinate worker (LISTEN/NOTIFY,
  worker heartbeats) plus this product's lease heartbeat and recovery sweep. A job whose
  worker died (no heartbeat for ``DGX_MUSIC_LEASE_SECONDS``, or its process known dead
  on this host) is put back in the queue by any other worker's sweep and runs again, at
  most ``DGX_MUSIC_MAX_ATTEMPTS`` times in all.

Two Procrastinate apps per database: a synchronous client (defer, cancel, retry; used by
the API and the sweep) and, in a worker, the asynchronous app that runs the task.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, Optional

__all__ = [
    "QUEUE",
    "TASK_NAME",
    "cancel_queue_job",
    "enqueue",
    "queue_client",
    "requeue_queue_jobs",
    "run_worker",
    "run_worker_async",
]

logger = logging.getLogger(__name__)

QUEUE = "generations"
TASK_NAME = "dgx_music.run_generation"

_clients: Dict[str, Any] = {}
_clients_lock = threading.Lock()


def _procrastinate():
    try:
        import procrastinate
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "the PostgreSQL job queue needs Procrastinate: pip install 'dgx-music[postgres]'"
        ) from exc
    return procrastinate


def conninfo(database_url: Optional[str] = None) -> str:
    """The libpq URI of the history's database (SQLAlchemy's driver suffix removed)."""
    from sqlalchemy.engine import make_url

    from ..storage.database import resolve_url

    url = make_url(resolve_url(database_url))
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"the job queue needs PostgreSQL; DATABASE_URL is {url.get_backend_name()!r}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _register_task(app) -> None:
    """Declare the one task on ``app``: a generation id in, the job run; a run stopped by a
    worker's shutdown (its row is pending again) goes back to the queue."""
    from procrastinate import RetryStrategy

    from ..errors import JobInterruptedError

    retry = RetryStrategy(max_attempts=1000, wait=0, retry_exceptions={JobInterruptedError})
    app.task(name=TASK_NAME, queue=QUEUE, pass_context=True, retry=retry)(_run_generation_task)


def _run_generation_task(context, generation_id: str) -> None:
    """The queue task: run one generation (by id); a cancel or a takeover ends it quietly."""
    from ..errors import JobCancelledError, LeaseLostError
    from ..pipeline import run_generation

    runtime = _WorkerRuntime.current()
    try:
        run_generation(generation_id, owner=runtime.owner, engine=runtime.engine(),
                       should_stop=context.should_abort)
    except (JobCancelledError, LeaseLostError) as exc:
        logger.info("generation %s: %s", generation_id, exc)


class _WorkerRuntime:
    """Per process: who runs the jobs (lease owner), its heartbeat, one engine per thread."""

    _instance: Optional["_WorkerRuntime"] = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        from .heartbeat import Heartbeat
        from .owner import current_owner

        self.owner = current_owner()
        self.heartbeat = Heartbeat(self.owner).start()
        self._local = threading.local()

    @classmethod
    def current(cls) -> "_WorkerRuntime":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def engine(self):
        engine = getattr(self._local, "engine", None)
        if engine is None:
            from ..generation import MusicGenerationEngine

            engine = self._local.engine = MusicGenerationEngine()
        return engine


def queue_client(database_url: Optional[str] = None):
    """The synchronous Procrastinate app of the history's database (defer, cancel, retry)."""
    procrastinate = _procrastinate()
    from procrastinate import SyncPsycopgConnector

    info = conninfo(database_url)
    with _clients_lock:
        app = _clients.get(info)
        if app is None:
            app = procrastinate.App(
                connector=SyncPsycopgConnector(conninfo=info, min_size=0, max_size=4)
            )
            _register_task(app)
            app.open()
            _clients[info] = app
        return app


def close_queue_clients() -> None:
    """Close the client apps' connection pools (tests, shutdown)."""
    with _clients_lock:
        apps = list(_clients.values())
        _clients.clear()
    for app in apps:
        try:
            app.close()
        except Exception:  # pragma: no cover
            logger.exception("could not close a queue client")


def enqueue(session, generation) -> int:
    """Defer the generation's task on ``session``'s own connection, in its transaction;
    records the queue job's id on the row and returns it."""
    app = queue_client(str(session.get_bind().url.render_as_string(hide_password=False)))
    driver_connection = session.connection().connection.driver_connection
    queue_job_id = app.configure_task(TASK_NAME, connection=driver_connection).defer(generation_id=generation.id)
    generation.queue_job_id = int(queue_job_id)
    session.flush()
    return int(queue_job_id)


def cancel_queue_job(database_url: Optional[str], queue_job_id: Optional[int]) -> bool:
    """Cancel a job still waiting in the queue (after its row was cancelled); False when it
    had already started or ended (the task then finds its row cancelled and stops)."""
    if queue_job_id is None:
        return False
    try:
        return bool(queue_client(database_url).job_manager.cancel_job_by_id(int(queue_job_id)))
    except Exception:
        logger.exception("could not cancel queue job %s", queue_job_id)
        return False


def requeue_queue_jobs(database_url: Optional[str], actions: Iterable[Any]) -> None:
    """Put the queue jobs of re-queued rows back to ``todo``; a row whose queue job cannot
    be retried (it ended, or is gone) gets a new queue job, so no row waits without one."""
    from ..storage import get_session
    from ..storage.crud import locked_generation

    client = queue_client(database_url)
    for action in actions:
        retried = False
        if action.queue_job_id is not None:
            try:
                client.job_manager.retry_job_by_id(int(action.queue_job_id), retry_at=datetime.now(timezone.utc))
                retried = True
            except Exception as exc:  # not in 'doing' or 'failed': already retried, or ended
                status = _queue_job_status(client, action.queue_job_id)
                retried = status in ("todo", "doing")
                logger.info("queue job %s of %s not retried (%s): status %s", action.queue_job_id,
                            action.generation_id, exc, status)
        if not retried:
            with get_session(database_url) as session:
                generation = locked_generation(session, action.generation_id)
                if generation.status == "pending":
                    enqueue(session, generation)


def _queue_job_status(client, queue_job_id: int) -> Optional[str]:
    try:
        return client.job_manager.get_job_status(int(queue_job_id)).value
    except Exception:
        return None


async def _sweep_forever(app, database_url: Optional[str], lease_seconds: float, sweep_seconds: float) -> None:
    """Recover the jobs of dead runners (leases) and the queue jobs of dead workers
    (Procrastinate's worker heartbeats), every ``sweep_seconds``."""
    from .recovery import recover_jobs

    while True:
        try:
            await asyncio.to_thread(recover_jobs, database_url, lease_seconds=lease_seconds)
            for job in await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=lease_seconds):
                try:
                    await app.job_manager.retry_job(job)
                    logger.warning("queue job %s of a stalled worker put back in the queue", job.id)
                except Exception as exc:
                    logger.info("stalled queue job %s not retried: %s", job.id, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("the recovery sweep failed")
        await asyncio.sleep(sweep_seconds)


async def run_worker_async(
    database_url: Optional[str] = None,
    *,
    concurrency: int = 1,
    install_signal_handlers: bool = True,
    ready: Optional[threading.Event] = None,
) -> None:
    """Run a queue worker until it is stopped (SIGTERM/SIGINT when ``install_signal_handlers``,
    else by cancelling this coroutine): ``concurrency`` jobs at once, each on a thread."""
    procrastinate = _procrastinate()
    from procrastinate import PsycopgConnector

    from ..audio._blas import single_threaded_blas
    from ..config import get_settings
    from .local import warm_up

    settings = get_settings()
    runtime = _WorkerRuntime.current()
    app = procrastinate.App(connector=PsycopgConnector(conninfo=conninfo(database_url), min_size=1, max_size=4))
    _register_task(app)
    await asyncio.to_thread(warm_up, runtime.engine())  # imports once, before the first job
    # Several workers (and jobs) share the machine's cores: one BLAS thread per job.
    with single_threaded_blas():
        await _run(app, database_url, settings, concurrency, install_signal_handlers, ready)


async def _run(app, database_url, settings, concurrency: int, install_signal_handlers: bool, ready) -> None:
    async with app.open_async():
        sweeper = asyncio.create_task(_sweep_forever(app, database_url, settings.lease_seconds,
                                                      settings.sweep_seconds))
        if ready is not None:
            ready.set()
        try:
            await app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency,
                wait=True,
                listen_notify=True,
                fetch_job_polling_interval=min(5.0, settings.lease_seconds / 6.0),
                shutdown_graceful_timeout=settings.shutdown_grace_seconds,
                update_heartbeat_interval=settings.heartbeat_seconds,
                stalled_worker_timeout=settings.lease_seconds,
                install_signal_handlers=install_signal_handlers,
                delete_jobs="successful",
            )
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)


def run_worker(database_url: Optional[str] = None, *, concurrency: int = 1) -> None:
    """``dgx-music worker`` on PostgreSQL: run until SIGTERM or Ctrl-C, then exit cleanly."""
    asyncio.run(run_worker_async(database_url, concurrency=concurrency))
