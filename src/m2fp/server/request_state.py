"""What one request carries between the layers, kept in its ASGI scope's ``state``.

Three values travel with a request: the client address resolved once behind trusted proxies
(``ClientAddressMiddleware``), the request id made for it (``RequestContextMiddleware``) and
the reason it was refused (the error responses). The plain-ASGI middleware, the error
handlers, the dependencies and the guard all read and write them through these accessors
only, so each key is spelled once and each value has one type. ``request.state`` in a route
is a view of the same dictionary.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

_CLIENT_IP = "client_ip"
_REQUEST_ID = "request_id"
_ERROR_REASON = "error_reason"


def _state(scope: Scope) -> dict[str, Any]:
    return scope.setdefault("state", {})


def set_client_ip(scope: Scope, address: str) -> None:
    """Record the resolved client address (the peer, or the hop behind our proxies)."""
    _state(scope)[_CLIENT_IP] = address


def client_ip(scope: Scope) -> str | None:
    """The resolved client address; the direct peer if none was resolved; None if unknown."""
    resolved = _state(scope).get(_CLIENT_IP)
    if resolved:
        return str(resolved)
    peer = scope.get("client")
    return peer[0] if peer else None


def set_request_id(scope: Scope, request_id: str) -> None:
    """Record the id generated for this request (``X-Request-ID``, the audit line)."""
    _state(scope)[_REQUEST_ID] = request_id


def request_id(scope: Scope) -> str | None:
    """This request's id; None before ``RequestContextMiddleware`` has run."""
    return _state(scope).get(_REQUEST_ID)


def set_error_reason(scope: Scope, reason: str) -> None:
    """Record why the request was refused (the audit line and the rejection metric read it)."""
    _state(scope)[_ERROR_REASON] = reason


def error_reason(scope: Scope) -> str | None:
    """The reason this request was refused, None if it was not."""
    return _state(scope).get(_ERROR_REASON)
