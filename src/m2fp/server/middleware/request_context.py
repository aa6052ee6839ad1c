"""Per-request id, the audit line, request metrics and the catch-all for unexpected errors.

The request id is generated here (a client-sent one is ignored: it would be client data in
our logs) and returned as ``X-Request-ID``. Any exception that escapes the app becomes a
generic 500 JSON body; the log keeps the traceback frames but not the exception text.
"""

from __future__ import annotations

import logging
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m2fp.server.errors import ApiError, error_response
from m2fp.server.ops.audit_log import AuditLog
from m2fp.server.ops.metrics import Metrics
from m2fp.server.request_state import client_ip, error_reason, set_error_reason, set_request_id

logger = logging.getLogger(__name__)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/parse``, ``/static``), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Outermost layer of the app's own middleware.

    Args:
        app: the wrapped ASGI app.
        audit: where the per-request line goes.
        metrics: request and rejection counters.
    """

    def __init__(self, app: ASGIApp, *, audit: AuditLog, metrics: Metrics) -> None:
        self.app = app
        self.audit = audit
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(16)
        set_request_id(scope, request_id)
        started = time.perf_counter()
        status = 500
        bytes_in = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, counting_receive, send_with_id)
        except Exception as exc:
            logger.error(
                "unhandled %s in request %s",
                type(exc).__name__,
                request_id,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            if response_started:
                set_error_reason(scope, "internal_error")
            else:
                await error_response(scope, ApiError("internal_error"))(
                    scope, counting_receive, send_with_id
                )
        finally:
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            route = route_template(scope)
            reason = error_reason(scope)
            self.metrics.requests.labels(route=route, method=method, status=str(status)).inc()
            if reason:
                self.metrics.rejections.labels(reason=reason).inc()
            self.audit.request(
                request_id=request_id,
                method=method,
                route=route,
                status=status,
                duration_ms=(time.perf_counter() - started) * 1000,
                bytes_in=bytes_in,
                reason=reason,
                client=client_ip(scope),
            )
