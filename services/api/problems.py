"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error response of the API is a JSON object with ``type``, ``title``, ``status``,
``detail`` and ``instance`` (the request path); validation errors add ``errors``: one
``{"field", "message"}`` per wrong field, ``field`` being the name the client sent
(``duration``, ``bpm_min``, ``file``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Dict, List, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import StorageError

__all__ = ["PROBLEM_MEDIA_TYPE", "ApiProblem", "install_problem_handlers", "problem_response"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_BASE = "https://dgx-music.invalid/problems/"  # identifiers, not links: never fetched


class ApiProblem(Exception):
    """Raise to answer with a problem: ``status`` (HTTP), a short ``kind`` (the type's last
    segment, e.g. "queue-full"), a human ``detail``, optional ``errors`` and ``headers``."""

    def __init__(self, status: int, kind: str, detail: str, *, errors: Optional[List[Dict[str, str]]] = None,
                 headers: Optional[Dict[str, str]] = None, title: Optional[str] = None):
        super().__init__(detail)
        self.status = int(status)
        self.kind = kind
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.title = title


def problem_response(request: Request, status: int, kind: str, detail: str, *,
                     errors: Optional[List[Dict[str, str]]] = None, headers: Optional[Dict[str, str]] = None,
                     title: Optional[str] = None) -> JSONResponse:
    body: Dict[str, Any] = {
        "type": _TYPE_BASE + kind,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_of(location: tuple) -> str:
    """The client's name of a wrong value: the body field, query or path parameter."""
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_errors(exc: RequestValidationError) -> List[Dict[str, str]]:
    errors = []
    for error in exc.errors():
        field = _field_of(tuple(error.get("loc", ())))
        message = str(error.get("msg", "invalid value"))
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        errors.append({"field": field, "message": message})
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a problem-details response."""

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem):
        return problem_response(request, exc.status, exc.kind, exc.detail, errors=exc.errors,
                                headers=exc.headers, title=exc.title)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = _validation_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem_response(request, 422, "invalid-request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such resource: {request.url.path}"
        return problem_response(request, exc.status_code, kind, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError):
        import logging

        logging.getLogger("services.api").error("database unavailable on %s: %s", request.url.path, exc)
        return problem_response(request, 503, "database-unavailable", f"the history database failed: {exc}",
                                headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # pragma: no cover - a bug
        import logging

        logging.getLogger("services.api").exception("unhandled error on %s", request.url.path)
        return problem_response(request, 500, "internal-error", "an unexpected error occurred; see the server log")
