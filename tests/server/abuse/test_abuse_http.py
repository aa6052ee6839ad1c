"""Abuse and overload protection against real ``m2fp serve`` processes on 127.0.0.1.

Rate limit and Retry-After, bans, X-Forwarded-For spoofing, API keys, overload, memory
shedding with a webhook alert, and Redis shared by two servers (including Redis going away
and coming back). Clock-driven details (window arithmetic, ban expiry) are unit tests.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time

import httpx
import pytest

from tests.server.conftest import running_server
from tests.utils.images import png_bytes
from tests.utils.webhook_receiver import WebhookReceiver

PARSE = "/api/v1/parse"
KEY = "live-test-key-0123456789"
DIGEST = hashlib.sha256(KEY.encode()).hexdigest()
PICTURE = png_bytes(64, 48)


def post(server, content: bytes = PICTURE, filename: str = "photo.png", **kwargs):
    return httpx.post(
        server.url + PARSE,
        params={"visualize": "false"},
        files={"image": (filename, content, "image/png")},
        timeout=60,
        **kwargs,
    )


def assert_refused(response: httpx.Response, status: int, reason: str) -> int:
    """Checks the error contract; returns Retry-After in seconds."""
    assert response.status_code == status, response.text
    assert response.json()["error"] == reason
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit()
    return int(retry_after)


@pytest.fixture
def serve(tiny_model_dir, tmp_path):
    """``with serve(M2FP_X=...) as server``: a real server with those settings."""
    count = [0]

    def start(**env: str):
        count[0] += 1
        return running_server(tiny_model_dir, tmp_path / f"server{count[0]}.log", env=env)

    return start


@pytest.fixture(scope="module")
def proxied_server(tiny_model_dir, tmp_path_factory):
    """A server behind a "proxy" at 127.0.0.1, with optional API keys and production limits.

    Requests from 127.0.0.1 play the proxy (their X-Forwarded-For is believed); requests from
    127.0.0.2 play a client connecting directly (their X-Forwarded-For must be ignored). Each
    test uses its own client addresses, so their quotas do not interfere.
    """
    env = {
        "M2FP_TRUSTED_PROXIES": "127.0.0.1",
        "M2FP_API_KEYS": DIGEST,
        "M2FP_API_KEY_RATE_LIMIT": "4/minute",
    }
    log_path = tmp_path_factory.mktemp("proxied_server") / "server.log"
    with running_server(tiny_model_dir, log_path, env=env) as server:
        yield server


def direct_client() -> httpx.Client:
    """A client whose connections come from 127.0.0.2: an untrusted peer."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=60)


def parse_request(server, content: bytes = PICTURE, filename: str = "photo.png", **kwargs):
    return dict(
        method="POST",
        url=server.url + PARSE,
        params={"visualize": "false"},
        files={"image": (filename, content, "image/png")},
        **kwargs,
    )


def test_sixth_parse_in_a_minute_is_429_and_spoofed_xff_gains_nothing(proxied_server):
    server = proxied_server
    with direct_client() as client:
        for i in range(5):
            spoofed = {"x-forwarded-for": f"198.51.100.{i}"}
            assert client.request(**parse_request(server, headers=spoofed)).status_code == 200
        refused = client.request(**parse_request(server, headers={"x-forwarded-for": "10.9.9.9"}))
        assert 1 <= assert_refused(refused, 429, "rate_limited") <= 60
        assert client.request(**parse_request(server)).status_code == 429
        for path in ("/healthz", "/readyz", "/metrics", "/api/v1/classes"):
            for _ in range(6):
                assert client.get(server.url + path).status_code == 200, path
    assert '"kind":"rate_limited"' in server.log
    assert "198.51.100" not in server.log and "127.0.0.2" not in server.log


def test_trusted_proxy_forwarded_address_is_honoured(proxied_server):
    alice = {"x-forwarded-for": "203.0.113.1"}
    # Alice tries to look like someone new; the proxy appends her real address.
    alice_spoofing = {"x-forwarded-for": "192.0.2.50, 203.0.113.1"}
    for headers in (alice, alice_spoofing, alice, alice_spoofing, alice):
        assert post(proxied_server, headers=headers).status_code == 200
    assert_refused(post(proxied_server, headers=alice_spoofing), 429, "rate_limited")
    bob = {"x-forwarded-for": "203.0.113.2"}
    assert post(proxied_server, headers=bob).status_code == 200


def test_three_bad_uploads_ban_the_client(proxied_server):
    carol = {"x-forwarded-for": "203.0.113.3"}
    assert post(proxied_server, b"GIF89a....", "carol.gif", headers=carol).status_code == 415
    assert post(proxied_server, b"<html></html>", "a.png", headers=carol).status_code == 415
    corrupt = b"\x89PNG\r\n\x1a\n\x00\x00"
    assert post(proxied_server, corrupt, "a.png", headers=carol).status_code == 400
    retry_after = assert_refused(post(proxied_server, headers=carol), 403, "banned")
    assert 3590 <= retry_after <= 3600
    dave = {"x-forwarded-for": "203.0.113.4"}
    assert post(proxied_server, headers=dave).status_code == 200
    assert httpx.get(proxied_server.url + "/healthz", timeout=10).status_code == 200
    log = proxied_server.log
    events = [json.loads(line) for line in log.splitlines() if "security_event" in line]
    banned = [e for e in events if e["kind"] == "banned"]
    # the ban imposed once, then its refusal (which says how long it lasts)
    assert [("retry_after" in e) for e in banned] == [False, True]
    assert 3590 <= banned[1]["retry_after"] <= 3600
    assert "carol.gif" not in log and "203.0.113" not in log


def test_api_keys_good_bad_and_their_own_limit(proxied_server):
    erin = {"x-forwarded-for": "203.0.113.5"}
    keyed = {"authorization": f"Bearer {KEY}", **erin}
    for _ in range(4):
        assert post(proxied_server, headers=keyed).status_code == 200
    over = post(proxied_server, headers={"x-api-key": KEY, **erin})
    assert_refused(over, 429, "rate_limited")
    wrong = post(proxied_server, headers={"authorization": "Bearer not-the-key", **erin})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"
    assert "not-the-key" not in wrong.text
    for _ in range(4):  # Erin's anonymous quota: 5 minus the 401
        assert post(proxied_server, headers=erin).status_code == 200
    assert_refused(post(proxied_server, headers=erin), 429, "rate_limited")
    log = proxied_server.log
    assert KEY not in log and DIGEST not in log and "not-the-key" not in log


def test_missing_api_key_when_required_and_loopback_xff_is_not_believed(serve):
    # No trusted proxies: uvicorn itself must not rewrite the peer from X-Forwarded-For either
    # (its proxy_headers default trusts 127.0.0.1, which is where this client connects from).
    with serve(M2FP_API_KEYS=DIGEST, M2FP_API_KEYS_REQUIRED="true") as server:
        for i in range(5):
            spoofed = {"x-forwarded-for": f"198.51.100.{i}"}
            assert post(server, headers=spoofed).status_code == 401
        over = post(server, headers={"x-forwarded-for": "198.51.100.77"})
        assert_refused(over, 429, "rate_limited")  # the 401s spent 127.0.0.1's quota
        assert post(server, headers={"x-api-key": KEY}).status_code == 200


def test_burst_beyond_slots_and_queue_is_503_overloaded(serve):
    env = {
        "M2FP_RATE_LIMIT": "100/minute",
        "M2FP_MAX_CONCURRENCY": "1",
        "M2FP_MAX_QUEUE": "0",
        # a bigger network input keeps the one slot busy while the burst arrives
        "M2FP_MIN_SIZE": "512",
        "M2FP_MAX_SIZE": "512",
    }
    with serve(**env) as server:
        start = threading.Barrier(6)
        responses: list[httpx.Response] = []

        def one() -> None:
            start.wait()
            responses.append(post(server, png_bytes(512, 384)))

        threads = [threading.Thread(target=one) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) == {200, 503}, statuses
        for response in responses:
            if response.status_code == 503:
                assert assert_refused(response, 503, "overloaded") >= 1


def test_memory_watchdog_alerts_sheds_and_fails_readiness(serve):
    with WebhookReceiver() as receiver:
        # Any real machine uses more than 0.5% of its memory: the watchdog fires at once.
        env = {"M2FP_MEMORY_ALERT_PERCENT": "0.5", "M2FP_ALERT_WEBHOOK": receiver.url}
        with serve(**env) as server:
            deadline = time.monotonic() + 60  # the watchdog's first sample, on a loaded machine
            while time.monotonic() < deadline:
                if httpx.get(server.url + "/readyz", timeout=10).status_code == 503:
                    break
                time.sleep(0.1)
            ready = httpx.get(server.url + "/readyz", timeout=10)
            assert ready.status_code == 503
            assert ready.json() == {"status": "not_ready"}
            assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
            assert assert_refused(post(server), 503, "overloaded") >= 1
            assert "m2fp_memory_used_ratio" in httpx.get(server.url + "/metrics").text
        assert len(receiver.posts) == 1  # debounced: one alert however many samples
        assert set(receiver.posts[0]) == {"text"}
        assert "memory use" in receiver.posts[0]["text"]
        assert "secret-token" not in server.log


def test_redis_shares_limits_and_bans_fails_closed_and_recovers(serve, redis_server):
    env = {"M2FP_STORAGE_URI": redis_server.uri}
    with serve(**env) as first, serve(**env) as second:
        # one quota for both replicas
        for server in (first, second, first, second, first):
            assert post(server).status_code == 200
        assert_refused(post(second), 429, "rate_limited")
        assert_refused(post(first), 429, "rate_limited")
        # a ban earned on one replica is enforced by the other
        redis_server.client().flushdb()
        assert post(first, b"GIF89a....", "a.gif").status_code == 415
        assert post(second, b"GIF89a....", "a.gif").status_code == 415
        assert post(first, b"GIF89a....", "a.gif").status_code == 415
        assert 3590 <= assert_refused(post(second), 403, "banned") <= 3600
        # Redis goes away: parse fails closed, health stays up
        redis_server.stop()
        for server in (first, second):
            assert assert_refused(post(server), 503, "storage_unavailable") >= 1
            assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
        # Redis comes back (empty): service recovers without a restart
        redis_server.start()
        for server in (first, second):
            assert post(server).status_code == 200
