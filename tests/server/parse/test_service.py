"""The parse service in the app: off the event loop, bounded concurrency, queue and deadline."""

from __future__ import annotations

import asyncio
import threading

import anyio
import anyio.to_thread
import pytest

from m2fp.errors import DeviceMemoryError
from m2fp.server.app import create_app
from m2fp.server.app_state import app_state
from m2fp.server.errors import REASONS
from tests.server.conftest import app_client, tiny_settings
from tests.utils.images import png_bytes
from tests.utils.stand_in_parser import StandInParser, standing_in_for

pytestmark = pytest.mark.anyio
PARSE = "/api/v1/parse"
PNG_HEADERS = {"content-type": "image/png"}
WAIT = 60.0


class GatedParser(StandInParser):
    """The tiny parser behind a gate, so that tests decide when an inference ends."""

    def __init__(self, parser) -> None:
        super().__init__(**standing_in_for(parser))
        self.parser = parser
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def parse_upright(self, image):
        self.calls += 1
        self.started.set()
        assert self.release.wait(WAIT)
        return self.parser(image)


async def post(client, content: bytes = b"", filename: str = "photo.png", **kwargs):
    content = content or png_bytes()
    return await client.post(PARSE, files={"image": (filename, content, "image/png")}, **kwargs)


async def test_inference_runs_off_the_event_loop_with_bounded_concurrency(tiny_parser):
    gated = GatedParser(tiny_parser)
    app = create_app(tiny_settings(max_concurrency=1), parser=gated)
    statuses = []
    async with app_client(app) as client:

        async def post_raw() -> None:
            response = await client.post(PARSE, content=png_bytes(), headers=PNG_HEADERS)
            statuses.append(response.status_code)

        async with anyio.create_task_group() as group:
            group.start_soon(post_raw)
            group.start_soon(post_raw)
            await anyio.to_thread.run_sync(gated.started.wait, WAIT)
            # the event loop still answers while a parse holds the only worker slot
            assert (await client.get("/healthz")).status_code == 200
            queue = app_state(app).services.parse.queue
            for _ in range(6000):
                if queue.depth == 1:
                    break
                await anyio.sleep(0.01)
            assert gated.calls == 1
            assert "m2fp_queue_depth 1.0" in (await client.get("/metrics")).text
            gated.release.set()
    assert statuses == [200, 200]
    assert gated.calls == 2


async def test_full_queue_is_503_overloaded_and_visible_in_metrics(tiny_parser):
    gate = GatedParser(tiny_parser)
    settings = tiny_settings(rate_limit="100/minute", max_concurrency=1, max_queue=1)
    app = create_app(settings, parser=gate)
    async with app_client(app) as client:
        queue = app_state(app).services.parse.queue
        first = asyncio.create_task(post(client))
        await asyncio.to_thread(gate.started.wait, WAIT)
        second = asyncio.create_task(post(client))
        for _ in range(200):
            if queue.depth == 1:
                break
            await asyncio.sleep(0.01)
        metrics = (await client.get("/metrics")).text
        assert "m2fp_queue_depth 1.0" in metrics
        third = await post(client)
        assert third.status_code == 503
        assert third.json()["error"] == "overloaded"
        assert int(third.headers["retry-after"]) >= 1
        gate.release.set()
        assert (await first).status_code == 200
        assert (await second).status_code == 200


async def test_deadline_is_503_timeout_and_the_slot_stays_taken(tiny_parser):
    gate = GatedParser(tiny_parser)
    settings = tiny_settings(max_concurrency=1, max_queue=0, request_timeout=0.2)
    app = create_app(settings, parser=gate)
    async with app_client(app) as client:
        queue = app_state(app).services.parse.queue
        response = await post(client)
        assert response.status_code == 503
        assert response.json()["error"] == "timeout"
        assert int(response.headers["retry-after"]) >= 1
        assert queue.running == 1  # the thread still computes
        assert (await post(client)).json()["error"] == "overloaded"
        gate.release.set()
        for _ in range(500):
            if queue.running == 0:
                break
            await asyncio.sleep(0.01)
        assert queue.running == 0


async def test_full_queue_is_503_before_a_byte_of_the_body_is_read(tiny_parser):
    gate = GatedParser(tiny_parser)
    settings = tiny_settings(rate_limit="100/minute", max_concurrency=1, max_queue=0)
    app = create_app(settings, parser=gate)
    pulled = []

    async def body():
        pulled.append(1)
        yield png_bytes()

    async with app_client(app) as client:
        first = asyncio.create_task(post(client))
        await asyncio.to_thread(gate.started.wait, WAIT)
        refused = await client.post(PARSE, content=body(), headers=PNG_HEADERS)
        assert refused.status_code == 503
        assert refused.json()["error"] == "overloaded"
        assert pulled == [], "the body was read before the capacity check"
        gate.release.set()
        assert (await first).status_code == 200


class CountingParser(StandInParser):
    """The tiny parser, counting when the service hands its device memory back; it runs out
    of device memory for the photos in ``too_large`` (sizes)."""

    def __init__(self, parser, too_large: tuple[tuple[int, int], ...] = ()) -> None:
        super().__init__(**standing_in_for(parser))
        self.parser = parser
        self.too_large = too_large

    def parse_upright(self, image):
        if image.size in self.too_large:
            raise DeviceMemoryError("cuda:0 ran out of memory for one 1344x1344 input")
        return self.parser(image)

    def release_device_memory(self) -> None:
        self.releases += 1


async def test_device_out_of_memory_is_503_with_its_own_reason(tiny_parser):
    parser = CountingParser(tiny_parser, too_large=((120, 80),))
    app = create_app(tiny_settings(), parser=parser)
    async with app_client(app) as client:
        refused = await post(client, png_bytes(width=120, height=80))
        assert refused.status_code == 503
        body = refused.json()
        assert body == {
            "error": "device_out_of_memory",
            "message": REASONS["device_out_of_memory"][1],
            "request_id": refused.headers["x-request-id"],
        }
        assert "1344" not in refused.text  # the parser's message stays in the server
        assert (await post(client)).status_code == 200  # the next photo is served


async def test_a_shape_the_openvino_package_does_not_cover_is_400(openvino_model_dir):
    # a parser from the package alone (no torch fallback): a 2000x20 photo becomes a
    # network input 32 pixels high, which the exported graphs do not compute
    from dataclasses import replace

    from m2fp import HumanParser
    from tests.conftest import golden_options

    options = replace(golden_options(), engine="openvino")
    parser = HumanParser.from_pretrained(openvino_model_dir, options=options)
    app = create_app(tiny_settings(), parser=parser)
    async with app_client(app) as client:
        refused = await post(client, png_bytes(width=2000, height=20))
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "unsupported_shape"
        assert (await post(client)).status_code == 200  # the next photo is served


async def test_device_memory_is_not_released_between_back_to_back_parses(tiny_parser):
    """Releasing after every parse whenever the queue is momentarily empty makes the next
    request allocate GBs again: the release waits for an idle period (30 s)."""
    parser = CountingParser(tiny_parser)
    app = create_app(tiny_settings(), parser=parser)
    async with app_client(app) as client:
        for _ in range(3):
            assert (await post(client)).status_code == 200
        assert parser.releases == 0
    assert parser.releases == 0  # shutdown cancelled the pending release
