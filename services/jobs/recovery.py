"""The sweep that finds jobs whose runner died and re-runs or fails them.

Run by every runner every ``lease / 3`` seconds, by each CLI command that opens an
existing history, and on demand by ``dgx-music jobs recover``. With the default 30 s
lease (``DGX_MUSIC_LEASE_SECONDS``), a job whose process died is re-queued or failed
within 30 s + 5 s (one missed heartbeat) + 10 s (one sweep) = 45 s at most; on its own
host, at the next sweep or command (its process is known dead at once).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import List, Optional

from .lifecycle import RecoveryAction

__all__ = ["recover_jobs", "remove_job_file", "worst_case_recovery_seconds"]

logger = logging.getLogger(__name__)


def worst_case_recovery_seconds(lease_seconds: float) -> float:
    """The longest a dead runner's job stays ``processing`` while a runner sweeps: a lease,
    one missed heartbeat (lease / 6) and one sweep interval (lease / 3)."""
    return lease_seconds * 1.5


def remove_job_file(file_path: str) -> None:
    """Remove a job's file and any temporary file an interrupted export left beside it
    (``.<name>.<random>.tmp``, see :class:`services.audio._atomic.PendingOutput`)."""
    path = Path(file_path)
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        prefix = f".{path.name}."
        with os.scandir(path.parent) as entries:
            for entry in entries:
                if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def recover_jobs(database_url: Optional[str] = None, *, lease_seconds: Optional[float] = None,
                 max_attempts: Optional[int] = None) -> List[RecoveryAction]:
    """Re-queue or fail every job whose lease is dead (see
    :func:`services.jobs.lifecycle.recover`), remove the files they left, and put the
    re-queued Procrastinate jobs back in their queue. Returns what was done."""
    from ..config import get_settings
    from ..storage import get_session
    from . import events, lifecycle

    settings = get_settings()
    lease_seconds = settings.lease_seconds if lease_seconds is None else lease_seconds
    max_attempts = settings.max_attempts if max_attempts is None else max_attempts
    with get_session(database_url) as session:
        actions = lifecycle.recover(session, lease_seconds=lease_seconds, max_attempts=max_attempts)
        for action in actions:
            events.announce(session, action.generation_id)
    for action in actions:
        remove_job_file(action.file_path)
        events.publish(action.generation_id)
        logger.info("job %s (%s) %s: its runner %s is gone", action.job_id, action.generation_id,
                       action.action, action.owner)
    requeued = [a for a in actions if a.action == "requeued" and a.runner == "procrastinate"]
    if requeued:
        from .queue import requeue_queue_jobs

        requeue_queue_jobs(database_url, requeued)
    return actions
