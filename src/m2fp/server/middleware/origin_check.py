"""CSRF defence: state-changing requests from another site are refused (403 forbidden_origin).

Browsers say where a request comes from (``Sec-Fetch-Site``, ``Origin``); a page on another
site must not make a visitor's browser post to us. Allowed: origins on the CORS allow-list,
``Sec-Fetch-Site: same-origin`` or ``none`` (typed URL, bookmark), an ``Origin`` whose host is
our ``Host``, and requests with neither header (curl, server-to-server: no ambient browser
credentials to abuse).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from m2fp.server.errors import ApiError, error_response

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAFE_FETCH_SITES = frozenset({"same-origin", "none"})


def is_same_site_request(headers: Headers, allow_origins: frozenset[str]) -> bool:
    """Whether a state-changing request may proceed (see the module docstring)."""
    origin = headers.get("origin")
    if origin is not None and origin.lower() in allow_origins:
        return True
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() in SAFE_FETCH_SITES
    if origin is None:
        return True
    if origin == "null":
        return False
    host = headers.get("host")
    return host is not None and urlsplit(origin).netloc.lower() == host.strip().lower()


class OriginCheckMiddleware:
    """Refuses cross-site POST/PUT/PATCH/DELETE before any of the body is read.

    Args:
        app: the wrapped ASGI app.
        allow_origins: cross-origin callers explicitly allowed (the CORS allow-list).
    """

    def __init__(self, app: ASGIApp, *, allow_origins: Iterable[str]) -> None:
        self.app = app
        self.allow_origins = frozenset(allow_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in STATE_CHANGING
            and not is_same_site_request(Headers(scope=scope), self.allow_origins)
        ):
            response = error_response(scope, ApiError("forbidden_origin"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
