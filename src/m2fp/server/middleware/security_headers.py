"""Security headers on every response, and no ``Server`` header.

HSTS is only sent when the request really arrived over https: the ASGI scheme, or
``X-Forwarded-Proto: https`` from a direct peer listed in ``M2FP_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m2fp.server.settings import IPNetwork

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
HSTS = "max-age=63072000; includeSubDomains"


def is_trusted_peer(scope: Scope, networks: Iterable[IPNetwork]) -> bool:
    """The direct peer of this connection is one of the trusted proxies."""
    peer = scope.get("client")
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return False
    return any(address in network for network in networks)


class SecurityHeadersMiddleware:
    """Adds CSP, nosniff, Referrer-Policy, Permissions-Policy, framing and HSTS headers.

    Args:
        app: the wrapped ASGI app.
        trusted_proxies: peers whose ``X-Forwarded-Proto`` is believed.
    """

    def __init__(self, app: ASGIApp, *, trusted_proxies: Iterable[IPNetwork]) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https" or (
            Headers(scope=scope).get("x-forwarded-proto", "").strip().lower() == "https"
            and is_trusted_peer(scope, self.trusted_proxies)
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if https:
                    headers["Strict-Transport-Security"] = HSTS
                del headers["server"]
            await send(message)

        await self.app(scope, receive, send_with_headers)
