"""deploy/compose.yaml run for real with podman-compose: nginx (TLS) in front of two m2fp
replicas that share rate limits through Redis, every service hardened as the file says, proven
from 127.0.0.1 through nginx's published ports.

podman-compose comes from PyPI (the test extra): Debian's 1.0.3 ignores the backend network's
ipam subnet and nginx's ``ipv4_address``, so the replicas would trust an address nginx does not
have. podman 4.3 cannot wait for ``service_healthy`` (podman-compose says so and starts nginx
at once); the test waits for the replicas itself.

The file runs with these changes only, made in a copy in a temporary directory:
- images: this run's build of deploy/Dockerfile and the nginx/redis stand-in (base_image.py);
- nginx's published ports: on 127.0.0.1, ports podman picks, instead of 80 and 443;
- relative paths (the model, the secret files, the nginx template) made absolute;
- the backend subnet moved to a free 172.30.N.0/24, and nginx's address and
  M2FP_TRUSTED_PROXIES with it (another stack on this machine may hold 172.30.0.0/24);
- M2FP_MIN_SIZE and M2FP_MAX_SIZE for the golden tiny model.
podman-compose runs with ``--in-pod false`` (compose has no pods), and each container also gets
``ULIMITS`` and ``--read-only-tmpfs=false`` (Docker's ``read_only`` mounts no tmpfs of its own).

Every request reaches nginx from 127.0.0.1 and is masqueraded to the edge network's gateway, so
all tests are one client: each starts with an empty Redis (counters and bans), as after a Redis
restart.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import ipaddress
import json
import os
import random
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from PIL import Image

from tests.conftest import GOLDEN, golden_sizes
from tests.deploy.conftest import IMAGE_UID, REPO, BuiltImage, EncryptedModel
from tests.deploy.podman import (
    ULIMITS,
    Podman,
    PodmanError,
    describe,
    die_with_parent,
    unavailable,
)

COMPOSE = REPO / "deploy" / "compose.yaml"
PODMAN_COMPOSE = Path(sys.executable).with_name("podman-compose")
UNAVAILABLE = unavailable() or (
    None
    if PODMAN_COMPOSE.exists()
    else "needs podman-compose>=1.6 from PyPI beside this Python (the test extra)"
)
pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or ""),
]

RATE_LIMIT = 5  # M2FP_RATE_LIMIT of compose.yaml, per minute
APPS = ("app-1", "app-2")
COMPOSE_TIMEOUT = 300.0
READY_TIMEOUT = 120.0
REQUEST_TIMEOUT = httpx.Timeout(60.0)
LOG_TIMEOUT = 10.0
PARSE = "/api/v1/parse"


@dataclass
class Stack:
    podman: Podman
    containers: dict[str, str]  # service -> container name
    https_port: int
    http_port: int
    cert: Path
    log_salt: bytes

    def client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.cert))
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.https_port}", verify=context, timeout=REQUEST_TIMEOUT
        )

    def inspect(self, service: str) -> dict:
        output = self.podman("inspect", self.containers[service], timeout=60).stdout
        return json.loads(output)[0]

    def parses_served(self, service: str) -> list[dict]:
        """The audit lines of successful parse requests in one replica's log."""
        logs = self.podman("logs", self.containers[service], timeout=60)
        log = logs.stdout + logs.stderr  # the container's own stdout and stderr
        lines = []
        for line in log.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if (entry.get("event"), entry.get("route"), entry.get("status")) == (
                "request", PARSE, 200,
            ):  # fmt: skip
                lines.append(entry)
        return lines

    def new_parses(self, before: dict[str, int], *, expected: int) -> dict[str, list[dict]]:
        """The parse lines each replica logged since ``before`` (counts per service), once
        ``expected`` have appeared in all (log lines follow the response by a moment)."""
        deadline = time.monotonic() + LOG_TIMEOUT
        while True:
            new = {s: self.parses_served(s)[before[s] :] for s in APPS}
            if sum(map(len, new.values())) >= expected or time.monotonic() > deadline:
                return new
            time.sleep(0.2)

    def parse_counts(self) -> dict[str, int]:
        return {service: len(self.parses_served(service)) for service in APPS}

    def forget_clients(self) -> None:
        """Empty Redis: no counters, no bans."""
        flushed = self.podman(
            "exec", self.containers["redis"], "sh", "-c",
            'redis-cli -a "$(cat /run/secrets/redis_password)" --no-auth-warning FLUSHALL',
            timeout=60,
        )  # fmt: skip
        assert flushed.stdout.strip() == "OK", flushed.stdout

    def wait_ready(self) -> None:
        """Both replicas' health checks pass and nginx answers /readyz over HTTPS."""
        deadline = time.monotonic() + READY_TIMEOUT
        for service in APPS:
            while self.podman(
                "healthcheck", "run", self.containers[service], timeout=60, check=False
            ).returncode:
                if time.monotonic() > deadline or not self.inspect(service)["State"]["Running"]:
                    raise PodmanError(f"{service} not healthy:\n{self.logs(service)}")
                time.sleep(0.5)
        with self.client() as client:
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise PodmanError(f"nginx not answering:\n{self.logs('nginx')}")
                time.sleep(0.5)

    def logs(self, service: str) -> str:
        result = self.podman("logs", self.containers[service], timeout=60, check=False)
        return (result.stdout + result.stderr)[-4000:]


def _pseudonym(salt: bytes, address: str) -> str:
    """How the audit log writes a client (README: HMAC-SHA256 with M2FP_LOG_SALT, 16 hex)."""
    return hmac.new(salt, address.encode(), hashlib.sha256).hexdigest()[:16]


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.open(GOLDEN / "image.png").convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _parse(client: httpx.Client, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post(
        PARSE, files={"image": ("photo.jpg", _jpeg(), "image/jpeg")}, headers=headers
    )


def _free_subnet(podman: Podman) -> ipaddress.IPv4Network:
    taken = [
        ipaddress.ip_network(subnet["subnet"])
        for network in json.loads(podman("network", "ls", "--format", "json", timeout=60).stdout)
        for subnet in network.get("subnets") or []
    ]
    candidates = [ipaddress.ip_network(f"172.30.{n}.0/24") for n in range(1, 255)]
    free = [c for c in candidates if not any(c.overlaps(t) for t in taken)]
    return random.choice(free)


def _secrets(directory: Path, encrypted: EncryptedModel) -> None:
    """deploy/secrets as the README makes it, owned by the services' UID with mode 0400."""
    directory.mkdir()
    subprocess.run(
        ["bash", str(REPO / "deploy" / "gen-dev-cert.sh"), str(directory), "localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    for name in ("redis_password", "m2fp_log_salt"):
        (directory / name).write_text(os.urandom(32).hex() + "\n")
    for path in directory.iterdir():
        os.chown(path, IMAGE_UID, IMAGE_UID)
        path.chmod(0o400)
    (directory / "m2fp_model_key").symlink_to(encrypted.key)  # this session's, already 0400


def _compose_copy(
    original: dict,
    *,
    tmp: Path,
    models: Path,
    app_image: str,
    services_image: str,
    subnet: ipaddress.IPv4Network,
) -> dict:
    """compose.yaml with the changes the module docstring lists."""
    compose = copy.deepcopy(original)
    services = compose["services"]
    old_nginx = ipaddress.ip_address(services["nginx"]["networks"]["backend"]["ipv4_address"])
    old_subnet = ipaddress.ip_network(compose["networks"]["backend"]["ipam"]["config"][0]["subnet"])
    nginx_address = str(subnet.network_address + (int(old_nginx) - int(old_subnet.network_address)))
    compose["networks"]["backend"]["ipam"]["config"][0]["subnet"] = str(subnet)
    services["nginx"]["networks"]["backend"]["ipv4_address"] = nginx_address
    min_size, max_size = golden_sizes()
    assert {services[name]["environment"]["M2FP_TRUSTED_PROXIES"] for name in APPS} == {
        str(old_nginx)
    }
    for name in APPS:
        app = services[name]
        app["image"] = app_image
        app["build"]["context"] = str(REPO)
        app["volumes"] = [f"{models}:/models:ro"]
        app["environment"].update(
            M2FP_TRUSTED_PROXIES=nginx_address,
            M2FP_MIN_SIZE=str(min_size),
            M2FP_MAX_SIZE=str(max_size),
        )
    for name in ("nginx", "redis"):
        services[name]["image"] = services_image
    services["nginx"]["ports"] = [
        f"127.0.0.1::{port.split(':')[1]}" for port in services["nginx"]["ports"]
    ]
    services["nginx"]["volumes"] = [
        str(COMPOSE.parent / volume.removeprefix("./")) if volume.startswith("./") else volume
        for volume in services["nginx"]["volumes"]
    ]
    for secret in compose["secrets"].values():
        secret["file"] = str(tmp / "secrets" / Path(secret["file"]).name)
    return compose


@pytest.fixture(scope="module")
def stack(
    podman: Podman,
    m2fp_image: BuiltImage,
    services_image: BuiltImage,
    encrypted_tiny_model: EncryptedModel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("compose")
    _secrets(tmp / "secrets", encrypted_tiny_model)
    compose = _compose_copy(
        yaml.safe_load(COMPOSE.read_text()),
        tmp=tmp,
        models=encrypted_tiny_model.model.parent,
        app_image=m2fp_image.name,
        services_image=services_image.name,
        subnet=_free_subnet(podman),
    )
    compose_file = tmp / "compose.yaml"
    compose_file.write_text(yaml.safe_dump(compose, sort_keys=False))
    run_args = " ".join([*ULIMITS, "--read-only-tmpfs=false"])
    base = [
        str(PODMAN_COMPOSE), "--in-pod", "false", f"--podman-run-args={run_args}",
        "-p", podman.run_id, "-f", str(compose_file),
    ]  # fmt: skip

    def compose_command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args],
            env=podman.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMPOSE_TIMEOUT,
            preexec_fn=die_with_parent,
        )

    try:
        up = compose_command("up", "-d", "--no-build")
        if up.returncode != 0:
            raise PodmanError(describe(["podman-compose", "up"], up))
        listing = podman(
            "ps", "-a", "--format", "json",
            "--filter", f"label=io.podman.compose.project={podman.run_id}",
            timeout=60,
        ).stdout  # fmt: skip
        containers = {
            c["Labels"]["com.docker.compose.service"]: c["Names"][0] for c in json.loads(listing)
        }
        ports = {
            int(line.split("/")[0]): int(line.rsplit(":", 1)[1])
            for line in podman("port", containers["nginx"], timeout=60).stdout.splitlines()
        }
        built = Stack(
            podman=podman,
            containers=containers,
            https_port=ports[8443],
            http_port=ports[8080],
            cert=tmp / "secrets" / "tls.crt",
            log_salt=(tmp / "secrets" / "m2fp_log_salt").read_text().strip().encode(),
        )
        built.wait_ready()
        yield built
    finally:
        compose_command("down", "-t", "5")


@pytest.fixture
def fresh_stack(stack: Stack) -> Stack:
    stack.forget_clients()
    return stack


def test_services_run_hardened_as_the_file_says(stack: Stack) -> None:
    assert set(stack.containers) == {"nginx", "redis", *APPS}
    for service in stack.containers:
        info = stack.inspect(service)
        assert info["HostConfig"]["ReadonlyRootfs"] is True, service
        assert info["Config"]["User"] == f"{IMAGE_UID}:{IMAGE_UID}", service
        assert info["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", service
        proc = Path(f"/proc/{info['State']['Pid']}")
        status = dict(line.split(":\t", 1) for line in (proc / "status").read_text().splitlines())
        assert status["Uid"].split() == [str(IMAGE_UID)] * 4, service
        assert int(status["CapEff"], 16) == int(status["CapBnd"], 16) == 0, service
        assert status["NoNewPrivs"].strip() == "1", service
        (core,) = [line for line in (proc / "limits").read_text().splitlines() if "core" in line]
        assert core.split()[-3:-1] == ["0", "0"], (service, core)
        mounts = {line.split()[4]: line for line in (proc / "mountinfo").read_text().splitlines()}
        assert " - tmpfs " in mounts["/tmp"] and "/run" not in mounts, service
        published = {
            port: bound for port, bound in info["HostConfig"]["PortBindings"].items() if bound
        }
        assert bool(published) == (service == "nginx"), (service, published)
    for service in APPS:
        limits = stack.inspect(service)["HostConfig"]
        assert (limits["Memory"], limits["NanoCpus"]) == (4 * 2**30, 2 * 10**9)
        secret = os.stat(
            f"/proc/{stack.inspect(service)['State']['Pid']}/root/run/secrets/m2fp_model_key"
        )
        assert (secret.st_uid, secret.st_mode & 0o777) == (IMAGE_UID, 0o400)
    # Redis holds counters and bans only: nothing saved, no append-only file
    redis_config = stack.podman(
        "exec", stack.containers["redis"], "sh", "-c",
        'redis-cli -a "$(cat /run/secrets/redis_password)" --no-auth-warning '
        "CONFIG GET save appendonly",
        timeout=60,
    )  # fmt: skip
    pairs = redis_config.stdout.split("\n")
    assert dict(zip(pairs[0::2], pairs[1::2], strict=False)) == {"save": "", "appendonly": "no"}
    backend = json.loads(
        stack.podman("network", "inspect", f"{stack.podman.run_id}_backend", timeout=60).stdout
    )[0]
    assert backend["internal"] is True


def test_http_redirects_to_https(stack: Stack) -> None:
    response = httpx.get(
        f"http://127.0.0.1:{stack.http_port}/api/v1/classes", timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 301
    assert response.headers["location"] == "https://localhost/api/v1/classes"


def test_https_parse_through_nginx_with_the_client_nginx_saw(fresh_stack: Stack) -> None:
    before = fresh_stack.parse_counts()
    with fresh_stack.client() as client:
        response = _parse(client)
    assert response.status_code == 200, response.text[:300]
    assert (response.json()["width"], response.json()["height"]) == (150, 100)
    assert response.headers["strict-transport-security"].startswith("max-age=")
    (entry,) = [
        line for lines in fresh_stack.new_parses(before, expected=1).values() for line in lines
    ]
    # the replica took the client from nginx's X-Forwarded-For (nginx is a trusted proxy): the
    # address nginx saw, the edge network's gateway, not nginx's own backend address
    edge = json.loads(
        fresh_stack.podman(
            "network", "inspect", f"{fresh_stack.podman.run_id}_edge", timeout=60
        ).stdout
    )[0]
    nginx_backend = fresh_stack.inspect("nginx")["NetworkSettings"]["Networks"][
        f"{fresh_stack.podman.run_id}_backend"
    ]["IPAddress"]
    assert entry["client"] == _pseudonym(fresh_stack.log_salt, edge["subnets"][0]["gateway"])
    assert entry["client"] != _pseudonym(fresh_stack.log_salt, nginx_backend)


def test_rate_limit_is_shared_by_both_replicas(fresh_stack: Stack) -> None:
    before = fresh_stack.parse_counts()
    with fresh_stack.client() as client:
        # a new forged X-Forwarded-For each time: nginx replaces it, so no extra quota
        responses = [
            _parse(client, {"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(RATE_LIMIT + 1)
        ]
    assert [r.status_code for r in responses] == [200] * RATE_LIMIT + [429]
    assert responses[-1].json()["error"] == "rate_limited"
    assert "x-request-id" in responses[-1].headers, "refused by a replica, not by nginx"
    served = [len(lines) for lines in fresh_stack.new_parses(before, expected=RATE_LIMIT).values()]
    assert sum(served) == RATE_LIMIT and min(served) >= 1, served


def test_killed_replica_is_skipped_and_restarted(fresh_stack: Stack) -> None:
    killed = fresh_stack.inspect("app-2")
    os.kill(killed["State"]["Pid"], signal.SIGKILL)  # as the OOM killer would
    before = fresh_stack.parse_counts()
    with fresh_stack.client() as client:
        statuses = [_parse(client).status_code for _ in range(RATE_LIMIT - 1)]
        health = [client.get("/healthz").status_code for _ in range(4)]
    # nginx retried what it sent to the dead replica on the live one: nobody saw an error
    assert statuses == [200] * (RATE_LIMIT - 1)
    assert health == [200] * 4
    assert fresh_stack.new_parses(before, expected=RATE_LIMIT - 1)["app-1"]
    # restart: unless-stopped brings it back
    fresh_stack.wait_ready()
    restarted = fresh_stack.inspect("app-2")
    assert restarted["RestartCount"] >= killed["RestartCount"] + 1
    assert restarted["State"]["Pid"] != killed["State"]["Pid"]
