"""The API's hot reads: one generation, a page of a search, a job's progress.

Plain Core queries on a read-only connection (no ORM session), turned into the API's
JSON shapes; no server path leaves this module. They run in the event loop's thread: a
read-only SQLite transaction reads a WAL snapshot and never waits for a writer, and a
PostgreSQL read takes no lock, so each call lasts as long as its query (well under a
millisecond on an indexed lookup) and the thread hop of a thread pool would cost more.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Dict, Optional, Tuple

from sqlalchemy import and_, bindparam, or_, select

from ..audio.key_names import camelot_code
from ..jobs.lifecycle import queue_position
from ..storage import Generation
from ..storage.database import run_read
from .problems import ApiProblem

__all__ = ["InvalidCursor", "decode_cursor", "encode_cursor", "event_state", "file_facts", "links", "list_page",
           "read_record"]

_COLUMNS = (
    Generation.id, Generation.job_id, Generation.prompt, Generation.status, Generation.progress_step,
    Generation.error_message, Generation.attempts, Generation.cancel_requested_at, Generation.created_at,
    Generation.started_at, Generation.completed_at, Generation.duration_seconds,
    Generation.request_json.label("request_json"),
    Generation.model_name, Generation.sample_rate, Generation.channels, Generation.file_path,
    Generation.file_size_bytes, Generation.generation_time_seconds, Generation.bpm, Generation.musical_key,
    Generation.loudness_lufs, Generation.true_peak_dbtp, Generation.metadata_json.label("metadata_json"),
)
# A list item reads no JSON column: what a library view shows.
_SUMMARY_COLUMNS = (
    Generation.id, Generation.job_id, Generation.prompt, Generation.status, Generation.progress_step,
    Generation.error_message, Generation.created_at, Generation.completed_at, Generation.duration_seconds,
    Generation.file_path, Generation.bpm, Generation.musical_key, Generation.loudness_lufs,
    Generation.true_peak_dbtp,
)


class InvalidCursor(ValueError):
    """A ``cursor`` that this API did not hand out."""


def links(generation_id: str) -> Dict[str, str]:
    base = f"/api/v1/generations/{generation_id}"
    return {"self": base, "events": f"{base}/events", "cancel": f"{base}/cancel",
            "audio": f"{base}/audio", "peaks": f"{base}/peaks"}


def _status(value) -> str:
    return str(getattr(value, "value", value))


def _iso(value: Optional[datetime]) -> Optional[str]:
    return None if value is None else value.isoformat()


# Statements are built once, with bind parameters: SQLAlchemy then reuses their compiled
# form as it is, where a statement built per call costs more than the query itself.
_IDENTIFIED = or_(Generation.id == bindparam("identifier"), Generation.job_id == bindparam("identifier"))
_RECORD = select(*_COLUMNS).where(_IDENTIFIED).limit(1)
_EVENT = select(Generation.id, Generation.status, Generation.progress_step, Generation.error_message,
                Generation.created_at).where(_IDENTIFIED).limit(1)


def _summary(connection, row) -> Dict[str, Any]:
    # Positional: a page builds 20-100 of these, and a Row's attribute lookup costs more.
    (generation_id, job_id, prompt, status, step, error, created_at, completed_at, duration, file_path,
     bpm, key, loudness, true_peak) = row
    status = _status(status)
    return {
        "id": generation_id,
        "job_id": job_id,
        "prompt": prompt,
        "status": status,
        "step": step,
        "queue_position": queue_position(connection, row),
        "error": error,
        "created_at": created_at.isoformat(),
        "completed_at": None if completed_at is None else completed_at.isoformat(),
        "duration_seconds": duration,
        "file_name": os.path.basename(file_path) if file_path else None,
        "bpm": bpm,
        "key": key,
        "camelot": camelot_code(key),
        "loudness_lufs": loudness,
        "true_peak_dbtp": true_peak,
    }


def _record(connection, row) -> Dict[str, Any]:
    metadata = row.metadata_json or {}
    request = row.request_json or {}
    status = _status(row.status)
    return {
        "id": row.id,
        "job_id": row.job_id,
        "prompt": row.prompt,
        "status": status,
        "step": row.progress_step,
        "queue_position": queue_position(connection, row),
        "error": row.error_message,
        "attempts": row.attempts or 0,
        "cancel_requested": row.cancel_requested_at is not None,
        "created_at": row.created_at.isoformat(),
        "started_at": _iso(row.started_at),
        "completed_at": _iso(row.completed_at),
        "duration_seconds": row.duration_seconds,
        "seed": request.get("seed", metadata.get("seed")),
        "bit_depth": request.get("bit_depth", metadata.get("bit_depth")),
        "format": request.get("format", "wav"),
        "preset": request.get("preset"),
        "model_name": row.model_name,
        "sample_rate": row.sample_rate,
        "channels": row.channels,
        "file_name": os.path.basename(row.file_path) if row.file_path else None,
        "file_size_bytes": row.file_size_bytes,
        "generation_time_seconds": row.generation_time_seconds,
        "bpm": row.bpm,
        "key": row.musical_key,
        "camelot": camelot_code(row.musical_key),
        "loudness_lufs": row.loudness_lufs,
        "true_peak_dbtp": row.true_peak_dbtp,
        "metadata": metadata or None,
        "links": links(row.id),
    }


def _not_found(identifier: str) -> ApiProblem:
    return ApiProblem(404, "not-found", f"no generation with id or job id {identifier!r}")


def read_record(database_url: str, identifier: str) -> Dict[str, Any]:
    """The API record of the generation with this record id or job id (404 when none)."""
    if len(identifier) > 64:
        raise _not_found(identifier)

    def work(connection):
        row = connection.execute(_RECORD, {"identifier": identifier}).first()
        return None if row is None else _record(connection, row)

    record = run_read(work, database_url)
    if record is None:
        raise _not_found(identifier)
    return record


_FILE = select(Generation.status, Generation.file_path, Generation.job_id).where(_IDENTIFIED).limit(1)


def file_facts(database_url: str, identifier: str):
    """``(status, file_path, job_id)`` of a generation (a row), or None."""
    if len(identifier) > 64:
        return None
    return run_read(lambda connection: connection.execute(_FILE, {"identifier": identifier}).first(), database_url)


def event_state(database_url: str, identifier: str) -> Dict[str, Any]:
    """What one Server-Sent Event carries: id, status, step, queue position, error."""
    if len(identifier) > 64:
        raise _not_found(identifier)

    def work(connection):
        row = connection.execute(_EVENT, {"identifier": identifier}).first()
        if row is None:
            return None
        status = _status(row.status)
        return {"id": row.id, "status": status, "step": row.progress_step,
                "queue_position": queue_position(connection, row),
                "error": row.error_message if status in ("failed", "cancelled") else None}

    state = run_read(work, database_url)
    if state is None:
        raise _not_found(identifier)
    return state


def encode_cursor(created_at: datetime, generation_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), generation_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, generation_id = json.loads(raw)
        when = datetime.fromisoformat(created)
        if when.tzinfo is None or not isinstance(generation_id, str):
            raise ValueError("not a cursor")
        return when.astimezone(timezone.utc), generation_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("not a cursor from this API (use next_cursor of the previous page)") from exc


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@lru_cache(maxsize=None)
def _page_statement(status: bool, text: bool, key: bool, bpm_min: bool, bpm_max: bool, cursor: bool):
    """The search statement for one combination of filters (64 at most), built once."""
    query = select(*_SUMMARY_COLUMNS)
    if status:
        query = query.where(Generation.status == bindparam("status"))
    if text:
        query = query.where(Generation.prompt.ilike(bindparam("text"), escape="\\"))
    if key:
        query = query.where(Generation.musical_key == bindparam("key"))
    if bpm_min:
        query = query.where(Generation.bpm >= bindparam("bpm_min"))
    if bpm_max:
        query = query.where(Generation.bpm <= bindparam("bpm_max"))
    if cursor:
        query = query.where(or_(Generation.created_at < bindparam("before"),
                                and_(Generation.created_at == bindparam("before"),
                                     Generation.id < bindparam("before_id"))))
    return query.order_by(Generation.created_at.desc(), Generation.id.desc()).limit(bindparam("rows"))


def list_page(database_url: str, *, status: Optional[str], text: Optional[str], key: Optional[str],
              bpm_min: Optional[float], bpm_max: Optional[float], limit: int,
              cursor: Optional[Tuple[datetime, str]]) -> Dict[str, Any]:
    """A page of generation summaries (no metadata), newest first:
    ``{"items": [...], "next_cursor": str | None}``.

    ``key`` is a canonical key name (``"A minor"``); ``text`` is matched anywhere in the
    prompt, in any case, with ``%`` and ``_`` taken literally.
    """
    statement = _page_statement(status is not None, bool(text), key is not None, bpm_min is not None,
                                bpm_max is not None, cursor is not None)
    parameters: Dict[str, Any] = {"rows": limit + 1, "status": status, "key": key, "bpm_min": bpm_min,
                                  "bpm_max": bpm_max, "text": _like_pattern(text) if text else None}
    if cursor is not None:
        parameters["before"], parameters["before_id"] = cursor
    def work(connection):
        rows = connection.execute(statement, parameters).all()
        return rows, [_summary(connection, row) for row in rows[:limit]]

    rows, items = run_read(work, database_url)
    page = rows[:limit]
    more = len(rows) > limit
    return {"items": items, "next_cursor": encode_cursor(page[-1].created_at, page[-1].id) if more else None}
