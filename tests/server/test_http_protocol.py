"""The hardened HTTP/1.1 protocol of ``m2fp serve``, over raw sockets against a real server:
request smuggling refused, header deadline, connection budget, JSON 400s, log flood control,
dual-stack ``::`` and the descriptor budget at start-up."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn

from m2fp.server.http_protocol import hardened_protocol
from m2fp.server.middleware.security_headers import SECURITY_HEADERS
from tests.conftest import golden_sizes
from tests.server.conftest import GENEROUS_LIMITS, running_process, running_server
from tests.utils.ports import free_port
from tests.utils.slow_clients import slowloris

FD_LIMIT = 400


def exchange(port: int, data: bytes, *, timeout: float = 5.0, host: str = "127.0.0.1") -> bytes:
    """Send ``data`` and read until the server closes or ``timeout`` passes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                return received + b"<closed>"
            received += chunk
        return received


@pytest.fixture(scope="module")
def strict_server(tiny_model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("protocol") / "server.log"
    env = {**GENEROUS_LIMITS, "M2FP_HEADER_TIMEOUT": "2", "M2FP_MAX_CONNECTIONS": "64"}
    # few descriptors, as under systemd's default of 1024 against a bigger attack
    wrapper = ["prlimit", f"--nofile={FD_LIMIT}:{FD_LIMIT}", "--"]
    with running_server(tiny_model_dir, log, env=env, wrapper=wrapper) as server:
        yield server


def test_content_length_with_transfer_encoding_is_400_and_closed(strict_server):
    smuggled = (
        b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"GET /api/v1/classes HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    answer = exchange(strict_server.port, smuggled)
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # the smuggled request is never answered
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(b"<closed>")
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1].removesuffix(b"<closed>"))
    assert body["error"] == "bad_request" and set(body) == {"error", "message", "request_id"}


def test_malformed_request_gets_the_json_error_format(strict_server):
    answer = exchange(strict_server.port, b"GET /healthz HTTP/1.1\r\nHo st: \x01\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body.removesuffix(b"<closed>"))["error"] == "bad_request"


def assert_security_headers(head: bytes) -> None:
    lines = head.lower().split(b"\r\n")
    for name, value in SECURITY_HEADERS.items():
        assert f"{name}: {value}".lower().encode() in lines, (name, head)


def test_a_protocol_level_400_carries_the_security_headers(strict_server):
    answer = exchange(strict_server.port, b"GET /healthz HTTP/1.1\r\nHo st: \x01\r\n\r\n")
    assert_security_headers(answer.partition(b"\r\n\r\n")[0])


def test_a_chunked_body_is_411_before_a_chunk_is_read(strict_server):
    chunked = (
        b"POST /api/v1/parse HTTP/1.1\r\nHost: a\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 1000 + b"0\r\n\r\n"
    )
    answer = exchange(strict_server.port, chunked)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 411 Length Required\r\n"), answer[:200]
    assert answer.endswith(b"<closed>") and answer.count(b"HTTP/1.1 ") == 1
    assert_security_headers(head)
    error = json.loads(body.removesuffix(b"<closed>"))
    assert error["error"] == "length_required" and set(error) == {"error", "message", "request_id"}


def test_healthz_stays_fast_while_two_clients_send_1_byte_chunks(strict_server):
    flood = subprocess.Popen(
        [sys.executable, "-m", "tests.utils.chunk_flood", str(strict_server.port), "60"],
        stdout=subprocess.PIPE,
        text=True,
    )
    latencies: list[float] = []
    try:
        with httpx.Client(timeout=5) as client:
            client.get(strict_server.url + "/healthz")  # the connection, before timing
            assert flood.stdout.readline().strip() == "flooding"
            for _ in range(100):
                started = time.perf_counter()
                assert client.get(strict_server.url + "/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                assert flood.poll() is None, "the flood ended before the probes"
    finally:
        flood.terminate()
        flood.communicate(timeout=30)
    p99 = sorted(latencies)[98]
    assert p99 < 0.1, f"/healthz p99 {p99 * 1000:.0f} ms during the attack"


def test_an_answer_nobody_reads_is_dropped_after_the_send_deadline():
    """A client that never reads a 64 MB answer: the server's send waits at most the stall
    deadline, then the connection is aborted and its buffered bytes freed."""
    answered = threading.Event()
    big = b"\0" * (64 << 20)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for start in range(0, len(big), 1 << 20):  # each send waits while the buffer is full
            chunk = big[start : start + (1 << 20)]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        answered.set()  # every send returned: delivered, or the connection is gone

    port = free_port()
    protocol = hardened_protocol(header_timeout=5, max_connections=64, send_stall_seconds=1)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, lifespan="off",
                            log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert answered.wait(timeout=20), "the send still waits for a client that never reads"
            sock.settimeout(10)
            received = 0
            try:
                while chunk := sock.recv(1 << 20):
                    received += len(chunk)
            except ConnectionResetError:
                pass
            # what the kernel had taken before the abort, then the end: never the whole answer
            assert received < len(big) // 2
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_headers_must_be_complete_within_the_header_timeout(strict_server):
    # M2FP_HEADER_TIMEOUT=2; without it the server would wait for the rest for ever, so a close
    # within a generous deadline (a loaded machine) is the header timeout's
    answer = exchange(strict_server.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n", timeout=60)
    assert answer == b"<closed>"


def test_unread_body_after_an_early_answer_is_not_drained_for_ever(strict_server):
    request = (
        b"POST /api/v1/parse HTTP/1.1\r\nHost: a\r\nContent-Type: image/png\r\n"
        b"Content-Length: 5000000\r\n\r\nGIF89a" + b"\0" * 100
    )
    with socket.create_connection(("127.0.0.1", strict_server.port), timeout=5) as sock:
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 415 ")
        # keeps trickling the body until the server closes: after DRAIN_SECONDS, where
        # draining all 5 MB at this pace would take ~1,000 s; 90 s is room for a loaded machine
        deadline = time.monotonic() + 90
        with pytest.raises(OSError):
            while time.monotonic() < deadline:
                sock.sendall(b"\0" * 1000)
                time.sleep(0.2)


def test_healthz_answers_while_slowloris_opens_more_than_the_descriptor_limit(strict_server):
    probes: list[int] = []

    async def attack_and_probe() -> None:
        attack = asyncio.create_task(
            slowloris("127.0.0.1", strict_server.port, connections=600, rate=300, hold=1.5)
        )
        async with httpx.AsyncClient(timeout=3) as client:
            while not attack.done():
                try:
                    probes.append((await client.get(strict_server.url + "/healthz")).status_code)
                except httpx.HTTPError:
                    probes.append(0)
                await asyncio.sleep(0.1)
        report = await attack
        assert report.dropped_by_server > 100  # evicted: the budget is 64

    asyncio.run(attack_and_probe())
    assert len(probes) >= 10 and probes.count(200) == len(probes), probes


def test_a_flood_of_malformed_requests_logs_a_few_lines(strict_server):
    before = strict_server.log.count("Invalid HTTP request")
    for _ in range(100):
        exchange(strict_server.port, b"BAD\x00REQUEST\r\n\r\n", timeout=2)
    assert strict_server.log.count("Invalid HTTP request") - before <= 5


def loopback_ipv6() -> bool:
    """``::1`` can be bound here (loopback IPv6 can be off while the socket option exists)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_host_any_ipv6_listens_on_both_families(tiny_model_dir, tmp_path):
    if not socket.has_dualstack_ipv6():
        pytest.skip("no dual-stack IPv6 on this machine")
    if not loopback_ipv6():
        pytest.skip("loopback IPv6 (::1) is off on this machine")
    min_size, max_size = golden_sizes()
    port = free_port()
    command = [
        sys.executable, "-m", "m2fp", "serve", "--model", str(tiny_model_dir),
        "--host", "::", "--port", str(port),
    ]  # fmt: skip
    env = {"M2FP_MIN_SIZE": str(min_size), "M2FP_MAX_SIZE": str(max_size)}
    with running_process(command, port, tmp_path / "server.log", env=env):
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"http://[::1]:{port}/healthz", timeout=5).status_code == 200


def test_the_default_budget_shrinks_to_the_descriptor_limit():
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    code = "from m2fp.server.serving import connection_budget; print(connection_budget(None))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=low_limit,
        timeout=120, check=True,
    )  # fmt: skip
    assert result.stdout.split() == ["768"]


def test_a_budget_the_descriptor_limit_cannot_hold_stops_start_up(tiny_model_dir):
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    env = {k: v for k, v in os.environ.items() if not k.startswith("M2FP_")}
    result = subprocess.run(
        [sys.executable, "-m", "m2fp", "serve", "--model", str(tiny_model_dir), "--port", "1"],
        capture_output=True,
        text=True,
        env={**env, "M2FP_MAX_CONNECTIONS": "1000"},
        preexec_fn=low_limit,
        timeout=180,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "open-file limit (512)" in line and "M2FP_MAX_CONNECTIONS" in line
