"""``POST /api/v1/analyses``: measure an uploaded audio file (nothing is kept)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..problems import ApiProblem
from ..schemas import Analysis, Problem
from ..uploads import FIELD, receive_upload

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["analyses"])

_UPLOAD_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [FIELD],
        "properties": {FIELD: {"type": "string", "format": "binary", "description": "an audio file"}},
    }}},
}


def _analyse(path: str):
    from ...audio import AudioMetadataExtractor

    return AudioMetadataExtractor(extract_bpm=True, extract_key=True).extract_metadata(path, compute_stats=True)


@router.post("/analyses", response_model=Analysis, openapi_extra={"requestBody": _UPLOAD_BODY},
             responses={status: {"model": Problem} for status in (401, 413, 415, 422)})
async def analyse_upload(request: Request):
    """Duration, levels, loudness (LUFS, dBTP, LRA), tempo and key of an uploaded file.

    The body is ``multipart/form-data`` with the file in the part ``file``; it is streamed
    to a temporary file (never held in memory), measured, and removed. Over
    ``DGX_MUSIC_MAX_UPLOAD_MB``: 413; not decodable audio: 422 with the decoder's message.
    """
    from ...errors import AudioDecodeError, AudioValidationError

    limit = int(request.app.state.settings.max_upload_mb * 1_000_000)
    upload = await receive_upload(request.headers.get("content-type", ""), request.headers.get("content-length"),
                                  request.stream(), limit)
    try:
        metadata = await run_in_threadpool(_analyse, upload.path)
    except (AudioDecodeError, AudioValidationError) as exc:
        shown = upload.file_name or "the upload"
        message = str(exc).replace(repr(upload.path), repr(shown)).replace(upload.path, shown)
        raise ApiProblem(422, "not-audio", message, errors=[{"field": FIELD, "message": message}]) from None
    finally:
        upload.remove()
    from ...storage.validation import json_safe

    return JSONResponse({"file_name": upload.file_name, **json_safe(metadata)})
