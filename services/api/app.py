"""The FastAPI application of ``dgx-music serve``: API v1, health, metrics, docs, the page."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from typing import Any, Optional

from fastapi import Depends, FastAPI

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
) -> FastAPI:
    """The service for one history: ``settings`` (default: the environment's), ``workers``
    jobs at once in this process (0: the API alone; other processes run the jobs).

    ``engine`` checks requests (default: the configured backend).
    """
    from ..storage.database import resolve_url
    from .auth import require_api_key
    from .dispatcher import Dispatcher
    from .hub import ChangeHub
    from .problems import install_problem_handlers
    from .routes import analyses, generations, health

    settings = settings or get_settings()
    url = resolve_url(database_url or settings.database_url)
    dispatcher = Dispatcher(settings, database_url=url, workers=workers, engine=engine)
    hub = ChangeHub()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from starlette.concurrency import run_in_threadpool

        from ..jobs.recovery import recover_jobs
        from ..storage import init_db

        await run_in_threadpool(init_db, url)
        await run_in_threadpool(recover_jobs, url)  # jobs of a previous run of this service
        await hub.start(url)
        dispatcher.start()  # on this (the main) thread: worker processes are tied to it
        # What start-up loaded (modules, the app, SQLAlchemy's caches) lives as long as the
        # process: keep it out of the garbage collector's full passes, which would
        # otherwise scan it all and stall requests for tens of milliseconds.
        gc.collect()
        gc.freeze()
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
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # served below from the package: no request leaves the server's origin
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database_url = url
    app.state.output_root = settings.audio_output_dir
    app.state.dispatcher = dispatcher
    app.state.hub = hub
    install_problem_handlers(app)
    # With keys, every /api/ operation needs one (and the schema says so); without, none.
    guarded = [Depends(require_api_key)] if settings.api_keys else []
    app.include_router(generations.router, dependencies=guarded)
    app.include_router(analyses.router, dependencies=guarded)
    app.include_router(health.router)
    _add_docs(app)
    _add_page(app)
    return app


def _add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI (swagger-ui-dist 5.35.0, Apache-2.0, vendored in
    ``static/swagger-ui``) on this API's ``/openapi.json``."""
    from pathlib import Path

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    static = Path(__file__).resolve().parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )


def _add_page(app: FastAPI) -> None:
    """``/``: the page of ``services.web`` (its files under ``/web``), a client of the API
    like any other."""
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    from ..web import STATIC_DIR

    app.mount("/web", StaticFiles(directory=STATIC_DIR), name="web")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
