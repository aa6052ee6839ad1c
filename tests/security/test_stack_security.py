"""Attacks and scanners against the production stack (nginx + 2 replicas + Redis on loopback,
TLS), with tools nobody here wrote where Debian has them: sslscan for TLS, raw sockets for
malformed HTTP, a slowloris of thousands of connections, and ``m2fp scan`` itself.

One stack for the module (tests/deploy/stack.py); each test speaks from its own loopback
address, so quotas and nginx's per-address limits are its own.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.stack import MISSING, SERVER_NAME, SKIP_REASON, Stack, running_stack
from tests.utils.slow_clients import slowloris

pytestmark = pytest.mark.skipif(bool(MISSING), reason=SKIP_REASON + ", ".join(MISSING))
SSLSCAN = shutil.which("sslscan")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("security_stack"), tiny_model_dir) as built:
        yield built


def raw_exchange(stack: Stack, data: bytes, *, source: str, tls: bool = True) -> bytes:
    """Send ``data`` to nginx (TLS or plain port) and read the answer until it closes."""
    port = stack.https_port if tls else stack.http_port
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    with raw:
        sock = stack.tls_context().wrap_socket(raw, server_hostname=SERVER_NAME) if tls else raw
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ssl.SSLError, ConnectionResetError):
            pass
        return received


def json_error(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)


MALFORMED = {
    "bad request line": (b"GET /\x01 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
    "URI too long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
    "header too large": (
        b"GET / HTTP/1.1\r\nHost: localhost\r\nCookie: " + b"c" * 9000 + b"\r\n\r\n",
        400,
    ),
    "TRACE": (b"TRACE / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405),
    "unknown transfer coding": (
        b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    ),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_nginx_errors_are_the_json_contract(stack: Stack, kind: str, tls: bool) -> None:
    request, expected = MALFORMED[kind]
    status, body = json_error(raw_exchange(stack, request, source="127.0.0.21", tls=tls))
    assert status == expected
    assert set(body) == {"error", "message", "request_id"}
    assert body["error"] in ("bad_request", "method_not_allowed")


def test_plain_http_on_the_tls_port_is_a_json_error(stack: Stack) -> None:
    with socket.create_connection(("127.0.0.1", stack.https_port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        sock.settimeout(10)
        answer = sock.recv(65536)
    status, body = json_error(answer)
    assert (status, body["error"]) == (400, "bad_request")


def test_nginx_logs_no_raw_address_and_no_query(stack: Stack) -> None:
    source = "127.0.0.22"
    secret = "secret-query-value"
    raw_exchange(stack, f"GET /x?{secret}=1 HTTP/1.1\r\nHost: \x01\r\n\r\n".encode(), source=source)
    raw_exchange(stack, b"GET /\x01?" + secret.encode() + b" HTTP/1.1\r\n\r\n", source=source)
    with stack.client(source) as client:
        client.get(f"/metrics?{secret}=2")
        for _ in range(40):  # past limit_req's burst: 429s answered by nginx
            client.get(f"/healthz?{secret}=3")
    deadline = time.monotonic() + 60  # nginx writes its access log lines when it gets to it
    while True:
        log = stack.nginx.log.read_text(errors="replace")
        lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"time"')]
        mine = [line for line in lines if line["client"] == "127.0.0.0/24"]
        if {400, 404, 429} <= {line["status"] for line in mine} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {400, 404, 429} <= {line["status"] for line in mine}
    assert source not in log
    assert secret not in log


def test_healthz_answers_through_a_slowloris_of_thousands(stack: Stack) -> None:
    """4,000 connections at 1,000/s from one address that never finish a TLS handshake or
    their headers: more than worker_connections 2 x 1024 held before this issue."""
    probes: list[int] = []

    async def attack_and_probe() -> None:
        tls = stack.tls_context()
        idle_tls = asyncio.create_task(
            slowloris(
                "127.0.0.1", stack.https_port, connections=2500, rate=600, hold=2,
                tls=tls, tls_handshake=False, source="127.0.0.30",
            )
        )  # fmt: skip
        headers = asyncio.create_task(
            slowloris(
                "127.0.0.1",
                stack.http_port,
                connections=1500,
                rate=400,
                hold=2,
                source="127.0.0.30",
            )
        )
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.31", verify=tls, retries=0)
        async with httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{stack.https_port}", transport=transport, timeout=5
        ) as client:
            while not (idle_tls.done() and headers.done()):
                try:
                    probes.append((await client.get("/healthz")).status_code)
                except httpx.HTTPError:
                    probes.append(0)
                await asyncio.sleep(0.25)
        reports = [await idle_tls, await headers]
        assert sum(r.peak_open for r in reports) > 2100, reports

    asyncio.run(attack_and_probe())
    assert len(probes) >= 10 and all(status == 200 for status in probes), probes
    assert "worker_connections are not enough" not in stack.nginx.log.read_text(errors="replace")


@pytest.mark.skipif(SSLSCAN is None, reason="needs Debian's sslscan (.ci/run installs it)")
def test_sslscan_finds_tls_1_2_and_1_3_with_aead_only(stack: Stack) -> None:
    result = subprocess.run(
        [SSLSCAN, "--no-colour", "--xml=-", f"--sni-name={SERVER_NAME}",
         f"127.0.0.1:{stack.https_port}"],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    root = ET.fromstring(result.stdout[result.stdout.index("<?xml") :])
    enabled = {
        f"{p.get('type').upper()}v{p.get('version')}"
        for p in root.iter("protocol")
        if p.get("enabled") == "1"
    }
    assert enabled == {"TLSv1.2", "TLSv1.3"}, enabled
    ciphers = [(c.get("sslversion"), c.get("cipher")) for c in root.iter("cipher")]
    assert ciphers
    for version, cipher in ciphers:
        assert version in ("TLSv1.2", "TLSv1.3"), (version, cipher)
        if version == "TLSv1.2":
            assert cipher.startswith("ECDHE-") and re.search("GCM|CHACHA20", cipher), cipher
    with stack.client("127.0.0.23") as client:
        hsts = client.get("/healthz").headers["strict-transport-security"]
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 365 * 86400


def test_m2fp_scan_of_the_stack_passes_every_check(stack: Stack) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "m2fp", "scan", f"https://localhost:{stack.https_port}",
            "--http-url", f"http://127.0.0.1:{stack.http_port}",
            "--ca-file", str(stack.cert), "--json",
        ],
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)
    failed = [r for r in report["results"] if not r["passed"]]
    assert failed == [] and result.returncode == 0, failed
    names = {r["name"] for r in report["results"]}
    assert {"tls_ciphers", "hsts", "https_redirect", "upload_bomb", "upload_oversize"} <= names
