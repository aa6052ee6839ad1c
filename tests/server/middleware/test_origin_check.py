"""CSRF: cross-site state-changing requests are refused."""

from __future__ import annotations

import pytest

from m2fp.server.app import create_app
from tests.server.conftest import app_client, tiny_settings
from tests.utils.images import png_bytes

pytestmark = pytest.mark.anyio
PARSE = "/api/v1/parse"
PNG_HEADERS = {"content-type": "image/png"}


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # curl, scripts: no browser, no ambient credentials
        ({"sec-fetch-site": "same-origin"}, True),
        ({"sec-fetch-site": "none"}, True),
        ({"sec-fetch-site": "cross-site", "origin": "https://evil.example"}, False),
        ({"sec-fetch-site": "same-site", "origin": "https://sub.testserver"}, False),
        ({"origin": "https://evil.example"}, False),
        ({"origin": "null"}, False),
        ({"origin": "http://testserver"}, True),
    ],
)
async def test_cross_site_posts_are_refused(tiny_parser, headers, allowed):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        response = await client.post(PARSE, content=png_bytes(), headers={**PNG_HEADERS, **headers})
        safe = await client.get("/api/v1/classes", headers=headers)
    if allowed:
        assert response.status_code == 200
    else:
        assert (response.status_code, response.json()["error"]) == (403, "forbidden_origin")
    assert safe.status_code == 200  # only state-changing methods are checked
