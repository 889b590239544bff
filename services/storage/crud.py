"""Reading and changing the generation history inside a session.

Every function takes the session of :func:`services.storage.get_session` first and
leaves committing to it. Arguments are checked before anything is written: a wrong
value raises :class:`~services.storage.StorageValueError`, a missing generation
:class:`~services.errors.GenerationNotFoundError`, a status change outside
:data:`~services.storage.models.ALLOWED_TRANSITIONS`
:class:`~services.errors.InvalidTransitionError`; in each case nothing has changed.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Mapping, Optional, Union

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import GenerationNotFoundError, InvalidTransitionError
from .models import ALLOWED_TRANSITIONS, FINAL_STATUSES, Generation, GenerationStatus, Prompt, utcnow
from .validation import (
    StorageValueError,
    check_channels,
    check_float,
    check_generation_id,
    check_int,
    check_metadata,
    check_prompt,
    check_optional_text,
    check_path,
    check_status,
    check_text,
)

__all__ = [
    "complete_generation",
    "count_generations",
    "create_generation",
    "delete_generation",
    "fail_generation",
    "get_all_generations",
    "get_database_stats",
    "get_generation",
    "get_most_used_prompts",
    "get_pending_generations",
    "get_prompt_by_text",
    "track_prompt_usage",
    "update_generation_status",
]

StatusLike = Union[GenerationStatus, str]

_RUNNERS = ("cli", "local", "procrastinate")
_MAX_KEY_LENGTH = 16


def _check_session(session: Any) -> Session:
    if not isinstance(session, Session):
        raise TypeError(f"session must be a SQLAlchemy Session; got {type(session).__name__} {session!r}")
    return session


def _check_limit(limit: Any, *, allow_none: bool = False) -> Optional[int]:
    if limit is None and allow_none:
        return None
    return check_int("limit", limit, minimum=1)


def locked_generation(session: Session, generation_id: Any) -> Generation:
    """The generation, re-read and row-locked for the rest of the transaction."""
    generation_id = check_generation_id(generation_id)
    generation = session.scalars(
        select(Generation)
        .where(Generation.id == generation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if generation is None:
        raise GenerationNotFoundError(f"no generation with id {generation_id!r}")
    return generation


def _move(generation: Generation, target: GenerationStatus) -> None:
    current = GenerationStatus(generation.status)
    if target not in ALLOWED_TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[current])) or "nothing (final)"
        raise InvalidTransitionError(
            f"generation {generation.id!r} is {current.value!r} and cannot become {target.value!r} "
            f"(allowed: {allowed})"
        )


def _finish(generation: Generation, target: GenerationStatus) -> None:
    generation.status = target
    if target in FINAL_STATUSES:
        generation.completed_at = utcnow()


def create_generation(
    session: Session,
    *,
    prompt: str,
    model_name: str,
    duration_seconds: float,
    sample_rate: int,
    channels: int,
    file_path: Any,
    model_version: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    job_id: Optional[str] = None,
    runner: Optional[str] = None,
    request: Optional[Mapping[str, Any]] = None,
) -> Generation:
    """Record a new ``pending`` generation and count its prompt; returns it with its id.

    ``duration_seconds`` (> 0) is the requested length in seconds, ``sample_rate`` in Hz
    (> 0), ``channels`` 1-8. The prompt is stored without surrounding whitespace.
    ``job_id`` (unique, at most 64 characters; names the file), ``runner`` ("cli", "local"
    or "procrastinate") and ``request`` (what a re-run needs: duration, seed, bit depth)
    are for jobs (:mod:`services.jobs`).
    """
    session = _check_session(session)
    if runner is not None and runner not in _RUNNERS:
        raise StorageValueError(f"runner must be one of {', '.join(_RUNNERS)} or None; got {runner!r}")
    generation = Generation(
        prompt=check_prompt(prompt),
        model_name=check_text("model_name", model_name, max_length=100),
        model_version=check_optional_text("model_version", model_version, max_length=50),
        duration_seconds=check_float("duration_seconds", duration_seconds, positive=True),
        sample_rate=check_int("sample_rate", sample_rate, minimum=1),
        channels=check_channels(channels),
        file_path=check_path("file_path", file_path),
        metadata_json=check_metadata(metadata),
        job_id=check_optional_text("job_id", job_id, max_length=64),
        runner=runner,
        request_json=check_metadata(request),
        attempts=0,
        status=GenerationStatus.PENDING,
        created_at=utcnow(),
    )
    session.add(generation)
    session.flush()
    track_prompt_usage(session, generation.prompt)
    return generation


def get_generation(session: Session, generation_id: str) -> Optional[Generation]:
    """The generation with this id, or ``None``."""
    return _check_session(session).get(Generation, check_generation_id(generation_id))


def get_all_generations(
    session: Session,
    limit: Optional[int] = 100,
    offset: int = 0,
    status: Optional[StatusLike] = None,
) -> list[Generation]:
    """Generations newest first, optionally of one status; ``limit=None`` for all."""
    query = select(Generation)
    if status is not None:
        query = query.where(Generation.status == check_status(status))
    query = query.order_by(Generation.created_at.desc(), Generation.id.desc())
    query = query.limit(_check_limit(limit, allow_none=True)).offset(
        check_int("offset", offset, minimum=0)
    )
    return list(_check_session(session).scalars(query))


def get_pending_generations(session: Session, limit: Optional[int] = 100) -> list[Generation]:
    """Pending generations oldest first (the order a worker should take them in)."""
    query = (
        select(Generation)
        .where(Generation.status == GenerationStatus.PENDING)
        .order_by(Generation.created_at.asc(), Generation.id.asc())
        .limit(_check_limit(limit, allow_none=True))
    )
    return list(_check_session(session).scalars(query))


def count_generations(session: Session, status: Optional[StatusLike] = None) -> int:
    """How many generations there are (of one status if given)."""
    query = select(func.count()).select_from(Generation)
    if status is not None:
        query = query.where(Generation.status == check_status(status))
    return int(_check_session(session).scalar(query))


def update_generation_status(
    session: Session,
    generation_id: str,
    status: StatusLike,
    *,
    error_message: Optional[str] = None,
) -> Generation:
    """Move a generation to ``status`` along :data:`ALLOWED_TRANSITIONS`.

    Reaching ``completed`` or ``failed`` sets ``completed_at`` (when the job ended);
    ``error_message`` may only accompany ``failed``.
    """
    session = _check_session(session)
    target = check_status(status)
    message = check_optional_text("error_message", error_message)
    if message is not None and target is not GenerationStatus.FAILED:
        raise StorageValueError(
            f"error_message is only for status 'failed'; got status {target.value!r} "
            f"with error_message {error_message!r}"
        )
    generation = locked_generation(session, generation_id)
    _move(generation, target)
    _finish(generation, target)
    if message is not None:
        generation.error_message = message
    session.flush()
    return generation


def complete_generation(
    session: Session,
    generation_id: str,
    generation_time: float,
    file_size_bytes: int,
    metadata: Optional[Mapping[str, Any]] = None,
) -> Generation:
    """Mark a pending or processing generation ``completed``.

    ``generation_time`` is the engine's time in seconds (>= 0), ``file_size_bytes`` the
    written file's size (>= 0). ``metadata`` (e.g. the extractor's dict) is merged into
    the stored metadata; NaN/inf become ``null`` and numpy values plain numbers.
    """
    session = _check_session(session)
    seconds = check_float("generation_time", generation_time, positive=False)
    size = check_int("file_size_bytes", file_size_bytes, minimum=0)
    extra = check_metadata(metadata)
    generation = locked_generation(session, generation_id)
    _move(generation, GenerationStatus.COMPLETED)
    _finish(generation, GenerationStatus.COMPLETED)
    generation.generation_time_seconds = seconds
    generation.file_size_bytes = size
    if extra:
        generation.metadata_json = {**(generation.metadata_json or {}), **extra}
    for column, value in summary_columns(generation.metadata_json).items():
        setattr(generation, column, value)
    session.flush()
    return generation


def _finite(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def summary_columns(metadata: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """The measured values that are also columns (lists and searches read no JSON):
    ``bpm`` (> 0), ``musical_key`` (a short text), ``loudness_lufs``, ``true_peak_dbtp``;
    None for what the metadata lacks or holds as a non-finite number."""
    metadata = metadata or {}
    bpm = _finite(metadata.get("bpm"))
    key = metadata.get("key")
    return {
        "bpm": bpm if bpm is not None and bpm > 0 else None,
        "musical_key": key if isinstance(key, str) and 0 < len(key) <= _MAX_KEY_LENGTH else None,
        "loudness_lufs": _finite(metadata.get("loudness_lufs")),
        "true_peak_dbtp": _finite(metadata.get("true_peak_dbtp")),
    }


def fail_generation(session: Session, generation_id: str, error_message: str) -> Generation:
    """Mark a pending or processing generation ``failed`` with a non-blank message."""
    message = check_text("error_message", error_message)
    return update_generation_status(session, generation_id, GenerationStatus.FAILED, error_message=message)


def delete_generation(session: Session, generation_id: str) -> bool:
    """Delete a generation record (not its file); ``False`` when there was none."""
    session = _check_session(session)
    try:
        generation = locked_generation(session, generation_id)
    except GenerationNotFoundError:
        return False
    session.delete(generation)
    session.flush()
    return True


def get_database_stats(session: Session) -> dict[str, Any]:
    """Counts per status, prompt counts and totals over completed generations.

    Keys: ``total_generations``, ``<status>_generations`` for each status,
    ``total_prompts`` (distinct texts), ``total_prompt_uses``,
    ``total_audio_seconds`` and ``total_file_size_bytes`` (completed only),
    ``average_generation_time_seconds`` (completed only; ``None`` when none).
    """
    session = _check_session(session)
    rows = session.execute(
        select(
            Generation.status,
            func.count(),
            func.sum(Generation.duration_seconds),
            func.sum(Generation.file_size_bytes),
            func.avg(Generation.generation_time_seconds),
        ).group_by(Generation.status)
    ).all()
    per_status = {GenerationStatus(row[0]): row for row in rows}
    stats: dict[str, Any] = {"total_generations": sum(int(row[1]) for row in rows)}
    for status in GenerationStatus:
        stats[f"{status.value}_generations"] = int(per_status[status][1]) if status in per_status else 0
    prompts, uses = session.execute(select(func.count(), func.sum(Prompt.use_count))).one()
    stats["total_prompts"] = int(prompts)
    stats["total_prompt_uses"] = int(uses or 0)
    completed = per_status.get(GenerationStatus.COMPLETED)
    stats["total_audio_seconds"] = float(completed[2] or 0.0) if completed else 0.0
    stats["total_file_size_bytes"] = int(completed[3] or 0) if completed else 0
    average = completed[4] if completed else None
    stats["average_generation_time_seconds"] = None if average is None else float(average)
    return stats


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def track_prompt_usage(session: Session, prompt_text: str) -> Prompt:
    """Count one use of a prompt (stripped of surrounding whitespace); returns its row.

    A single atomic ``INSERT ... ON CONFLICT DO UPDATE``, so concurrent processes
    never lose a count.
    """
    session = _check_session(session)
    text = check_text("prompt_text", prompt_text)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    now = utcnow()
    statement = insert(Prompt).values(
        text=text, text_sha256=_digest(text), use_count=1, first_used_at=now, last_used_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=[Prompt.text_sha256],
        set_={"use_count": Prompt.use_count + 1, "last_used_at": statement.excluded.last_used_at},
    ).returning(Prompt)
    return session.scalars(statement, execution_options={"populate_existing": True}).one()


def get_prompt_by_text(session: Session, prompt_text: str) -> Optional[Prompt]:
    """The usage row of a prompt text (compared after stripping), or ``None``."""
    text = check_text("prompt_text", prompt_text)
    return _check_session(session).scalars(
        select(Prompt).where(Prompt.text_sha256 == _digest(text))
    ).one_or_none()


def get_most_used_prompts(session: Session, limit: int = 10) -> list[Prompt]:
    """The ``limit`` most used prompts, most used first (ties: most recently used first)."""
    query = (
        select(Prompt)
        .order_by(Prompt.use_count.desc(), Prompt.last_used_at.desc(), Prompt.id.asc())
        .limit(_check_limit(limit))
    )
    return list(_check_session(session).scalars(query))
