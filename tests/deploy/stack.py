"""The production stack with real servers on 127.0.0.1, for the tests that need one: redis-server,
two ``m2fp serve`` replicas sharing limits and bans through it, and nginx rendered from
deploy/nginx/m2fp.conf.template with a freshly generated self-signed certificate.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import golden_sizes
from tests.deploy.nginx_config import DEPLOY, TEMPLATE, render
from tests.deploy.processes import ServerProcess, free_port, http_ok

SBIN = "/usr/sbin:/sbin"
BINARIES = {
    name: shutil.which(name) or shutil.which(name, path=SBIN)
    for name in ("nginx", "redis-server", "openssl")
}
MISSING = [name for name, path in BINARIES.items() if not path]
SKIP_REASON = "needs Debian's nginx, redis-server and openssl (.ci/run installs them); missing: "

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


@contextmanager
def running_stack(tmp: Path, tiny_model_dir: Path) -> Iterator[Stack]:
    """redis-server, two replicas and nginx on 127.0.0.1 and free ports, in ``tmp``; all of
    them stopped when the block ends."""
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
