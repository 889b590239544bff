"""Tables of the generation history: ``generations`` (one row per job) and ``prompts``.

Timestamps are timezone-aware UTC datetimes on every backend (SQLite stores them as
naive UTC text; :class:`UTCDateTime` attaches the zone when reading). The schema is
created and changed only by the Alembic migrations in ``migrations/versions``; a test
checks that the migrated schema matches these models.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ALLOWED_TRANSITIONS",
    "Base",
    "FINAL_STATUSES",
    "Generation",
    "GenerationStatus",
    "MAX_CHANNELS",
    "Prompt",
    "UTCDateTime",
    "utcnow",
]

MAX_CHANNELS = 8

# Stable constraint and index names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    Naive datetimes are refused when writing (their zone is unknown).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamps must be timezone-aware; got {value!r}")
        value = value.astimezone(timezone.utc)
        # SQLite has no time zones: store naive UTC so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Optional[datetime], dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class GenerationStatus(str, enum.Enum):
    """Life cycle of a generation: pending (queued) -> processing -> completed | failed | cancelled."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


# Which status may follow which. completed, failed and cancelled are final: a finished
# record is never rewritten. processing -> pending is the re-queue of a job whose process
# died (or was stopped by a shutdown) before it finished; it runs again under the same id.
ALLOWED_TRANSITIONS: dict[GenerationStatus, frozenset[GenerationStatus]] = {
    GenerationStatus.PENDING: frozenset(
        {
            GenerationStatus.PROCESSING,
            GenerationStatus.COMPLETED,
            GenerationStatus.FAILED,
            GenerationStatus.CANCELLED,
        }
    ),
    GenerationStatus.PROCESSING: frozenset(
        {
            GenerationStatus.PENDING,
            GenerationStatus.COMPLETED,
            GenerationStatus.FAILED,
            GenerationStatus.CANCELLED,
        }
    ),
    GenerationStatus.COMPLETED: frozenset(),
    GenerationStatus.FAILED: frozenset(),
    GenerationStatus.CANCELLED: frozenset(),
}

FINAL_STATUSES = frozenset(
    {GenerationStatus.COMPLETED, GenerationStatus.FAILED, GenerationStatus.CANCELLED}
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _iso(value: Optional[datetime]) -> Optional[str]:
    return None if value is None else value.isoformat()


class Generation(Base):
    """One generation job: what was asked, where the file is, how it went."""

    __tablename__ = "generations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    prompt: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[Optional[str]] = mapped_column(String(50))
    duration_seconds: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    file_path: Mapped[str] = mapped_column(Text)
    file_size_bytes: Mapped[Optional[int]] = mapped_column(BigInteger)
    status: Mapped[GenerationStatus] = mapped_column(
        Enum(
            GenerationStatus,
            name="generation_status",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda members: [member.value for member in members],
            validate_strings=True,
        ),
        default=GenerationStatus.PENDING,
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    generation_time_seconds: Mapped[Optional[float]] = mapped_column(Float)
    error_message: Mapped[Optional[str]] = mapped_column(Text)
    # ``metadata`` is reserved by SQLAlchemy's declarative classes; the column keeps the name.
    metadata_json: Mapped[Optional[dict[str, Any]]] = mapped_column(
        "metadata", JSON(none_as_null=True)
    )

    # --- the job (migration 0002) ---------------------------------------------------------
    # The job id names the file (``<job_id>.wav``); a re-run writes to the same path.
    job_id: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    # Who runs it: "cli" (a foreground command), "local" (the pool inside ``serve`` or a
    # ``worker`` on SQLite) or "procrastinate" (a queue worker on PostgreSQL).
    runner: Mapped[Optional[str]] = mapped_column(String(16))
    # What was asked besides the prompt: {"duration": s, "seed": n|null, "bit_depth": "PCM_16"}.
    request_json: Mapped[Optional[dict[str, Any]]] = mapped_column("request", JSON(none_as_null=True))
    progress_step: Mapped[Optional[str]] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # The lease of a running job: "host:pid:start" of the process that runs it and the
    # last time that process said it is alive.
    lease_owner: Mapped[Optional[str]] = mapped_column(String(255))
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    cancel_requested_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # The Procrastinate job that runs this generation (PostgreSQL only).
    queue_job_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    # Measurements copied out of the metadata, so lists and searches read no JSON:
    # tempo (BPM) and key ("A minor", indexed for search), loudness (LUFS), true peak (dBTP).
    bpm: Mapped[Optional[float]] = mapped_column(Float)
    musical_key: Mapped[Optional[str]] = mapped_column(String(16))
    loudness_lufs: Mapped[Optional[float]] = mapped_column(Float)
    true_peak_dbtp: Mapped[Optional[float]] = mapped_column(Float)

    __table_args__ = (
        CheckConstraint("duration_seconds > 0", name="duration_positive"),
        CheckConstraint("sample_rate > 0", name="sample_rate_positive"),
        CheckConstraint(f"channels BETWEEN 1 AND {MAX_CHANNELS}", name="channels_range"),
        CheckConstraint(
            "file_size_bytes IS NULL OR file_size_bytes >= 0", name="file_size_non_negative"
        ),
        CheckConstraint(
            "generation_time_seconds IS NULL OR generation_time_seconds >= 0",
            name="generation_time_non_negative",
        ),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        # history (newest first) and the status-filtered history / pending queue.
        Index("ix_generations_created_at", "created_at"),
        Index("ix_generations_status_created_at", "status", "created_at"),
        # search by key, newest first (the id breaks ties, as the API's order does), and by tempo.
        Index("ix_generations_musical_key_created_at_id", "musical_key", "created_at", "id"),
        Index("ix_generations_bpm", "bpm"),
    )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: status as its string, times as ISO 8601, ``metadata`` as stored."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "duration_seconds": self.duration_seconds,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "file_path": self.file_path,
            "file_size_bytes": self.file_size_bytes,
            "status": None if self.status is None else GenerationStatus(self.status).value,
            "created_at": _iso(self.created_at),
            "completed_at": _iso(self.completed_at),
            "generation_time_seconds": self.generation_time_seconds,
            "error_message": self.error_message,
            "metadata": None if self.metadata_json is None else dict(self.metadata_json),
            "job_id": self.job_id,
            "runner": self.runner,
            "request": None if self.request_json is None else dict(self.request_json),
            "progress_step": self.progress_step,
            "attempts": self.attempts,
            "started_at": _iso(self.started_at),
            "heartbeat_at": _iso(self.heartbeat_at),
            "lease_owner": self.lease_owner,
            "cancel_requested_at": _iso(self.cancel_requested_at),
            "bpm": self.bpm,
            "key": self.musical_key,
            "loudness_lufs": self.loudness_lufs,
            "true_peak_dbtp": self.true_peak_dbtp,
        }

    def __repr__(self) -> str:
        return f"<Generation id={self.id!r} status={self.status!s} prompt={self.prompt!r}>"


class Prompt(Base):
    """How often a prompt text was used (one row per distinct text)."""

    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    # Unique key on a digest: a B-tree entry on the text itself would cap prompt length
    # (PostgreSQL refuses index rows over ~2.7 kB).
    text_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    use_count: Mapped[int] = mapped_column(Integer, default=1)
    first_used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("use_count >= 1", name="use_count_positive"),
        Index("ix_prompts_use_count_last_used_at", "use_count", "last_used_at"),
    )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with times as ISO 8601."""
        return {
            "id": self.id,
            "text": self.text,
            "use_count": self.use_count,
            "first_used_at": _iso(self.first_used_at),
            "last_used_at": _iso(self.last_used_at),
        }

    def __repr__(self) -> str:
        return f"<Prompt id={self.id!r} use_count={self.use_count!r} text={self.text!r}>"
