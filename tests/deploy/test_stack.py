"""The production stack with real servers on 127.0.0.1: redis-server, two ``m2fp serve``
replicas sharing limits and bans through it, and nginx rendered from
deploy/nginx/m2fp.conf.template with a freshly generated self-signed certificate.

Each test speaks from its own loopback source address (127.0.0.N), so each is a distinct client
with its own quota. Tests that disturb the stack (Redis outage, a killed replica) get a stack
of their own (``own_stack``), so the tests run in any order.
"""

from __future__ import annotations

import base64
import io
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from m2fp.server.middleware.security_headers import HSTS, SECURITY_HEADERS
from tests.conftest import GOLDEN
from tests.deploy.processes import http_ok
from tests.deploy.stack import (
    BINARIES,
    MISSING,
    PARSE,
    RATE_LIMIT,
    REQUEST_TIMEOUT,
    SERVER_NAME,
    SKIP_REASON,
    Stack,
    running_stack,
)

pytestmark = pytest.mark.skipif(bool(MISSING), reason=SKIP_REASON + ", ".join(MISSING))


def _golden_png() -> bytes:
    return (GOLDEN / "image.png").read_bytes()


def _parse(client: httpx.Client, image: bytes, **kwargs: object) -> httpx.Response:
    return client.post(PARSE, files={"image": ("photo.png", image, "image/png")}, **kwargs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack"), tiny_model_dir) as built:
        yield built


@pytest.fixture
def own_stack(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Stack]:
    """A stack of its own for a test that stops a part of it: the shared one stays whole, so
    no test depends on running before or after it."""
    with running_stack(tmp_path, tiny_model_dir) as built:
        yield built


def test_http_redirects_to_https(stack: Stack) -> None:
    response = httpx.get(
        f"http://127.0.0.1:{stack.http_port}/api/v1/classes?lang=zh", timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 301
    assert response.headers["location"] == f"https://{SERVER_NAME}/api/v1/classes?lang=zh"


def test_https_parse_end_to_end(stack: Stack) -> None:
    with stack.client("127.0.0.2") as client:
        response = _parse(client, _golden_png())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (150, 100)
    assert isinstance(body["persons"], list)
    label_map = Image.open(io.BytesIO(base64.b64decode(body["label_map_png"])))
    assert label_map.size == (150, 100)
    # the app's own headers made it through nginx
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in response.headers


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_versions_and_forward_secret_ciphers(stack: Stack, version: ssl.TLSVersion) -> None:
    import socket

    context = stack.tls_context()
    context.minimum_version = context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", stack.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        assert tls.version() == version.name.replace("v1_", "v1.")
        cipher = tls.cipher()[0]
    if version is ssl.TLSVersion.TLSv1_2:
        assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher)


def test_no_server_or_app_version_in_headers(stack: Stack) -> None:
    from m2fp import __version__

    nginx_version = (
        subprocess.run([BINARIES["nginx"], "-v"], capture_output=True, text=True, check=True)
        .stderr.strip()
        .rpartition("/")[2]
    )
    with stack.client("127.0.0.3") as client:
        responses = [
            client.get("/healthz"),
            client.get("/api/v1/classes"),
            client.get("/metrics"),  # refused by nginx itself
            client.get("/no/such/page"),  # refused by the app
        ]
    responses.append(httpx.get(f"http://127.0.0.1:{stack.http_port}/", timeout=REQUEST_TIMEOUT))
    assert [r.status_code for r in responses] == [200, 200, 404, 404, 301]
    for response in responses:
        text = "\n".join(f"{k}: {v}" for k, v in response.headers.items()).lower()
        for leak in (nginx_version, __version__, "uvicorn", "python", "starlette", "fastapi"):
            assert leak.lower() not in text, (leak, response.url)
        server = response.headers.get("server", "")
        assert not any(c.isdigit() for c in server) and "/" not in server
    for response in responses[:4]:
        assert len(response.headers.get_list("strict-transport-security")) == 1
        if response.status_code >= 400:
            assert response.json()["error"] == "not_found"


def _raw_tls(stack: Stack, data: bytes) -> bytes:
    """Send ``data`` over TLS to nginx and read its answer's head (nginx closes after it)."""
    raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=30)
    with stack.tls_context().wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def _head_lines(answer: bytes) -> list[str]:
    return answer.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")


def _assert_headers_once(status: int, head: list[str], where: str, *, tls: bool = True) -> None:
    """The status, and each security header exactly once (HSTS only over TLS, RFC 6797 7.2)."""
    assert head[0].split()[1] == str(status), (where, head[0])
    fields = [line.partition(":") for line in head[1:]]
    expected = {**SECURITY_HEADERS, "Strict-Transport-Security": HSTS if tls else None}
    for name, value in expected.items():
        found = [v.strip() for n, _, v in fields if n.strip().lower() == name.lower()]
        assert found == ([value] if value else []), (where, name, found)


def test_every_answer_carries_the_security_headers_once(stack: Stack) -> None:
    """nginx's own 400/404/405/413 and 301, and the replicas' answers through nginx: the same
    security headers, one copy each (pen test 2, item 9)."""
    big = f"POST {PARSE} HTTP/1.1\r\nHost: a\r\nContent-Type: image/png\r\n"
    nginx_own = {
        "400 bad header": (400, b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n"),
        "404 internal uri": (404, b"GET /_m2fp_error/400 HTTP/1.1\r\nHost: a\r\n\r\n"),
        "405 TRACE": (405, b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n"),
        "413 too large": (413, (big + "Content-Length: 20000000\r\n\r\n").encode()),
    }
    for where, (status, request) in nginx_own.items():
        answer = _raw_tls(stack, request)
        _assert_headers_once(status, _head_lines(answer), where)
        assert b"application/json" in answer.lower(), where
    replica = {
        "200 healthz": (200, b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        "404 app": (404, b"GET /no/such HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
    }
    for where, (status, request) in replica.items():
        _assert_headers_once(status, _head_lines(_raw_tls(stack, request)), where)
    plain = httpx.get(f"http://127.0.0.1:{stack.http_port}/", timeout=REQUEST_TIMEOUT)
    head = [f"HTTP/1.1 {plain.status_code}"] + [f"{k}: {v}" for k, v in plain.headers.items()]
    _assert_headers_once(301, head, "301 on port 80", tls=False)


def test_same_origin_post_without_sec_fetch_site_passes_on_another_port(stack: Stack) -> None:
    """nginx listens on a free port, not 443: a same-origin POST naming that port in its Origin
    (no Sec-Fetch-Site, as older browsers send) must pass the origin check (item 12)."""
    origin = f"https://127.0.0.1:{stack.https_port}"
    with stack.client("127.0.0.31") as client:
        same = _parse(client, _golden_png(), headers={"Origin": origin})
        other = _parse(client, _golden_png(), headers={"Origin": "https://evil.example"})
    assert same.status_code == 200, same.text
    assert other.status_code == 403 and other.json()["error"] == "forbidden_origin"


def test_nginx_limits_a_flood_before_the_replicas(stack: Stack) -> None:
    # limit_req 5 r/s with a burst of 20: back-to-back requests exceed it unless each takes
    # longer than 200 ms; sent until one is refused (at most 600, a loaded machine's room)
    responses = []
    with stack.client("127.0.0.10") as client:
        while len(responses) < 600 and 429 not in {r.status_code for r in responses[-1:]}:
            responses.append(client.get("/healthz"))
    refused = [r for r in responses if r.status_code == 429]
    assert refused and all(r.status_code in (200, 429) for r in responses)
    assert refused[0].json()["error"] == "rate_limited"
    assert refused[0].headers["retry-after"] == "1"
    assert "x-request-id" not in refused[0].headers, "refused by nginx, not by a replica"


def test_rate_limit_is_shared_by_both_replicas(stack: Stack) -> None:
    before = [stack.parses_served(i) for i in range(2)]
    with stack.client("127.0.0.4") as client:
        responses = [_parse(client, _golden_png()) for _ in range(RATE_LIMIT + 1)]
    assert [r.status_code for r in responses] == [200] * RATE_LIMIT + [429]
    assert responses[-1].json()["error"] == "rate_limited"
    assert "x-request-id" in responses[-1].headers, "refused by a replica, not by nginx"
    assert int(responses[-1].headers["retry-after"]) >= 1
    # a replica writes its audit line after the answer has left: poll for the last ones
    deadline = time.monotonic() + 15
    while True:
        served = [stack.parses_served(i) - before[i] for i in range(2)]
        if sum(served) >= RATE_LIMIT or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sum(served) == RATE_LIMIT and min(served) >= 1, served


def test_forged_forwarded_for_gives_no_extra_quota(stack: Stack) -> None:
    with stack.client("127.0.0.5") as client:
        statuses = [
            _parse(
                client,
                _golden_png(),
                headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"198.51.100.{i}"},
            ).status_code
            for i in range(RATE_LIMIT + 1)
        ]
    assert statuses == [200] * RATE_LIMIT + [429]


def test_ban_through_one_replica_is_enforced_by_the_other(stack: Stack) -> None:
    source = "127.0.0.6"
    with stack.direct(0, source) as replica_a:
        rejected = [_parse(replica_a, b"this is not an image").status_code for _ in range(3)]
    assert rejected == [415, 415, 415]
    with stack.direct(1, source) as replica_b:
        refused = _parse(replica_b, _golden_png())
    assert refused.status_code == 403 and refused.json()["error"] == "banned"
    assert int(refused.headers["retry-after"]) > 60
    with stack.client(source) as client:
        assert _parse(client, _golden_png()).status_code == 403


def test_large_upload_and_response_never_touch_nginx_disk(stack: Stack) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (1750, 1750, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG", compress_level=1)
    big = buffer.getvalue()
    assert 8 * 2**20 < len(big) < 10 * 2**20 - 4096
    with stack.client("127.0.0.7") as client:
        parsed = _parse(client, big)
        too_big = client.post(
            PARSE, content=b"\0" * (11 * 2**20), headers={"Content-Type": "image/png"}
        )
    # nginx names its temp path in the log when it buffers to (or fails to create) a file
    log = stack.nginx.log.read_text()
    for trace in ("temporary file", "nginx-body", "nginx-proxy"):
        assert trace not in log, log
    assert parsed.status_code == 200, parsed.text[:200]
    assert len(parsed.content) > 2 * 2**20  # bigger than every nginx buffer
    assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"
    for temp in ("nginx-body", "nginx-proxy"):
        assert not any((stack.tmp / temp).rglob("*")), temp


def test_redis_outage_fails_closed_and_recovers(own_stack: Stack) -> None:
    stack = own_stack  # it stops a part: a stack of its own
    with stack.client("127.0.0.8") as client:
        stack.redis.stop()
        try:
            refused = _parse(client, _golden_png())
            assert refused.status_code == 503, refused.text[:300]
            assert refused.json()["error"] == "storage_unavailable"
            assert int(refused.headers["retry-after"]) >= 1
            assert client.get("/healthz").status_code == 200
            # readiness does not depend on Redis: the replicas stay in the load balancer
            assert all(http_ok(f"http://127.0.0.1:{port}/readyz") for port in stack.replica_ports)
        finally:
            stack.start_redis()
        assert _parse(client, _golden_png()).status_code == 200
    for index, port in enumerate(stack.replica_ports):
        assert stack.replicas[index].running, stack.replicas[index].log_tail()
        assert http_ok(f"http://127.0.0.1:{port}/readyz")


def test_killed_replica_is_skipped_by_nginx(own_stack: Stack) -> None:
    stack = own_stack  # it stops a part: a stack of its own
    served_by_a = stack.parses_served(0)
    stack.replicas[1].stop(signal.SIGKILL)
    try:
        with stack.client("127.0.0.9") as client:
            statuses = [_parse(client, _golden_png()).status_code for _ in range(RATE_LIMIT - 1)]
            health = [client.get("/healthz").status_code for _ in range(4)]
        assert statuses == [200] * (RATE_LIMIT - 1)
        assert health == [200] * 4
        assert stack.parses_served(0) - served_by_a == RATE_LIMIT - 1
    finally:
        stack.start_replica(1)
    assert stack.nginx.running
