"""Resolves every request's client address once, for the audit line and the parse guard.

The address is the direct peer, or, when that peer is one of the trusted proxies, the
right-most untrusted hop of ``X-Forwarded-For`` (see ``client_identity``). It is stored with
``request_state.set_client_ip``; nothing downstream reads ``X-Forwarded-For`` itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from m2fp.server.abuse.client_identity import IPNetwork, TrustedProxies
from m2fp.server.request_state import set_client_ip


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
            set_client_ip(scope, address)
        await self.app(scope, receive, send)
