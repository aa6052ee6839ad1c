"""Security headers on every response, and no ``Server`` header.

HSTS is only sent when the request really arrived over https: the ASGI scheme, or
``X-Forwarded-Proto: https`` from a direct peer that is one of the trusted proxies.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m2fp.server.abuse.client_identity import IPNetwork, TrustedProxies

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


class SecurityHeadersMiddleware:
    """Adds CSP, nosniff, Referrer-Policy, Permissions-Policy, framing and HSTS headers.

    Args:
        app: the wrapped ASGI app.
        trusted_proxies: peers whose ``X-Forwarded-Proto`` is believed.
    """

    def __init__(self, app: ASGIApp, *, trusted_proxies: Iterable[IPNetwork]) -> None:
        self.app = app
        self.proxies = TrustedProxies(networks=tuple(trusted_proxies))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        forwarded = Headers(scope=scope).get("x-forwarded-proto", "").strip().lower()
        https = scope.get("scheme") == "https" or (
            forwarded == "https" and self.proxies.is_trusted_peer(peer[0] if peer else None)
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
