"""API keys: with ``DGX_MUSIC_API_KEYS`` set, every ``/api/`` call needs one.

A key goes in ``Authorization: Bearer <key>``; a ``GET`` may carry it as the
``access_token`` query parameter instead (RFC 6750, section 2.3), because a browser's
``<audio src>`` and ``EventSource`` cannot set headers. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Optional

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .problems import ApiProblem

__all__ = ["require_api_key"]

_bearer = HTTPBearer(auto_error=False, description="one of DGX_MUSIC_API_KEYS (when it is set)")


def _matches(token: str, keys) -> bool:
    given = token.encode("utf-8", "surrogateescape")
    found = False
    for key in keys:  # no early exit: the time does not tell which key nearly matched
        found |= hmac.compare_digest(given, key.encode())
    return found


def require_api_key(request: Request, credentials: Optional[HTTPAuthorizationCredentials] = Depends(_bearer)) -> None:
    keys = request.app.state.settings.api_keys
    if not keys:
        return
    token = credentials.credentials if credentials is not None else None
    if token is None and request.method in ("GET", "HEAD"):
        token = request.query_params.get("access_token")
    if not token or not _matches(token, keys):
        detail = "an API key is required: Authorization: Bearer <key>" if not token else "the API key is not valid"
        raise ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="dgx-music"'})
