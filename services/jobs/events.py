"""Change notices of jobs: "generation X changed", for whoever streams its progress.

A change is *announced* inside the transaction that makes it (on PostgreSQL a
``pg_notify`` on :data:`CHANNEL`, delivered to every listening process when the
transaction commits) and *published* in the process after the commit (listeners in the
same process: the API's event streams when the jobs run inside ``serve``). A notice
carries only the id; listeners read the row. Nothing here is needed for correctness:
the event stream also re-reads the row at a short interval.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional

__all__ = ["CHANNEL", "announce", "changing", "publish", "subscribe"]

logger = logging.getLogger(__name__)

CHANNEL = "dgx_music_generations"

_listeners: List[Callable[[str], None]] = []
_lock = threading.Lock()


def subscribe(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(generation_id)`` on every change published in this process;
    returns the function that unsubscribes it."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def publish(generation_id: str) -> None:
    """Tell this process's listeners that ``generation_id`` changed (after the commit)."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(generation_id)
        except Exception:  # a listener's failure must not fail the job
            logger.exception("a job event listener failed")


def announce(session, generation_id: str) -> None:
    """Inside the transaction of a change: notify other processes (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": generation_id})


@contextmanager
def changing(generation_id: str, database_url: Optional[str] = None) -> Iterator:
    """A session (of :func:`services.storage.get_session`) for a change of one job: the
    change is announced in its transaction and published once it has committed; an error
    in the block rolls back and tells no one."""
    from ..storage import get_session

    with get_session(database_url) as session:
        yield session
        announce(session, generation_id)
    publish(generation_id)
