"""``/api/v1/generations``: submit, list and search, read, follow, cancel, download, peaks."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Literal, Optional

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..auth import require_api_key
from ..problems import ApiProblem
from ..schemas import (
    GenerationAccepted,
    GenerationPage,
    GenerationRecord,
    GenerationRequest,
    Peaks,
    Problem,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["generations"], dependencies=[Depends(require_api_key)])

PROBLEMS = {status: {"model": Problem, "content": {"application/problem+json": {}}}
            for status in (401, 404, 409, 422)}
_FINAL = ("completed", "failed", "cancelled")
EVENT_POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


# --- helpers ---------------------------------------------------------------------------------

def _session(request: Request, readonly: bool = True):
    from ...storage import get_session

    return get_session(request.app.state.database_url, readonly=readonly)


def _links(request: Request, generation_id: str) -> Dict[str, str]:
    base = f"/api/v1/generations/{generation_id}"
    return {"self": base, "events": f"{base}/events", "cancel": f"{base}/cancel",
            "audio": f"{base}/audio", "peaks": f"{base}/peaks"}


def _record(request: Request, session, generation) -> Dict[str, Any]:
    """The API's view of a row (no server paths)."""
    from ...audio.key_names import camelot_code
    from ...jobs.lifecycle import queue_position

    metadata = generation.metadata_json or {}
    job_request = generation.request_json or {}
    status = str(generation.status.value if hasattr(generation.status, "value") else generation.status)
    return {
        "id": generation.id,
        "job_id": generation.job_id,
        "prompt": generation.prompt,
        "status": status,
        "step": generation.progress_step,
        "queue_position": queue_position(session, generation),
        "error": generation.error_message,
        "attempts": generation.attempts or 0,
        "cancel_requested": generation.cancel_requested_at is not None,
        "created_at": generation.created_at.isoformat(),
        "started_at": None if generation.started_at is None else generation.started_at.isoformat(),
        "completed_at": None if generation.completed_at is None else generation.completed_at.isoformat(),
        "duration_seconds": generation.duration_seconds,
        "seed": job_request.get("seed", metadata.get("seed")),
        "bit_depth": job_request.get("bit_depth", metadata.get("bit_depth")),
        "model_name": generation.model_name,
        "sample_rate": generation.sample_rate,
        "channels": generation.channels,
        "file_name": Path(generation.file_path).name if generation.file_path else None,
        "file_size_bytes": generation.file_size_bytes,
        "generation_time_seconds": generation.generation_time_seconds,
        "bpm": generation.bpm,
        "key": generation.musical_key,
        "camelot": camelot_code(generation.musical_key),
        "loudness_lufs": metadata.get("loudness_lufs"),
        "true_peak_dbtp": metadata.get("true_peak_dbtp"),
        "metadata": metadata or None,
        "links": _links(request, generation.id),
    }


def _find(session, identifier: str):
    from ...jobs.lifecycle import find_generation

    generation = find_generation(session, identifier)
    if generation is None:
        raise ApiProblem(404, "not-found", f"no generation with id or job id {identifier!r}")
    return generation


def _engine_field(message: str) -> str:
    """Which request field an engine or exporter refusal is about."""
    for name in ("duration", "seed", "bit_depth", "prompt"):
        if message.startswith(name):
            return name
    return "prompt"  # e.g. a tempo the backend cannot play, stated in the prompt


# --- submit ----------------------------------------------------------------------------------

@router.post("/generations", status_code=202, response_model=GenerationAccepted,
             responses={**PROBLEMS, 429: {"model": Problem, "description": "the queue is full"}})
def submit(body: GenerationRequest, request: Request, response: Response):
    """Queue a generation. The job runs on the service's workers; follow it with ``events``."""
    from ...errors import AudioValidationError, GenerationRequestError, QueueFullError
    from ...jobs.lifecycle import queue_position
    from ...storage import StorageValueError

    dispatcher = request.app.state.dispatcher
    try:
        generation = dispatcher.submit(body.prompt, body.duration, body.seed, body.bit_depth)
    except QueueFullError as exc:
        raise ApiProblem(429, "queue-full", str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except (GenerationRequestError, AudioValidationError, StorageValueError) as exc:
        message = str(exc)
        raise ApiProblem(422, "invalid-request", message,
                         errors=[{"field": _engine_field(message), "message": message}]) from None
    with _session(request) as session:
        position = queue_position(session, generation)
    links = _links(request, generation.id)
    response.headers["Location"] = links["self"]
    return {"id": generation.id, "job_id": generation.job_id, "status": "pending",
            "queue_position": position, "links": links}


# --- list and search -------------------------------------------------------------------------

def _encode_cursor(created_at: datetime, generation_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), generation_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str):
    from datetime import timezone

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, generation_id = json.loads(raw)
        when = datetime.fromisoformat(created)
        if when.tzinfo is None or not isinstance(generation_id, str):
            raise ValueError
        return when.astimezone(timezone.utc), generation_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        message = "not a cursor from this API (use next_cursor of the previous page)"
        raise ApiProblem(422, "invalid-request", f"cursor: {message}",
                         errors=[{"field": "cursor", "message": message}]) from None


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@router.get("/generations", response_model=GenerationPage, responses=PROBLEMS)
def list_generations(
    request: Request,
    status: Optional[Literal["pending", "processing", "completed", "failed", "cancelled"]] = None,
    q: Optional[str] = Query(None, max_length=200, description="text the prompt contains (any case)"),
    key: Optional[str] = Query(None, max_length=16, description='"A minor", "Am" or a Camelot code "8A"'),
    bpm_min: Optional[float] = Query(None, ge=0, le=1000),
    bpm_max: Optional[float] = Query(None, ge=0, le=1000),
    limit: int = Query(20, ge=1, le=100),
    cursor: Optional[str] = Query(None, max_length=200),
):
    """Generations newest first, filtered; ``next_cursor`` pages on."""
    from sqlalchemy import and_, or_, select

    from ...audio.key_names import canonical_key
    from ...storage import Generation

    query = select(Generation)
    if status is not None:
        query = query.where(Generation.status == status)
    if q:
        query = query.where(Generation.prompt.ilike(_like_pattern(q), escape="\\"))
    if key is not None:
        name = canonical_key(key)
        if name is None:
            message = f"not a key: {key!r} (use e.g. 'A minor', 'F#m', 'Bb major' or a Camelot code '8A')"
            raise ApiProblem(422, "invalid-request", f"key: {message}", errors=[{"field": "key", "message": message}])
        query = query.where(Generation.musical_key == name)
    if bpm_min is not None and bpm_max is not None and bpm_min > bpm_max:
        message = f"bpm_min ({bpm_min:g}) is above bpm_max ({bpm_max:g})"
        raise ApiProblem(422, "invalid-request", message,
                         errors=[{"field": "bpm_min", "message": message}, {"field": "bpm_max", "message": message}])
    if bpm_min is not None:
        query = query.where(Generation.bpm >= bpm_min)
    if bpm_max is not None:
        query = query.where(Generation.bpm <= bpm_max)
    if cursor:
        created, last_id = _decode_cursor(cursor)
        query = query.where(or_(Generation.created_at < created,
                                and_(Generation.created_at == created, Generation.id < last_id)))
    query = query.order_by(Generation.created_at.desc(), Generation.id.desc()).limit(limit + 1)
    with _session(request) as session:
        rows = list(session.scalars(query))
        page, more = rows[:limit], len(rows) > limit
        items = [_record(request, session, generation) for generation in page]
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if more else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})


# --- one generation --------------------------------------------------------------------------

@router.get("/generations/{generation_id}", response_model=GenerationRecord, responses=PROBLEMS)
def read_generation(generation_id: str, request: Request):
    """One generation by record id or job id: status, step, queue position, error, metadata."""
    with _session(request) as session:
        return JSONResponse(_record(request, session, _find(session, generation_id)))


def _event_state(request: Request, generation_id: str) -> Dict[str, Any]:
    from ...jobs.lifecycle import queue_position

    with _session(request) as session:
        generation = _find(session, generation_id)
        status = str(getattr(generation.status, "value", generation.status))
        return {"id": generation.id, "status": status, "step": generation.progress_step,
                "queue_position": queue_position(session, generation),
                "error": generation.error_message if status in ("failed", "cancelled") else None}


@router.get("/generations/{generation_id}/events", responses={**PROBLEMS, 200: {
    "content": {"text/event-stream": {}},
    "description": "Server-Sent Events; each data line a GenerationEvent, the last one final"}})
async def follow_generation(generation_id: str, request: Request):
    """Progress as Server-Sent Events: one event per change of status, step or queue
    position, ending with the final state (completed, failed or cancelled)."""
    hub = request.app.state.hub
    first = await run_in_threadpool(_event_state, request, generation_id)  # 404 before streaming

    async def stream():
        state, sent = first, None
        last_write = asyncio.get_running_loop().time()
        sequence = 0
        while True:
            if state != sent:
                sequence += 1
                yield f"id: {sequence}\ndata: {json.dumps(state)}\n\n"
                sent, last_write = state, asyncio.get_running_loop().time()
            if state["status"] in _FINAL or hub.closing.is_set():
                return
            await hub.wait(state["id"], EVENT_POLL_SECONDS)
            if await request.is_disconnected():
                return
            if asyncio.get_running_loop().time() - last_write >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_write = asyncio.get_running_loop().time()
            try:
                state = await run_in_threadpool(_event_state, request, state["id"])
            except ApiProblem:  # deleted meanwhile
                return

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/generations/{generation_id}/cancel", response_model=GenerationRecord,
             responses={**PROBLEMS, 202: {"model": GenerationRecord, "description": "stops at its next step"}})
def cancel_generation(generation_id: str, request: Request):
    """Cancel: a queued job at once (200); a running one stops at its next step and leaves
    no file (202); a finished one cannot be (409)."""
    from ...errors import InvalidTransitionError

    with _session(request) as session:
        identifier = _find(session, generation_id).id
    try:
        request.app.state.dispatcher.cancel(identifier)
    except InvalidTransitionError as exc:
        raise ApiProblem(409, "already-finished", str(exc)) from None
    with _session(request) as session:
        record = _record(request, session, _find(session, identifier))
    return JSONResponse(record, status_code=200 if record["status"] == "cancelled" else 202)


# --- the file --------------------------------------------------------------------------------

def _served_file(request: Request, generation_id: str):
    """The completed generation's file, if the history points at it inside the tree."""
    with _session(request) as session:
        generation = _find(session, generation_id)
        status = str(getattr(generation.status, "value", generation.status))
        file_path, job_id = generation.file_path, generation.job_id
    if status != "completed":
        raise ApiProblem(409, "no-audio", f"generation {generation_id!r} is {status}; only completed ones have audio")
    root = os.path.realpath(request.app.state.output_root)
    real = os.path.realpath(file_path)
    if os.path.commonpath([root, real]) != root:
        raise ApiProblem(404, "not-found", f"the file of generation {generation_id!r} is outside the output tree")
    if not os.path.isfile(real):
        raise ApiProblem(410, "gone", f"the file of generation {generation_id!r} was removed")
    return real, job_id or Path(real).stem


_MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
                ".opus": "audio/ogg"}


@router.get("/generations/{generation_id}/audio", responses={
    **PROBLEMS, 410: {"model": Problem}, 200: {"content": {"audio/wav": {}}}, 206: {"description": "a byte range"}})
def download_audio(generation_id: str, request: Request, download: bool = False):
    """The file, with ``Range`` (206), ``ETag`` and ``Content-Disposition`` (``inline``;
    ``download=true`` for ``attachment``)."""
    path, job_id = _served_file(request, generation_id)
    suffix = Path(path).suffix.lower()
    response = FileResponse(path, media_type=_MEDIA_TYPES.get(suffix, "application/octet-stream"),
                            filename=f"{job_id}{suffix}", content_disposition_type="attachment" if download else "inline")
    response.headers["Cache-Control"] = "private, max-age=3600"
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and not request.headers.get("range"):
        stat = os.stat(path)
        response.set_stat_headers(stat)
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        if response.headers["etag"] in tags or "*" in tags:
            return Response(status_code=304, headers={"ETag": response.headers["etag"],
                                                      "Cache-Control": response.headers["Cache-Control"]})
    return response


@router.get("/generations/{generation_id}/peaks", response_model=Peaks, responses={**PROBLEMS, 410: {"model": Problem}})
def waveform_peaks(generation_id: str, request: Request, points: int = Query(1000, ge=1, le=20000)):
    """Waveform peaks for a player (audiowaveform JSON v2), about ``points`` pixels wide."""
    path, _ = _served_file(request, generation_id)
    stat = os.stat(path)
    etag = f'"peaks-{stat.st_mtime_ns:x}-{stat.st_size:x}-{points}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return JSONResponse(_peaks(path, stat.st_mtime_ns, stat.st_size, points), headers=headers)


@lru_cache(maxsize=64)
def _peaks(path: str, mtime_ns: int, size: int, points: int) -> Dict[str, Any]:
    """Peaks of a file version (``mtime_ns`` and ``size`` key the cache; a rewrite misses)."""
    from ...audio.peaks import waveform_peaks as compute

    return compute(path, points)
