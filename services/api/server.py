"""``dgx-music serve``: the API on uvicorn, with its jobs, until SIGTERM or Ctrl-C.

On SIGTERM (systemd, a container runtime) or Ctrl-C: stop accepting connections, end
the event streams, stop taking jobs, give running jobs ``DGX_MUSIC_SHUTDOWN_GRACE``
seconds, re-queue what is left, and exit with status 0.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
from typing import Optional

__all__ = ["serve"]

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: Optional[str] = None, port: int = DEFAULT_PORT, workers: int = 1, *, log_level: str = "info") -> int:
    """Run the service in the foreground; returns the exit status (0 after a clean stop)."""
    import uvicorn

    from ..config import get_settings
    from .app import create_app

    settings = get_settings()
    host = host or DEFAULT_HOST
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    say = lambda line: print(f"dgx-music: {line}", file=sys.stderr, flush=True)  # noqa: E731
    if settings.api_keys:
        say(f"API keys required on /api/ ({len(settings.api_keys)} key(s) from DGX_MUSIC_API_KEYS)")
    elif _is_loopback(host):
        say(f"no DGX_MUSIC_API_KEYS: the API is open, so it listens on {host} only (this machine)")
    else:
        say(f"warning: no DGX_MUSIC_API_KEYS and listening on {host}: anyone who reaches this port can use the API")
    app = create_app(settings, workers=workers)
    runner = "no workers (jobs wait for `dgx-music worker`)" if workers == 0 else f"{workers} worker(s)"
    say(f"history {app.state.dispatcher.mode} queue, {runner}; outputs in {settings.audio_output_dir}")

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            await app.state.hub.stop()  # end the event streams first, so connections close
            await super().shutdown(sockets=sockets)

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on",
                            timeout_graceful_shutdown=5, access_log=False)
    server = _Server(config)
    # uvicorn re-raises a captured SIGTERM after its graceful stop; a stop we asked for is a
    # success, so let that re-raise land on a handler that does nothing.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run()
    except SystemExit:  # uvicorn's exit when it cannot listen (it has logged why)
        if server.started:
            raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not server.started:
        say(f"error: could not serve on {host}:{port} (see the line above)")
        return 1
    return 0
