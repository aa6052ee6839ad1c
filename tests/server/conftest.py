"""Fixtures of the server tests."""

from __future__ import annotations

import limits.storage.memory
import pytest


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
    from tests.server.redis_process import RedisProcess

    server = RedisProcess()
    server.start()
    try:
        yield server
    finally:
        server.stop()
