"""The FastAPI application of ``dgx-music serve``: API v1, health, metrics, docs."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any, Optional

from fastapi import FastAPI

from .. import __version__
from ..config import Settings, get_settings

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    settings: Optional[Settings] = None,
    *,
    workers: int = 1,
    database_url: Optional[str] = None,
    engine: Any = None,
    engine_factory=None,
) -> FastAPI:
    """The service for one history: ``settings`` (default: the environment's), ``workers``
    jobs at once in this process (0: the API alone; other processes run the jobs).

    ``engine`` checks requests and ``engine_factory`` makes the engines that run jobs (both
    default to the configured backend).
    """
    from ..storage.database import resolve_url
    from .dispatcher import Dispatcher
    from .hub import ChangeHub
    from .problems import install_problem_handlers
    from .routes import analyses, generations, health

    settings = settings or get_settings()
    url = resolve_url(database_url or settings.database_url)
    dispatcher = Dispatcher(settings, database_url=url, workers=workers, engine=engine,
                            engine_factory=engine_factory)
    hub = ChangeHub()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from starlette.concurrency import run_in_threadpool

        from ..jobs.recovery import recover_jobs
        from ..storage import init_db

        await run_in_threadpool(init_db, url)
        await run_in_threadpool(recover_jobs, url)  # jobs of a previous run of this service
        await hub.start(url)
        await run_in_threadpool(dispatcher.start)
        try:
            yield
        finally:
            await hub.stop()
            await run_in_threadpool(dispatcher.stop)
            if dispatcher.mode == "procrastinate":
                from ..jobs.queue import close_queue_clients

                close_queue_clients()

    app = FastAPI(
        title="dgx-music",
        version=__version__,
        summary="Generate, measure, file and serve loudness-normalized music tracks.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database_url = url
    app.state.output_root = settings.audio_output_dir
    app.state.dispatcher = dispatcher
    app.state.hub = hub
    install_problem_handlers(app)
    app.include_router(generations.router)
    app.include_router(analyses.router)
    app.include_router(health.router)
    return app
