"""Resolves every request's client address once, for the audit line and the parse guard.

The address is the direct peer, or, when that peer is in ``M2FP_TRUSTED_PROXIES``, the
right-most untrusted hop of ``X-Forwarded-For`` (see ``client_identity``). It is stored as
``state["client_ip"]``; nothing downstream reads ``X-Forwarded-For`` itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from m2fp.server.abuse.client_identity import IPNetwork, TrustedProxies


class ClientAddressMiddleware:
    """Stores the resolved client address in the request state.

    Args:
        app: the wrapped ASGI app.
        trusted_proxies: peers whose ``X-Forwarded-For`` is believed.
    """

    def __init__(self, app: ASGIApp, *, trusted_proxies: Iterable[IPNetwork]) -> None:
        self.app = app
        self.proxies = TrustedProxies(networks=tuple(trusted_proxies))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = scope.get("client")
            forwarded = Headers(scope=scope).getlist("x-forwarded-for")
            address = self.proxies.client_address(peer[0] if peer else None, forwarded)
            scope.setdefault("state", {})["client_ip"] = address
        await self.app(scope, receive, send)
