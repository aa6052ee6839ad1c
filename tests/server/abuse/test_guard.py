"""The parse guard inside the app (in process): every state-changing route has it, and the
order and bookkeeping of its checks. Real-HTTP behaviour: test_abuse_http.py."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading

import pytest
from fastapi.routing import iter_route_contexts

from m2fp.server.app import create_app
from m2fp.server.deps import guard_parse
from m2fp.server.settings import SettingsError, load_settings
from tests.server.conftest import app_client, tiny_settings
from tests.utils.images import png_bytes

PARSE = "/api/v1/parse"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
KEY = "test-key-0123456789"
DIGEST = hashlib.sha256(KEY.encode()).hexdigest()
WAIT = 30.0


def depends_on(dependant, call) -> bool:
    return any(d.call is call or depends_on(d, call) for d in dependant.dependencies)


def test_every_state_changing_api_route_passes_the_guard(tiny_parser):
    app = create_app(tiny_settings(), parser=tiny_parser)
    guarded = []
    for route in iter_route_contexts(app.routes):
        methods = set(route.methods or ())
        if (route.path or "").startswith("/api") and methods & STATE_CHANGING:
            assert depends_on(route.dependant, guard_parse), f"{route.path} bypasses the guard"
            guarded.append(route.path)
    assert PARSE in guarded


def test_read_only_routes_are_exempt(tiny_parser):
    app = create_app(tiny_settings(), parser=tiny_parser)
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if route.path in ("/healthz", "/readyz", "/metrics", "/api/v1/classes", "/"):
            assert dependant is None or not depends_on(dependant, guard_parse), route.path


async def post(client, content: bytes = b"", filename: str = "photo.png", **kwargs):
    content = content or png_bytes()
    return await client.post(PARSE, files={"image": (filename, content, "image/png")}, **kwargs)


@pytest.mark.anyio
async def test_wrong_key_is_401_and_spends_the_address_quota(tiny_parser):
    app = create_app(tiny_settings(api_keys=DIGEST, rate_limit="2/minute"), parser=tiny_parser)
    async with app_client(app) as client:
        for _ in range(2):
            response = await post(client, headers={"authorization": "Bearer wrong"})
            assert response.status_code == 401
            assert response.json()["error"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        response = await post(client, headers={"x-api-key": "still-wrong"})
        assert response.status_code == 429  # guessing keys is rate limited like anything else
        response = await post(client, headers={"authorization": f"Bearer {KEY}"})
        assert response.status_code == 200  # the key's own quota is untouched


@pytest.mark.anyio
async def test_good_upload_clears_strikes_and_other_refusals_are_not_strikes(tiny_parser):
    app = create_app(tiny_settings(rate_limit="100/minute", ban_after=2), parser=tiny_parser)
    async with app_client(app) as client:
        assert (await post(client, b"GIF89a", "x.gif")).status_code == 415
        assert (await post(client)).status_code == 200  # clears the strike
        assert (await post(client, b"GIF89a", "x.gif")).status_code == 415
        bad_query = await client.post(
            PARSE, params={"alpha": "7"}, files={"image": ("p.png", png_bytes(), "image/png")}
        )
        assert bad_query.status_code == 400  # not an upload rejection: no strike, no reset
        assert (await post(client, b"\x89PNG\r\n\x1a\n", "x.png")).status_code == 400
        banned = await post(client)
        assert banned.status_code == 403
        assert banned.json()["error"] == "banned"
        assert int(banned.headers["retry-after"]) == 3600


@pytest.mark.anyio
async def test_ban_is_a_security_event_without_client_data(tiny_parser, caplog):
    app = create_app(tiny_settings(rate_limit="100/minute", ban_after=1), parser=tiny_parser)
    async with app_client(app) as client:
        with caplog.at_level(logging.WARNING, logger="m2fp.audit"):
            assert (await post(client, b"GIF89a", "secret-name.gif")).status_code == 415
        events = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("kind")]
        assert sorted(e["kind"] for e in events) == ["banned", "rejected_upload"]
        assert all(e["client"] != "127.0.0.1" for e in events)  # pseudonymised
        assert "secret-name" not in caplog.text


@pytest.mark.anyio
async def test_api_key_client_is_banned_by_key_not_by_address(tiny_parser):
    app = create_app(
        tiny_settings(api_keys=DIGEST, rate_limit="100/minute", ban_after=1), parser=tiny_parser
    )
    async with app_client(app) as client:
        keyed = {"x-api-key": KEY}
        assert (await post(client, b"GIF89a", "x.gif", headers=keyed)).status_code == 415
        assert (await post(client, headers=keyed)).status_code == 403
        assert (await post(client)).status_code == 200  # the same address without the key


@pytest.mark.anyio
async def test_missing_key_when_required(tiny_parser):
    app = create_app(tiny_settings(api_keys=DIGEST, api_keys_required=True), parser=tiny_parser)
    async with app_client(app) as client:
        assert (await post(client)).status_code == 401
        assert (await post(client, headers={"authorization": f"Bearer {KEY}"})).status_code == 200
        assert (await client.get("/healthz")).status_code == 200


@pytest.mark.anyio
async def test_memory_shedding_refuses_parse_and_fails_readiness(tiny_parser):
    app = create_app(tiny_settings(), parser=tiny_parser)
    async with app_client(app) as client:
        guard = app.state.parse_guard
        guard.watchdog._set_shedding(True)
        response = await post(client)
        assert response.status_code == 503
        assert response.json()["error"] == "overloaded"
        assert int(response.headers["retry-after"]) > 0
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200
        guard.watchdog._set_shedding(False)
        assert (await client.get("/readyz")).status_code == 200
        assert (await post(client)).status_code == 200


class BlockingParser:
    """The tiny parser behind a gate, so that tests decide when an inference ends."""

    def __init__(self, parser) -> None:
        self.parser = parser
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, image):
        self.started.set()
        self.release.wait(WAIT)
        return self.parser(image)


@pytest.mark.anyio
async def test_full_queue_is_503_overloaded_and_visible_in_metrics(tiny_parser):
    gate = BlockingParser(tiny_parser)
    settings = tiny_settings(rate_limit="100/minute", max_concurrency=1, max_queue=1)
    app = create_app(settings, parser=gate)
    async with app_client(app) as client:
        first = asyncio.create_task(post(client))
        await asyncio.to_thread(gate.started.wait, WAIT)
        second = asyncio.create_task(post(client))
        for _ in range(200):
            if app.state.inference.queue.depth == 1:
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


@pytest.mark.anyio
async def test_deadline_is_503_timeout_and_the_slot_stays_taken(tiny_parser):
    gate = BlockingParser(tiny_parser)
    settings = tiny_settings(max_concurrency=1, max_queue=0, request_timeout=0.2)
    app = create_app(settings, parser=gate)
    async with app_client(app) as client:
        response = await post(client)
        assert response.status_code == 503
        assert response.json()["error"] == "timeout"
        assert int(response.headers["retry-after"]) >= 1
        assert app.state.inference.queue.running == 1  # the thread still computes
        assert (await post(client)).json()["error"] == "overloaded"
        gate.release.set()
        for _ in range(500):
            if app.state.inference.queue.running == 0:
                break
            await asyncio.sleep(0.01)
        assert app.state.inference.queue.running == 0


@pytest.mark.anyio
async def test_audit_client_is_the_forwarded_address_behind_a_trusted_proxy(tiny_parser, caplog):
    settings = tiny_settings(trusted_proxies="10.0.0.0/8")
    app = create_app(settings, parser=tiny_parser)
    async with app_client(app, client_host="10.0.0.1") as client:
        with caplog.at_level(logging.INFO, logger="m2fp.audit"):
            await client.get("/healthz", headers={"x-forwarded-for": "1.1.1.1, 198.51.100.9"})
        audit = app.state.audit
        lines = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("event")]
        assert lines[-1]["client"] == audit.client_id("198.51.100.9")


def test_guard_settings_fail_closed_with_one_line(monkeypatch):
    monkeypatch.setenv("M2FP_API_KEYS_REQUIRED", "true")
    with pytest.raises(SettingsError, match="M2FP_API_KEYS_REQUIRED needs"):
        load_settings()
    monkeypatch.delenv("M2FP_API_KEYS_REQUIRED")
    monkeypatch.setenv("M2FP_API_KEY_RATE_LIMIT", "lots")
    with pytest.raises(SettingsError, match="M2FP_API_KEY_RATE_LIMIT") as refused:
        load_settings()
    assert "lots" not in str(refused.value)
    monkeypatch.delenv("M2FP_API_KEY_RATE_LIMIT")
    settings = load_settings()
    assert (settings.api_key_rate_limit, settings.api_keys_required) == ("60/minute", False)
