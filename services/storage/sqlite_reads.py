"""The history list of a SQLite file, read with the standard library's ``sqlite3`` alone.

``dgx-music history`` is a short process, and importing SQLAlchemy (about 0.2 s on a
2-core machine) would be most of it. When the history is a SQLite file whose schema is at
:data:`~services.storage.schema.HEAD_REVISION` and no job is ``processing`` (so recovery
has nothing to look at), :func:`list_generations` reads the rows here and returns the
same dicts as ``Generation.to_dict()``. Otherwise it returns None and the caller takes
the SQLAlchemy path (PostgreSQL, a schema to migrate, jobs to recover). A test holds
both paths equal.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from .schema import HEAD_REVISION

__all__ = ["list_generations", "sqlite_file"]

# to_dict() key -> (column of ``generations``, how its stored value is read)
_FIELDS = {
    "id": ("id", None), "prompt": ("prompt", None), "model_name": ("model_name", None),
    "model_version": ("model_version", None), "duration_seconds": ("duration_seconds", None),
    "sample_rate": ("sample_rate", None), "channels": ("channels", None), "file_path": ("file_path", None),
    "file_size_bytes": ("file_size_bytes", None), "status": ("status", None),
    "created_at": ("created_at", "time"), "completed_at": ("completed_at", "time"),
    "generation_time_seconds": ("generation_time_seconds", None), "error_message": ("error_message", None),
    "metadata": ("metadata", "json"), "job_id": ("job_id", None), "runner": ("runner", None),
    "request": ("request", "json"), "progress_step": ("progress_step", None), "attempts": ("attempts", None),
    "started_at": ("started_at", "time"), "heartbeat_at": ("heartbeat_at", "time"),
    "lease_owner": ("lease_owner", None), "cancel_requested_at": ("cancel_requested_at", "time"),
    "bpm": ("bpm", None), "key": ("musical_key", None), "loudness_lufs": ("loudness_lufs", None),
    "true_peak_dbtp": ("true_peak_dbtp", None),
}
_SELECT = "SELECT " + ", ".join(f'"{column}"' for column, _ in _FIELDS.values()) + " FROM generations"


def sqlite_file(database_url: str) -> Optional[Path]:
    """The existing file of a plain ``sqlite:///PATH`` URL (no query), else None."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or "?" in database_url:
        return None
    path = Path(database_url[len(prefix):]).expanduser()
    return path if path.name not in ("", ":memory:") and path.is_file() else None


def _read(value: Any, kind: Optional[str]) -> Any:
    if value is None or kind is None:
        return value
    if kind == "json":
        return json.loads(value)
    # SQLite holds naive UTC text; to_dict() gives aware UTC in ISO 8601.
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).isoformat()


def list_generations(path: Path, *, limit: Optional[int], offset: int,
                     status: Optional[str]) -> Optional[List[Dict[str, Any]]]:
    """Generations newest first as ``Generation.to_dict()`` dicts; ``limit`` None for all.

    None when this path cannot answer: the schema is not current, a job is
    ``processing`` (recovery may have to run first), ``limit`` < 1 (an error the
    SQLAlchemy path reports), or SQLite reports an error.
    """
    if limit is not None and limit < 1:
        return None  # the SQLAlchemy path reports the error
    try:
        connection = sqlite3.connect(path, timeout=30.0)  # only reads below
    except sqlite3.Error:
        return None
    try:
        connection.execute("BEGIN")  # one snapshot for every read below
        versions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
        if versions != [HEAD_REVISION]:
            return None
        if connection.execute("SELECT 1 FROM generations WHERE status = 'processing' LIMIT 1").fetchone():
            return None
        query, parameters = _SELECT, []
        if status is not None:
            query, parameters = query + " WHERE status = ?", [status]
        query += " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        rows = connection.execute(query, [*parameters, -1 if limit is None else limit, offset]).fetchall()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return [{key: _read(value, kind) for (key, (_, kind)), value in zip(_FIELDS.items(), row)} for row in rows]
