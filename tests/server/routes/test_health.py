"""Liveness, readiness and the classes legend."""

from __future__ import annotations

import anyio
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


def _threads_after_a_parallel_op() -> int:
    import torch

    torch.ones(1 << 16).sum()
    return torch.get_num_threads()


async def test_readiness_reports_the_threads(tiny_model_dir):
    import torch

    before = torch.get_num_threads()
    try:
        app = create_app(tiny_settings(model=tiny_model_dir, threads=1))
        async with app_client(app) as client:
            compute = (await client.get("/readyz")).json()["compute"]
        assert (compute["threads"], compute["threads_source"]) == (1, "requested")
        # the pool size is global; each thread takes it up at its first parallel op
        assert await anyio.to_thread.run_sync(_threads_after_a_parallel_op) == 1
    finally:
        torch.set_num_threads(before)
