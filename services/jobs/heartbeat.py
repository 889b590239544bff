"""A thread that keeps a process's job leases alive while it runs jobs."""

from __future__ import annotations

import logging
import threading
from typing import Optional

__all__ = ["Heartbeat"]

logger = logging.getLogger(__name__)


class Heartbeat:
    """Renew every lease of ``owner`` each ``interval`` seconds (default: the settings'
    ``lease_seconds / 6``) on a daemon thread, from ``start()`` (or ``with``) to ``stop()``.

    A failed renewal (the database briefly unreachable) is logged and retried at the
    next beat; the lease only lapses if renewals fail for the whole lease time.
    """

    def __init__(self, owner: str, *, database_url: Optional[str] = None, interval: Optional[float] = None):
        if interval is None:
            from ..config import get_settings

            interval = get_settings().heartbeat_seconds
        self.owner = owner
        self.database_url = database_url
        self.interval = float(interval)
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def beat(self) -> int:
        """Renew now; returns how many running jobs were renewed."""
        from ..storage import get_session
        from .lifecycle import renew_leases

        with get_session(self.database_url) as session:
            return renew_leases(session, self.owner)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.beat()
            except Exception:
                logger.exception("could not renew the job leases of %s", self.owner)

    def start(self) -> "Heartbeat":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dgx-music-heartbeat", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "Heartbeat":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
