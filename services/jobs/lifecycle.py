"""The job life cycle on history rows: claim, lease, steps, cancel, re-queue, recover.

A job is one generation row. It is ``pending`` while queued; a runner *claims* it
(``processing``, a lease: ``lease_owner`` = the runner's process, ``heartbeat_at``),
moves it through the steps, and ends it ``completed``, ``failed`` or ``cancelled``. A
runner process renews the leases of all its jobs every ``lease_seconds / 6``
(:func:`renew_leases`). A lease is *dead* when its process is known to be gone (same
host, :func:`~services.jobs.owner.owner_is_alive`) or its heartbeat is older than
``lease_seconds``; :func:`recover` then re-queues the job (queued runners, fewer than
``max_attempts`` runs) or ends it ``failed`` ("interrupted"). Every function here takes
a session of :func:`services.storage.get_session` and leaves committing to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidTransitionError, JobCancelledError, LeaseLostError
from ..storage.crud import fail_generation, locked_generation
from ..storage.models import FINAL_STATUSES, Generation, GenerationStatus, utcnow
from .owner import owner_is_alive

__all__ = [
    "QUEUED_RUNNERS",
    "RecoveryAction",
    "claim",
    "claim_next",
    "dead_lease",
    "end_cancelled",
    "enter_step",
    "owned",
    "queue_position",
    "recover",
    "renew_leases",
    "request_cancel",
    "requeue",
]

# Runners that take jobs from a queue: their interrupted jobs are re-run, not failed.
QUEUED_RUNNERS = ("local", "procrastinate")

S = GenerationStatus


def dead_lease(generation: Generation, lease_seconds: float, now: Optional[datetime] = None) -> bool:
    """Whether a ``processing`` row's runner is gone: its process is known dead, or its
    heartbeat is older than ``lease_seconds``."""
    if GenerationStatus(generation.status) is not S.PROCESSING:
        return False
    if owner_is_alive(generation.lease_owner) is False:
        return True
    heartbeat = generation.heartbeat_at or generation.started_at or generation.created_at
    return heartbeat < (now or utcnow()) - timedelta(seconds=lease_seconds)


def _start(generation: Generation, owner: str) -> Generation:
    now = utcnow()
    generation.status = S.PROCESSING
    generation.lease_owner = owner
    generation.heartbeat_at = now
    generation.started_at = now
    generation.attempts = (generation.attempts or 0) + 1
    generation.progress_step = "starting"
    generation.error_message = None
    return generation


def claim(session: Session, generation_id: str, owner: str, *, lease_seconds: float) -> Optional[Generation]:
    """Take the job for ``owner``: a ``pending`` one, or a ``processing`` one whose lease is
    dead (a re-run under the same id and path). Returns the row, now ``processing``, or
    None when the job is not there to take (finished, cancelled, or alive elsewhere)."""
    generation = locked_generation(session, generation_id)
    status = GenerationStatus(generation.status)
    if generation.cancel_requested_at is not None and status is S.PENDING:
        return None
    if status is S.PENDING or (status is S.PROCESSING and dead_lease(generation, lease_seconds)):
        _start(generation, owner)
        session.flush()
        return generation
    return None


def claim_next(session: Session, owner: str, *, runner: str = "local", lease_seconds: float) -> Optional[Generation]:
    """Claim the oldest ``pending`` job of ``runner`` for ``owner``; None when none waits."""
    query = (
        select(Generation.id)
        .where(Generation.status == S.PENDING, Generation.runner == runner, Generation.cancel_requested_at.is_(None))
        .order_by(Generation.created_at.asc(), Generation.id.asc())
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    generation_id = session.scalar(query)
    return None if generation_id is None else claim(session, generation_id, owner, lease_seconds=lease_seconds)


def renew_leases(session: Session, owner: str) -> int:
    """Say that ``owner`` is alive: renew the heartbeat of all its running jobs; returns how many."""
    result = session.execute(
        update(Generation)
        .where(Generation.lease_owner == owner, Generation.status == S.PROCESSING)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def owned(session: Session, generation_id: str, owner: str) -> Generation:
    """The row, locked, if ``owner`` still holds its lease; else :class:`LeaseLostError`."""
    generation = locked_generation(session, generation_id)
    if GenerationStatus(generation.status) is not S.PROCESSING or generation.lease_owner != owner:
        raise LeaseLostError(
            f"generation {generation_id!r} is no longer run by this process "
            f"(status {GenerationStatus(generation.status).value!r}, lease {generation.lease_owner!r})"
        )
    return generation


def enter_step(session: Session, generation_id: str, owner: str, step: str) -> Generation:
    """Record that the job enters ``step`` (and renew its lease). Raises
    :class:`JobCancelledError` when a cancel was requested, :class:`LeaseLostError` when
    another process has taken the job over."""
    generation = owned(session, generation_id, owner)
    if generation.cancel_requested_at is not None:
        raise JobCancelledError(f"generation {generation_id!r} was cancelled")
    generation.progress_step = step
    generation.heartbeat_at = utcnow()
    session.flush()
    return generation


def end_cancelled(generation: Generation) -> None:
    """Make a pending or processing row ``cancelled`` (final), its lease released."""
    now = utcnow()
    generation.status = S.CANCELLED
    generation.completed_at = now
    generation.cancel_requested_at = generation.cancel_requested_at or now
    generation.lease_owner = None
    generation.progress_step = None


def requeue(generation: Generation, reason: str) -> None:
    """Put a ``processing`` row back in the queue (``pending``); ``reason`` is kept in
    ``error_message`` until the next run starts."""
    generation.status = S.PENDING
    generation.lease_owner = None
    generation.heartbeat_at = None
    generation.progress_step = "queued"
    generation.error_message = reason


def request_cancel(session: Session, generation_id: str) -> Generation:
    """Cancel a job: a ``pending`` one becomes ``cancelled`` at once; a ``processing`` one is
    marked and stops at its next step. A finished one raises :class:`InvalidTransitionError`."""
    generation = locked_generation(session, generation_id)
    status = GenerationStatus(generation.status)
    if status in FINAL_STATUSES:
        raise InvalidTransitionError(
            f"generation {generation_id!r} is {status.value!r} and can no longer be cancelled"
        )
    if status is S.PENDING:
        end_cancelled(generation)
    elif generation.cancel_requested_at is None:
        generation.cancel_requested_at = utcnow()
    session.flush()
    return generation


# Built once, with bind parameters: the API asks this for every pending row it shows,
# and a statement built per call costs SQLAlchemy more than the query.
_AHEAD = select(func.count()).select_from(Generation).where(
    Generation.status == S.PENDING,
    or_(Generation.created_at < bindparam("created_at"),
        and_(Generation.created_at == bindparam("created_at"), Generation.id < bindparam("generation_id"))),
)


def queue_position(executor, generation) -> Optional[int]:
    """1 for the next job to run, 2 for the one after...; None unless ``pending``.

    ``executor`` is a session or a Core connection; ``generation`` anything with the row's
    ``status``, ``created_at`` and ``id`` (a ``Generation`` or a result row)."""
    if GenerationStatus(generation.status) is not S.PENDING:
        return None
    ahead = executor.execute(_AHEAD, {"created_at": generation.created_at, "generation_id": generation.id}).scalar()
    return int(ahead) + 1


@dataclass(frozen=True)
class RecoveryAction:
    """What :func:`recover` did to one job whose runner was gone."""

    generation_id: str
    job_id: Optional[str]
    action: str  # "requeued", "failed" or "cancelled"
    owner: Optional[str]
    file_path: str
    runner: Optional[str]
    queue_job_id: Optional[int]

    def to_dict(self) -> dict:
        return {
            "id": self.generation_id,
            "job_id": self.job_id,
            "action": self.action,
            "owner": self.owner,
            "runner": self.runner,
        }


def recover(session: Session, *, lease_seconds: float, max_attempts: int) -> list[RecoveryAction]:
    """End or re-queue every ``processing`` job whose lease is dead; returns what was done.

    A job of a queued runner with fewer than ``max_attempts`` runs goes back to
    ``pending`` (it runs again under the same id and path); a cancel-requested one becomes
    ``cancelled``; any other (a foreground command's, or one out of attempts) ends
    ``failed`` with "interrupted". The caller removes the files of the returned actions
    after the commit (:func:`services.jobs.recovery.remove_job_file`).
    """
    now = utcnow()
    # Only jobs (rows with a runner): a row that a caller of the storage API moved to
    # "processing" by hand has no lease, and is that caller's to finish.
    candidates = session.scalars(
        select(Generation)
        .where(Generation.status == S.PROCESSING, Generation.runner.is_not(None))
        .with_for_update()
    ).all()
    actions = []
    for generation in candidates:
        if not dead_lease(generation, lease_seconds, now):
            continue
        owner = generation.lease_owner
        how = "its process stopped" if owner_is_alive(owner) is False else (
            f"no heartbeat for more than {lease_seconds:g} s"
        )
        if generation.cancel_requested_at is not None:
            end_cancelled(generation)
            action = "cancelled"
        elif generation.runner in QUEUED_RUNNERS and (generation.attempts or 0) < max_attempts:
            requeue(generation, f"interrupted ({how}; owner {owner}); re-queued")
            action = "requeued"
        else:
            runs = generation.attempts or 0
            fail_generation(session, generation.id,
                            f"interrupted: {how} (owner {owner}) after {runs} run{'s' if runs != 1 else ''}")
            generation.lease_owner = None
            action = "failed"
        actions.append(
            RecoveryAction(generation.id, generation.job_id, action, owner, generation.file_path,
                           generation.runner, generation.queue_job_id)
        )
    session.flush()
    return actions
