"""CORS: closed by default, exact allow-list."""

from __future__ import annotations

import pytest

from m2fp.server.app import create_app
from tests.server.conftest import app_client, tiny_settings
from tests.utils.images import png_bytes

pytestmark = pytest.mark.anyio
PARSE = "/api/v1/parse"
PNG_HEADERS = {"content-type": "image/png"}


async def test_cors_is_closed_by_default(tiny_parser):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        preflight = await client.options(
            PARSE,
            headers={"origin": "https://other.example", "access-control-request-method": "POST"},
        )
        simple = await client.get("/api/v1/classes", headers={"origin": "https://other.example"})
    assert preflight.status_code == 403
    assert preflight.json()["error"] == "forbidden_origin"
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_allow_list(tiny_parser):
    settings = tiny_settings(cors_origins="https://app.example")
    async with app_client(create_app(settings, parser=tiny_parser)) as client:
        preflight = await client.options(
            PARSE,
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        allowed = await client.post(
            PARSE,
            content=png_bytes(),
            headers={
                **PNG_HEADERS,
                "origin": "https://app.example",
                "sec-fetch-site": "cross-site",
            },
        )
        other = await client.get("/api/v1/classes", headers={"origin": "https://evil.example"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in other.headers
