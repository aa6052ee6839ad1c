"""The parse guard inside the app (in process): every state-changing route has it, and the
order and bookkeeping of its checks. Real-HTTP behaviour: test_abuse_http.py."""

from __future__ import annotations

import hashlib
import logging

import pytest
from fastapi.routing import iter_route_contexts

from m2fp.server.app import create_app
from m2fp.server.app_state import app_state
from m2fp.server.deps import guard_parse
from m2fp.server.ops.log_rate_limit import Throttle
from tests.server.conftest import FakeClock, app_client, tiny_settings
from tests.utils.images import png_bytes

PARSE = "/api/v1/parse"
PNG_HEADERS = {"content-type": "image/png"}
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
    read_only = {"/healthz", "/readyz", "/metrics", "/api/v1/classes", "/"}
    seen = set()
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if route.path in read_only:
            assert dependant is None or not depends_on(dependant, guard_parse), route.path
            seen.add(route.path)
    assert seen == read_only  # every one of them was checked


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
async def test_a_counted_rejection_says_how_many_are_left_before_uploads_pause(tiny_parser):
    app = create_app(
        tiny_settings(rate_limit="100/minute", ban_after=3, ban_seconds=3600), parser=tiny_parser
    )
    async with app_client(app) as client:
        not_counted = await client.post(
            PARSE, params={"alpha": "7"}, files={"image": ("p.png", png_bytes(), "image/png")}
        )
        assert not_counted.status_code == 400
        assert "strikes_left" not in not_counted.json()
        first = (await post(client, b"GIF89a", "x.gif")).json()
        assert (first["error"], first["strikes_left"], first["ban_seconds"]) == (
            "bad_extension",
            2,
            3600,
        )
        second = (await post(client, b"not an image", "x.png")).json()
        assert (second["strikes_left"], second["ban_seconds"]) == (1, 3600)
        third = (await post(client, b"not an image", "x.png")).json()
        assert third["strikes_left"] == 0  # this one paused the uploads
        banned = (await post(client)).json()
        assert banned["error"] == "banned"
        assert "strikes_left" not in banned  # a refusal, not a counted rejection


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
        watchdog = app_state(app).services.watchdog
        await watchdog.stop()  # no background samples: the test sets the flag
        watchdog._set_shedding(True)
        response = await post(client)
        assert response.status_code == 503
        assert response.json()["error"] == "overloaded"
        assert int(response.headers["retry-after"]) > 0
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200
        watchdog._set_shedding(False)
        assert (await client.get("/readyz")).status_code == 200
        assert (await post(client)).status_code == 200


@pytest.mark.anyio
async def test_rejected_uploads_are_security_events(tiny_parser, caplog):
    with caplog.at_level(logging.INFO, logger="m2fp.audit"):
        async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
            await client.post(PARSE, content=b"GIF89a", headers=PNG_HEADERS)
    events = [r.fields for r in caplog.records if r.fields["event"] == "security_event"]
    assert events == [
        {"event": "security_event", "kind": "rejected_upload", "client": events[0]["client"],
         "reason": "unsupported_media_type"}
    ]  # fmt: skip
    assert events[0]["client"] != "127.0.0.1"


@pytest.mark.anyio
async def test_banned_client_with_a_wrong_key_is_403_banned_not_401(tiny_parser):
    """A ban is on the address: trying keys from it must not turn 'banned' into 'unauthorized',
    which would tell the client its ban can be walked around by guessing keys."""
    settings = tiny_settings(api_keys=DIGEST, rate_limit="100/minute", ban_after=1)
    app = create_app(settings, parser=tiny_parser)
    async with app_client(app) as client:
        assert (await post(client, b"GIF89a", "x.gif")).status_code == 415  # banned now
        for headers in ({"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}):
            response = await post(client, headers=headers)
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "banned"
            assert int(response.headers["retry-after"]) >= 1


@pytest.mark.anyio
async def test_a_banned_address_stays_banned_with_a_valid_key(tiny_parser):
    """README: a banned address stays banned whatever key it tries; a valid key included,
    else a banned attacker holding any key walks around its ban."""
    settings = tiny_settings(api_keys=DIGEST, rate_limit="100/minute", ban_after=1)
    app = create_app(settings, parser=tiny_parser)
    async with app_client(app) as client:
        assert (await post(client, b"GIF89a", "x.gif")).status_code == 415  # banned now
        for headers in ({"authorization": f"Bearer {KEY}"}, {"x-api-key": KEY}):
            response = await post(client, headers=headers)
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "banned"
            assert int(response.headers["retry-after"]) >= 1


@pytest.mark.anyio
async def test_refusals_of_a_banned_client_are_thinned_security_events(tiny_parser, caplog):
    clock = FakeClock()
    settings = tiny_settings(api_keys=DIGEST, rate_limit="100/minute", ban_after=1)
    app = create_app(settings, parser=tiny_parser)
    async with app_client(app) as client:
        guard = app_state(app).services.guard
        guard.refusal_lines = Throttle(burst=2, window=60, clock=clock)
        assert (await post(client, b"GIF89a", "x.gif")).status_code == 415  # banned now
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="m2fp.audit"):
            for headers in ({}, {"x-api-key": KEY}, {"x-api-key": "wrong"}, {}, {}, {}):
                assert (await post(client, headers=headers)).status_code == 403
            clock.now += 61
            assert (await post(client)).status_code == 403
        events = [r.fields for r in caplog.records if r.fields.get("event") == "security_event"]
    assert [(e["kind"], e["reason"], e.get("suppressed")) for e in events] == [
        ("banned", "banned", None),  # anonymous: the address's bucket
        ("banned", "banned", None),  # the valid key: its own bucket, refused by the address ban
        ("banned", "banned", None),  # a wrong key: refused as the address
        # the address's next three refusals are dropped, then the window ends
        ("banned", "banned", 3),
    ]
    assert events[1]["key_id"] == DIGEST[:12]
    assert all(1 <= e["retry_after"] <= 3600 for e in events)
    assert all(e["client"] != "127.0.0.1" for e in events)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\n\r\n'
        b"x\r\n--b--\r\n",  # no field image
        b'--b\r\nContent-Disposition: form-data; name="image"',  # cut inside the part's headers
    ],
    ids=["no_image_field", "broken_framing"],
)
async def test_malformed_multipart_is_a_strike_as_the_readme_says(tiny_parser, content):
    app = create_app(tiny_settings(rate_limit="100/minute", ban_after=2), parser=tiny_parser)
    headers = {"content-type": "multipart/form-data; boundary=b"}
    async with app_client(app) as client:
        for _ in range(2):
            refused = await client.post(PARSE, content=content, headers=headers)
            assert refused.status_code == 400
            assert refused.json()["error"] == "bad_request"
        banned = await post(client)
        assert banned.status_code == 403
        assert banned.json()["error"] == "banned"
