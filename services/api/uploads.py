"""A multipart upload streamed to a private temporary file, with a size limit.

The body is parsed as it arrives (``python-multipart``'s push parser): the bytes of the
``file`` part go straight to a file in a new private folder, never all in memory; other
parts are ignored. The limit is checked on ``Content-Length`` first, then on the bytes
read. The caller removes the folder (:meth:`Upload.remove`) whatever happens.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import AsyncIterator, Optional

from .problems import ApiProblem

__all__ = ["FIELD", "Upload", "receive_upload"]

FIELD = "file"
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


class Upload:
    """The received file: ``path`` (in a private temporary folder), the client's file
    name, and its size in bytes."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="dgx-music-upload-")
        self.path: Optional[str] = None
        self.file_name: Optional[str] = None
        self.size = 0
        self._handle = None

    def open(self, file_name: Optional[str]) -> None:
        self.file_name = file_name
        suffix = os.path.splitext(file_name or "")[1]
        name = "upload" + (suffix.lower() if _SAFE_SUFFIX.match(suffix) else "")
        self.path = os.path.join(self.folder, name)
        self._handle = open(self.path, "xb")

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self.size += len(data)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _too_large(limit_bytes: int) -> ApiProblem:
    return ApiProblem(413, "upload-too-large",
                      f"the upload is larger than {limit_bytes / 1e6:g} MB (DGX_MUSIC_MAX_UPLOAD_MB)")


def _invalid(message: str) -> ApiProblem:
    return ApiProblem(422, "invalid-request", message, errors=[{"field": FIELD, "message": message}])


async def receive_upload(content_type: str, content_length: Optional[str], body: AsyncIterator[bytes],
                         limit_bytes: int) -> Upload:
    """Read a ``multipart/form-data`` body whose part ``file`` is the upload."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    media_type, options = parse_options_header(content_type or "")
    if media_type != b"multipart/form-data":
        raise ApiProblem(415, "unsupported-media-type",
                         f"send the audio as multipart/form-data with a part named {FIELD!r}; "
                         f"got Content-Type {content_type or 'none'!r}")
    boundary = options.get(b"boundary")
    if not boundary:
        raise _invalid("the multipart Content-Type has no boundary")
    if content_length is not None and content_length.isdigit() and int(content_length) > limit_bytes + 64 * 1024:
        raise _too_large(limit_bytes)  # refused before reading anything

    upload = Upload()
    state = {"headers": {}, "field": b"", "value": b"", "current": None, "seen": False}

    def on_part_begin():
        state["headers"] = {}
        state["current"] = None

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished():
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        if disposition.get(b"name") == FIELD.encode() and not state["seen"]:
            state["seen"] = True
            state["current"] = upload
            raw_name = disposition.get(b"filename")
            upload.open(raw_name.decode("utf-8", "replace") if raw_name else None)

    def on_part_data(data, start, end):
        if state["current"] is not None:
            upload.write(data[start:end])
            if upload.size > limit_bytes:
                raise _too_large(limit_bytes)

    def on_part_end():
        if state["current"] is not None:
            upload.close()
            state["current"] = None

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limit_bytes + 64 * 1024:  # the file part and its multipart framing
                raise _too_large(limit_bytes)
            parser.write(chunk)
        parser.finalize()
        if not state["seen"]:
            raise _invalid(f"the form has no part named {FIELD!r} (the audio file)")
        if upload.size == 0:
            raise _invalid("the uploaded file is empty (0 bytes)")
        upload.close()
        return upload
    except MultipartParseError as exc:
        upload.remove()
        raise _invalid(f"the multipart body cannot be parsed: {exc}") from None
    except BaseException:
        upload.remove()
        raise
