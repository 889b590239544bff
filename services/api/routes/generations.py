"""``/api/v1/generations``: submit, list and search, read, follow, cancel, download, peaks."""

from __future__ import annotations

import asyncio
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Literal, Optional

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from .. import reads
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

router = APIRouter(prefix="/api/v1", tags=["generations"])

PROBLEMS = {status: {"model": Problem, "content": {"application/problem+json": {}}}
            for status in (400, 404, 409, 422)}
_FINAL = ("completed", "failed", "cancelled")
EVENT_POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


def _url(request: Request) -> str:
    return request.app.state.database_url


def _engine_field(message: str) -> str:
    """Which request field an engine or exporter refusal is about."""
    for name in ("duration", "seed", "bit_depth", "prompt", "format", "preset", "mp3_mode", "dither", "loop_bars",
                 "name_template", "peaks"):
        if message.startswith(name):
            return name
    return "prompt"  # e.g. a tempo the backend cannot play, stated in the prompt


def _invalid(field: str, message: str) -> ApiProblem:
    return ApiProblem(422, "invalid-request", f"{field}: {message}", errors=[{"field": field, "message": message}])


# --- submit ----------------------------------------------------------------------------------

@router.post("/generations", status_code=202, response_model=GenerationAccepted,
             responses={**PROBLEMS, 429: {"model": Problem, "description": "the queue is full"}})
def submit(body: GenerationRequest, request: Request, response: Response):
    """Queue a generation. The job runs on the service's workers; follow it with ``events``."""
    from ...errors import AudioValidationError, GenerationRequestError, QueueFullError
    from ...storage import StorageValueError

    try:
        generation = request.app.state.dispatcher.submit(body.prompt, body.duration, body.seed, body.bit_depth,
                                                         body.delivery())
    except QueueFullError as exc:
        raise ApiProblem(429, "queue-full", str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except (GenerationRequestError, AudioValidationError, StorageValueError) as exc:
        message = str(exc)
        raise ApiProblem(422, "invalid-request", message,
                         errors=[{"field": _engine_field(message), "message": message}]) from None
    accepted = reads.read_record(_url(request), generation.id)
    response.headers["Location"] = accepted["links"]["self"]
    return {key: accepted[key] for key in ("id", "job_id", "status", "queue_position", "links")}


# --- list and search -------------------------------------------------------------------------

@router.get("/generations", response_model=GenerationPage, responses=PROBLEMS)
async def list_generations(
    request: Request,
    status: Optional[Literal["pending", "processing", "completed", "failed", "cancelled"]] = None,
    q: Optional[str] = Query(None, max_length=200, description="text the prompt contains (any case)"),
    key: Optional[str] = Query(None, max_length=16, description='"A minor", "Am" or a Camelot code "8A"'),
    bpm_min: Optional[float] = Query(None, ge=0, le=1000),
    bpm_max: Optional[float] = Query(None, ge=0, le=1000),
    limit: int = Query(20, ge=1, le=100),
    cursor: Optional[str] = Query(None, max_length=200, description="next_cursor of the previous page"),
):
    """Generations newest first, filtered; ``next_cursor`` pages on."""
    from ...audio.key_names import canonical_key

    name = None
    if key is not None:
        name = canonical_key(key)
        if name is None:
            raise _invalid("key", f"not a key: {key!r} (use e.g. 'A minor', 'F#m', 'Bb major' or a Camelot code '8A')")
    if bpm_min is not None and bpm_max is not None and bpm_min > bpm_max:
        message = f"bpm_min ({bpm_min:g}) is above bpm_max ({bpm_max:g})"
        raise ApiProblem(422, "invalid-request", message,
                         errors=[{"field": "bpm_min", "message": message}, {"field": "bpm_max", "message": message}])
    try:
        position = reads.decode_cursor(cursor) if cursor else None
    except reads.InvalidCursor as exc:
        raise _invalid("cursor", str(exc)) from None
    page = reads.list_page(_url(request), status=status, text=q, key=name, bpm_min=bpm_min, bpm_max=bpm_max,
                           limit=limit, cursor=position)
    return JSONResponse(page)


# --- one generation --------------------------------------------------------------------------

@router.get("/generations/{generation_id}", response_model=GenerationRecord, responses=PROBLEMS)
async def read_generation(generation_id: str, request: Request):
    """One generation by record id or job id: status, step, queue position, error, metadata."""
    return JSONResponse(reads.read_record(_url(request), generation_id))


@router.get("/generations/{generation_id}/events", responses={**PROBLEMS, 200: {
    "content": {"text/event-stream": {}},
    "description": "Server-Sent Events; each data line a GenerationEvent, the last one final"}})
async def follow_generation(generation_id: str, request: Request):
    """Progress as Server-Sent Events: one event per change of status, step or queue
    position, ending with the final state (completed, failed or cancelled)."""
    hub = request.app.state.hub
    url = _url(request)
    first = reads.event_state(url, generation_id)  # a 404 before the stream starts

    async def stream():
        state, sent = first, None
        loop = asyncio.get_running_loop()
        last_write, sequence = loop.time(), 0
        while True:
            if state != sent:
                sequence += 1
                yield f"id: {sequence}\ndata: {json.dumps(state)}\n\n"
                sent, last_write = state, loop.time()
            if state["status"] in _FINAL or hub.closing.is_set():
                return
            await hub.wait(state["id"], EVENT_POLL_SECONDS)
            if await request.is_disconnected():
                return
            if loop.time() - last_write >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_write = loop.time()
            try:
                state = reads.event_state(url, state["id"])
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

    identifier = reads.read_record(_url(request), generation_id)["id"]
    try:
        request.app.state.dispatcher.cancel(identifier)
    except InvalidTransitionError as exc:
        raise ApiProblem(409, "already-finished", str(exc)) from None
    record = reads.read_record(_url(request), identifier)
    return JSONResponse(record, status_code=200 if record["status"] == "cancelled" else 202)


# --- the file --------------------------------------------------------------------------------

def _served_file(request: Request, generation_id: str):
    """The completed generation's file, if the history points at it inside the tree."""
    row = reads.file_facts(_url(request), generation_id)
    if row is None:
        raise ApiProblem(404, "not-found", f"no generation with id or job id {generation_id!r}")
    status = str(getattr(row.status, "value", row.status))
    if status != "completed":
        raise ApiProblem(409, "no-audio", f"generation {generation_id!r} is {status}; only completed ones have audio")
    root = os.path.realpath(request.app.state.output_root)
    real = os.path.realpath(row.file_path)
    if os.path.commonpath([root, real]) != root:
        raise ApiProblem(404, "not-found", f"the file of generation {generation_id!r} is outside the output tree")
    if not os.path.isfile(real):
        raise ApiProblem(410, "gone", f"the file of generation {generation_id!r} was removed")
    return real, row.job_id or Path(real).stem


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


@router.get("/generations/{generation_id}/peaks", response_model=Peaks, responses={
    **PROBLEMS, 410: {"model": Problem}, 200: {"content": {"application/json": {}, "application/octet-stream": {}}}})
def waveform_peaks(generation_id: str, request: Request, points: int = Query(1000, ge=1, le=20000),
                   format: Literal["json", "dat"] = Query("json", description="JSON, or audiowaveform's binary .dat")):
    """Waveform peaks for a player (audiowaveform version 2), about ``points`` pixels wide;
    the peaks written beside the file at generation (``peaks`` in the request) when there are
    some, served as they are, without decoding the audio."""
    path, _ = _served_file(request, generation_id)
    stat = os.stat(path)
    beside = _beside(path, format)
    version = f"{stat.st_mtime_ns:x}-{stat.st_size:x}-" + ("beside" if beside else str(points))
    etag = f'"peaks-{version}-{format}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if beside:
        return FileResponse(beside, media_type=_PEAKS_MEDIA[format], headers=headers)
    document = _peaks(path, stat.st_mtime_ns, stat.st_size, points)
    if format == "dat":
        from ...audio.peaks import peaks_dat

        return Response(peaks_dat(document), media_type=_PEAKS_MEDIA[format], headers=headers)
    return JSONResponse(document, headers=headers)


_PEAKS_MEDIA = {"json": "application/json", "dat": "application/octet-stream"}


def _beside(path: str, format: str) -> Optional[str]:
    """The peaks file written beside ``path`` at export in ``format``, if there is one."""
    from ...audio.peaks import peaks_paths_for

    candidate = peaks_paths_for(path)[0 if format == "json" else 1]
    return str(candidate) if candidate.is_file() else None


@lru_cache(maxsize=64)
def _peaks(path: str, mtime_ns: int, size: int, points: int) -> Dict[str, Any]:
    """Peaks of a file version (``mtime_ns`` and ``size`` key the cache; a rewrite misses)."""
    from ...audio.peaks import waveform_peaks as compute

    return compute(path, points)
