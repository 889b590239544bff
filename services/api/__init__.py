"""The HTTP API of ``dgx-music serve`` (FastAPI on uvicorn).

``create_app()`` builds the application; :func:`services.api.server.serve` runs it.
FastAPI loads when this package's names are first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

__all__ = ["create_app", "serve"]

_LOCATIONS = {"create_app": ".app", "serve": ".server"}

if TYPE_CHECKING:  # pragma: no cover
    from .app import create_app
    from .server import serve

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LOCATIONS)
