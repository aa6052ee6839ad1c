"""Security headers on every answer, HSTS only over https."""

from __future__ import annotations

import httpx
import pytest

from m2fp.server.app import create_app
from m2fp.server.middleware.security_headers import CONTENT_SECURITY_POLICY
from tests.server.conftest import app_client, tiny_settings

pytestmark = pytest.mark.anyio


async def test_security_headers_and_hsts_only_over_https(tiny_parser):

    settings = tiny_settings(trusted_proxies="10.0.0.0/8")
    app = create_app(settings, parser=tiny_parser)
    async with app_client(app) as client:
        plain = await client.get("/healthz")
        spoofed = await client.get("/healthz", headers={"x-forwarded-proto": "https"})
    async with app_client(app, client_host="10.1.2.3") as proxied:
        forwarded = await proxied.get("/healthz", headers={"x-forwarded-proto": "https"})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as tls:
        direct_tls = await tls.get("/healthz")
    assert plain.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert plain.headers["referrer-policy"] == "no-referrer"
    assert "camera=()" in plain.headers["permissions-policy"]
    assert "strict-transport-security" not in plain.headers
    assert "strict-transport-security" not in spoofed.headers  # untrusted peer
    assert "max-age=" in forwarded.headers["strict-transport-security"]
    assert "max-age=" in direct_tls.headers["strict-transport-security"]
    assert "server" not in plain.headers
