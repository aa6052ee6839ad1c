"""The production stack with real servers on 127.0.0.1: redis-server, two ``m2fp serve``
replicas sharing limits and bans through it, and nginx rendered from
deploy/nginx/m2fp.conf.template with a freshly generated self-signed certificate.

Each test speaks from its own loopback source address (127.0.0.N), so each is a distinct client
with its own quota. Tests that disturb the stack (Redis outage, a killed replica) restore it
before they return and run last.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import GOLDEN, golden_sizes
from tests.deploy.nginx_config import DEPLOY, TEMPLATE, render
from tests.deploy.processes import ServerProcess, free_port, http_ok

SBIN = "/usr/sbin:/sbin"
BINARIES = {
    name: shutil.which(name) or shutil.which(name, path=SBIN)
    for name in ("nginx", "redis-server", "openssl")
}
pytestmark = pytest.mark.skipif(
    not all(BINARIES.values()),
    reason="needs Debian's nginx, redis-server and openssl (.ci/run installs them); missing: "
    + ", ".join(name for name, path in BINARIES.items() if not path),
)

SERVER_NAME = "localhost"
RATE_LIMIT = 5  # per minute, M2FP_RATE_LIMIT below
REQUEST_TIMEOUT = httpx.Timeout(60.0)
START_TIMEOUT = 120.0
PARSE = "/api/v1/parse"


@dataclass
class Stack:
    tmp: Path
    cert: Path
    http_port: int
    https_port: int
    redis: ServerProcess
    replicas: list[ServerProcess]
    replica_ports: list[int]
    nginx: ServerProcess

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def client(self, source: str) -> httpx.Client:
        """A client of nginx's https port, connecting from loopback address ``source``."""
        transport = httpx.HTTPTransport(local_address=source, verify=self.tls_context())
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.https_port}",
            transport=transport,
            timeout=REQUEST_TIMEOUT,
        )

    def direct(self, replica: int, source: str) -> httpx.Client:
        """A client of one replica's own port, bypassing nginx."""
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.replica_ports[replica]}",
            transport=httpx.HTTPTransport(local_address=source),
            timeout=REQUEST_TIMEOUT,
        )

    def parses_served(self, replica: int) -> int:
        """Successful parse requests in one replica's audit log."""
        count = 0
        for line in self.replicas[replica].log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "request" and entry.get("route") == PARSE:
                count += entry.get("status") == 200
        return count

    def start_replica(self, replica: int) -> None:
        server, port = self.replicas[replica], self.replica_ports[replica]
        server.start()
        server.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), timeout=START_TIMEOUT)

    def start_redis(self) -> None:
        self.redis.start()
        self.redis.wait_until(self._redis_answers, timeout=30)

    def _redis_answers(self) -> bool:
        import redis

        password = self.redis.env["REDIS_PASSWORD"] if self.redis.env else ""
        port = int(self.redis.argv[self.redis.argv.index("--port") + 1])
        return bool(redis.Redis(host="127.0.0.1", port=port, password=password).ping())


def _golden_png() -> bytes:
    return (GOLDEN / "image.png").read_bytes()


def _parse(client: httpx.Client, image: bytes, **kwargs: object) -> httpx.Response:
    return client.post(PARSE, files={"image": ("photo.png", image, "image/png")}, **kwargs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    subprocess.run(
        ["bash", str(DEPLOY / "gen-dev-cert.sh"), str(tmp / "tls"), SERVER_NAME],
        check=True,
        capture_output=True,
        timeout=60,
    )
    redis_port, http_port, https_port = free_port(), free_port(), free_port()
    replica_ports = [free_port(), free_port()]
    password = secrets.token_hex(16)
    redis = ServerProcess(
        name="redis-server",
        argv=[
            BINARIES["redis-server"],
            "--bind",
            "127.0.0.1",
            "--port",
            str(redis_port),
            "--requirepass",
            password,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
            "--daemonize",
            "no",
        ],
        log=tmp / "redis.log",
        env={**os.environ, "REDIS_PASSWORD": password},
    )
    min_size, max_size = golden_sizes()
    app_env = {k: v for k, v in os.environ.items() if not k.startswith("M2FP_")}
    app_env.update(
        M2FP_MODEL=str(tiny_model_dir),
        M2FP_MIN_SIZE=str(min_size),
        M2FP_MAX_SIZE=str(max_size),
        M2FP_STORAGE_URI=f"redis://:{password}@127.0.0.1:{redis_port}/0",
        M2FP_TRUSTED_PROXIES="127.0.0.1",
        M2FP_RATE_LIMIT=f"{RATE_LIMIT}/minute",
        M2FP_BAN_AFTER="3",
        M2FP_BAN_SECONDS="3600",
    )
    replicas = [
        ServerProcess(
            name=f"replica {name}",
            argv=[
                sys.executable,
                "-m",
                "m2fp",
                "serve",
                "--model",
                str(tiny_model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            log=tmp / f"replica-{name}.log",
            env=app_env,
        )
        for name, port in zip("ab", replica_ports, strict=True)
    ]
    conf = tmp / "nginx.conf"
    conf.write_text(
        render(
            TEMPLATE.read_text(),
            {
                "NGINX_RUN_DIR": str(tmp),
                "NGINX_HTTP_PORT": f"127.0.0.1:{http_port}",
                "NGINX_HTTPS_PORT": f"127.0.0.1:{https_port}",
                "NGINX_SERVER_NAME": SERVER_NAME,
                "NGINX_TLS_CERT": str(tmp / "tls" / "tls.crt"),
                "NGINX_TLS_KEY": str(tmp / "tls" / "tls.key"),
                "NGINX_UPSTREAM_1": f"127.0.0.1:{replica_ports[0]}",
                "NGINX_UPSTREAM_2": f"127.0.0.1:{replica_ports[1]}",
            },
        )
    )
    nginx = ServerProcess(
        name="nginx",
        argv=[BINARIES["nginx"], "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"],
        log=tmp / "nginx.log",
    )
    built = Stack(
        tmp=tmp,
        cert=tmp / "tls" / "tls.crt",
        http_port=http_port,
        https_port=https_port,
        redis=redis,
        replicas=replicas,
        replica_ports=replica_ports,
        nginx=nginx,
    )
    with ExitStack() as cleanup:
        cleanup.callback(redis.stop)
        built.start_redis()
        for replica in replicas:
            cleanup.callback(replica.stop)
            replica.start()  # both load the model at once
        for index in range(len(replicas)):
            port = replica_ports[index]
            replicas[index].wait_until(
                lambda port=port: http_ok(f"http://127.0.0.1:{port}/readyz"), timeout=START_TIMEOUT
            )
        cleanup.callback(nginx.stop)
        nginx.start()
        nginx.wait_until(
            lambda: http_ok(f"https://127.0.0.1:{https_port}/healthz", verify=built.tls_context()),
            timeout=30,
        )
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


def test_nginx_limits_a_flood_before_the_replicas(stack: Stack) -> None:
    # limit_req 5 r/s with a burst of 20: 60 back-to-back requests exceed it unless each took
    # longer than about 130 ms on loopback
    with stack.client("127.0.0.10") as client:
        responses = [client.get("/healthz") for _ in range(60)]
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
    served = [stack.parses_served(i) - before[i] for i in range(2)]
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


def test_redis_outage_fails_closed_and_recovers(stack: Stack) -> None:
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


def test_killed_replica_is_skipped_by_nginx(stack: Stack) -> None:
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
