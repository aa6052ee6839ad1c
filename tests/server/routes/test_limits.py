"""``GET /api/v1/limits``: the running limits, so the WebUI can state them before they bite."""

from __future__ import annotations

import pytest

from m2fp.server.app import create_app
from tests.server.conftest import app_client, tiny_settings

pytestmark = pytest.mark.anyio


async def test_limits_are_the_running_settings(tiny_parser):
    settings = tiny_settings(
        rate_limit="5/minute;100/day", ban_after=3, ban_seconds=3600, max_upload_bytes=2048
    )
    async with app_client(create_app(settings, parser=tiny_parser)) as client:
        response = await client.get("/api/v1/limits")
    assert response.status_code == 200
    assert response.json() == {
        "max_upload_bytes": 2048,
        "rate_limit": [{"amount": 5, "seconds": 60}, {"amount": 100, "seconds": 86400}],
        "ban_after": 3,
        "ban_seconds": 3600,
    }


async def test_limits_are_not_counted_against_the_client(tiny_parser):
    settings = tiny_settings(rate_limit="1/minute")
    async with app_client(create_app(settings, parser=tiny_parser)) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/limits")).status_code == 200
