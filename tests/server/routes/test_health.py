"""Liveness, readiness and the classes legend."""

from __future__ import annotations

import pytest

from m2fp.server.app import create_app
from m2fp.server.app_state import app_state
from tests.server.conftest import app_client, tiny_settings

pytestmark = pytest.mark.anyio


async def test_classes_health_and_readiness(tiny_parser):
    app = create_app(tiny_settings(), parser=tiny_parser)
    async with app_client(app) as client:
        classes = (await client.get("/api/v1/classes")).json()["classes"]
        assert len(classes) == 20
        assert classes[2] == {"id": 2, "name": "Hair", "color": [255, 0, 0]}
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).status_code == 200
        app_state(app).not_ready.add("memory")
        shedding = await client.get("/readyz")
        assert (shedding.status_code, shedding.json()) == (503, {"status": "not_ready"})
        assert (await client.get("/healthz")).status_code == 200
