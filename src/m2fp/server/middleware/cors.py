"""CORS for an explicit allow-list of origins (none by default, never ``*``).

No credentials are allowed: API keys travel in headers the caller sets itself. A preflight
from an origin not on the list gets 403 ``forbidden_origin``; other requests from such origins
simply get no CORS headers, so browsers keep their answers from the calling page.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m2fp.server.errors import ApiError, error_response

ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Accept, Authorization, Content-Type, X-API-Key"
EXPOSE_HEADERS = "Retry-After, X-Request-ID"
PREFLIGHT_MAX_AGE = "600"


def check_origins(origins: Iterable[str]) -> tuple[str, ...]:
    """The origins, lower-case and without a trailing slash, if each is an exact origin such
    as ``https://example.org``; else ValueError (``*`` above all: every website could call
    the API)."""
    normalised = tuple(origin.rstrip("/").lower() for origin in origins)
    for origin in normalised:
        if origin == "*":
            raise ValueError("'*' would let every website call the API; list origins")
        url = urlsplit(origin)
        if url.scheme not in ("https", "http") or not url.hostname or url.path or url.query:
            raise ValueError("must be origins such as https://example.org (no path)")
    return normalised


class CorsMiddleware:
    """Answers preflights and adds ``Access-Control-Allow-Origin`` for listed origins.

    Args:
        app: the wrapped ASGI app.
        allow_origins: exact origins such as ``https://example.org`` (``check_origins``).
    """

    def __init__(self, app: ASGIApp, *, allow_origins: Iterable[str]) -> None:
        self.app = app
        self.allow_origins = frozenset(check_origins(allow_origins))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin.lower() in self.allow_origins
        if scope["method"] == "OPTIONS" and origin and "access-control-request-method" in headers:
            if allowed:
                response: Response = Response(status_code=204, headers=self._headers(origin))
                response.headers.update(
                    {
                        "Access-Control-Allow-Methods": ALLOW_METHODS,
                        "Access-Control-Allow-Headers": ALLOW_HEADERS,
                        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                    }
                )
            else:
                response = error_response(scope, ApiError("forbidden_origin"))
            await response(scope, receive, send)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return
        assert origin is not None  # nosec B101 # narrows the type; checked just above

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(self._headers(origin))
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    def _headers(origin: str) -> dict[str, str]:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": EXPOSE_HEADERS,
            "Vary": "Origin",
        }
