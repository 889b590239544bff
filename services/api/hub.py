"""Wake-ups for the event streams: "generation X may have changed".

Fed by the jobs of this process (:func:`services.jobs.events.publish`) and, on
PostgreSQL, by ``LISTEN`` on :data:`services.jobs.events.CHANNEL` (jobs run by workers
elsewhere). A stream that waits here also re-reads its row at a short interval, so a
lost notice only delays an event.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Dict, Optional, Set

__all__ = ["ChangeHub"]

logger = logging.getLogger(__name__)


class ChangeHub:
    """Per-generation wake-ups for coroutines on one event loop (thread-safe notify)."""

    def __init__(self) -> None:
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._waiters: Dict[str, Set[asyncio.Event]] = {}
        self._unsubscribe = None
        self._listener: Optional[asyncio.Task] = None
        self.closing = asyncio.Event()

    async def start(self, database_url: Optional[str]) -> None:
        from ..jobs import events

        self._loop = asyncio.get_running_loop()
        self.closing = asyncio.Event()
        self._unsubscribe = events.subscribe(self.notify_threadsafe)
        if database_url is not None and database_url.startswith("postgresql"):
            self._listener = asyncio.create_task(self._listen(database_url))

    async def stop(self) -> None:
        self.closing.set()
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None

    def notify_threadsafe(self, generation_id: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._notify, generation_id)

    def _notify(self, generation_id: str) -> None:
        for waiter in self._waiters.get(generation_id, ()):
            waiter.set()

    async def wait(self, generation_id: str, timeout: float) -> None:
        """Return when ``generation_id`` is notified, the hub closes, or ``timeout`` passes."""
        waiter = asyncio.Event()
        self._waiters.setdefault(generation_id, set()).add(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(generation_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[generation_id]

    async def _listen(self, database_url: str) -> None:
        """LISTEN for the notices of other processes; reconnect after a failure."""
        import psycopg

        from ..jobs.events import CHANNEL
        from ..jobs.queue import conninfo

        while not self.closing.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(conninfo(database_url), autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    async for notice in conn.notifies():
                        self._notify(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried
                logger.warning("lost the notice connection (%s); reconnecting", exc)
                await asyncio.sleep(1.0)
