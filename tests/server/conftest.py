"""Server fixtures: in-process apps over httpx's ASGI transport, and real ``m2fp serve``
subprocesses on 127.0.0.1 that are always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import limits.storage.memory
import pytest

from tests.conftest import golden_sizes
from tests.utils.ports import free_port

STARTUP_TIMEOUT = 90.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def tiny_settings(**values):
    from m2fp.server.settings import Settings

    min_size, max_size = golden_sizes()
    return Settings(min_size=min_size, max_size=max_size, **values)


@asynccontextmanager
async def app_client(app, client_host: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to ``app`` in-process, with its lifespan running."""
    transport = httpx.ASGITransport(app=app, client=(client_host, 43210))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


@dataclass
class LiveServer:
    """A running ``m2fp serve``; ``log`` is everything it wrote to stderr so far."""

    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_server(
    model_dir: Path,
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    wrapper: Sequence[str] = (),
) -> Iterator[LiveServer]:
    """Start ``python -m m2fp serve`` (optionally under ``wrapper``, e.g. strace), wait for
    ``/healthz`` and always stop the whole process group afterwards."""
    min_size, max_size = golden_sizes()
    port = free_port()
    command = [
        *wrapper,
        sys.executable,
        "-m",
        "m2fp",
        "serve",
        "--model",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    sizes = {"M2FP_MIN_SIZE": str(min_size), "M2FP_MAX_SIZE": str(max_size)}
    with running_process(command, port, log_path, env={**sizes, **(env or {})}) as server:
        yield server


@contextmanager
def running_process(
    command: Sequence[str], port: int, log_path: Path, *, env: dict[str, str]
) -> Iterator[LiveServer]:
    """Run an HTTP server command in its own process group until the block ends."""
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("M2FP_")},
        "PYTHONDONTWRITEBYTECODE": "1",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        _wait_healthy(server)
        yield server
    finally:
        _stop(process)


def _wait_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server did not become healthy:\n{server.log}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


# Validation tests send dozens of requests, many of them bad, from one address; with the
# production defaults (5/minute, a ban after 3 bad uploads) they would be testing the rate
# limiter and the ban list instead (test_abuse_http.py does that).
GENEROUS_LIMITS = {"M2FP_RATE_LIMIT": "100000/minute", "M2FP_BAN_AFTER": "1000"}


@pytest.fixture(scope="module")
def live_server(visible_model_dir, tmp_path_factory) -> Iterator[LiveServer]:
    """One real server with default settings (but generous abuse limits), shared by a test
    module; it serves the visible model, whose answers show several classes."""
    log_path = tmp_path_factory.mktemp("live_server") / "server.log"
    with running_server(visible_model_dir, log_path, env=GENEROUS_LIMITS) as server:
        yield server


class FakeClock:
    """A clock tests move by hand; callable like ``time.time`` and with a ``time()`` method so
    that it can also stand in for the ``time`` module inside ``limits``' memory storage."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake clock that also drives ``limits``' memory storage, so windows, Retry-After and
    ban expiry are tested without sleeping."""
    fake = FakeClock()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    return fake


@pytest.fixture
def redis_server():
    """A real redis-server on a free loopback port, stopped whatever happens in the test."""
    from tests.utils.redis_process import RedisProcess

    server = RedisProcess()
    server.start()
    try:
        yield server
    finally:
        server.stop()
