"""Temporary bans for clients that keep sending things that are not images.

A client whose last ``ban_after`` uploads were all rejected by the upload checks (bad extension,
unsupported or corrupt data, empty, too large, too many pixels) is refused for ``ban_seconds``.
A good upload resets its count; a strike count also lapses ``ban_seconds`` after the last
rejection. Rate-limit and overload refusals are not strikes: they are not the client's fault in
the same way, and must not turn a busy server into a banning one.

Counts and bans live in the same storage as the rate limiter: in this process for
``memory://``, in Redis (keys ``m2fp:strikes:<client>`` and ``m2fp:ban:<client>``, with
expiries) for ``redis://``, so that a ban is seen by every replica.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from limits.storage import RedisStorage, Storage
from redis import Redis, RedisError

from m2fp.server.abuse.limit_storage import KEY_PREFIX, StorageUnavailable
from m2fp.server.retry_later import RetryLater

# The memory ban list forgets lapsed entries when it grows past this many clients, and then the
# oldest strike counts, so that a flood of distinct addresses cannot grow it without bound.
MAX_MEMORY_CLIENTS = 100_000
# Beyond these a policy is a typo: a thousand rejected uploads in a row is a flood, and a ban
# of more than a month outlives any address it was meant for.
MAX_BAN_AFTER = 1000
MAX_BAN_SECONDS = 30 * 86400


class Banned(RetryLater):
    """The client is banned; ``retry_after``: whole seconds until the ban lapses (at least 1)."""

    reason = "banned"


def check_ban_after(count: int) -> int:
    """``count`` if it can be the number of rejected uploads in a row that bans, else
    ValueError."""
    if not 1 <= count <= MAX_BAN_AFTER:
        raise ValueError(f"must be between 1 and {MAX_BAN_AFTER} rejected uploads")
    return count


def check_ban_seconds(seconds: int) -> int:
    """``seconds`` if it can be the length of a ban, else ValueError."""
    if not 1 <= seconds <= MAX_BAN_SECONDS:
        raise ValueError(f"must be between 1 and {MAX_BAN_SECONDS} seconds")
    return seconds


class BanList(Protocol):
    """Where strikes and bans are kept. ``client`` is a ClientIdentity bucket."""

    def check(self, client: str) -> None:
        """Raises Banned if ``client`` is banned (StorageUnavailable if that is unknown)."""

    @property
    def ban_seconds(self) -> int:
        """How long a ban lasts, in seconds (what a warning about the next strikes can say)."""

    def record_rejection(self, client: str) -> int:
        """Count a rejected upload; the rejections ``client`` has left before a ban (0: this
        one got it banned)."""

    def record_success(self, client: str) -> None:
        """A good upload: forget ``client``'s strikes."""


class MemoryBanList:
    """Strikes and bans of this process (``memory://``). Thread-safe."""

    def __init__(
        self,
        *,
        ban_after: int,
        ban_seconds: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_MEMORY_CLIENTS,
    ) -> None:
        self._ban_after = check_ban_after(ban_after)
        self._ban_seconds = check_ban_seconds(ban_seconds)
        self._clock = clock
        self._max_clients = max_clients
        self._lock = threading.Lock()
        self._strikes: dict[str, tuple[int, float]] = {}  # client -> (count, lapses at)
        self._bans: dict[str, float] = {}  # client -> lapses at

    def check(self, client: str) -> None:
        with self._lock:
            until = self._bans.get(client)
            if until is None:
                return
            remaining = until - self._clock()
            if remaining <= 0:
                del self._bans[client]
                return
        raise Banned(retry_after=max(1, math.ceil(remaining)))

    @property
    def ban_seconds(self) -> int:
        return self._ban_seconds

    def record_rejection(self, client: str) -> int:
        with self._lock:
            now = self._clock()
            count, lapses = self._strikes.get(client, (0, now))
            count = count + 1 if lapses > now else 1
            if count >= self._ban_after:
                self._strikes.pop(client, None)
                self._bans[client] = now + self._ban_seconds
                self._bound(now)
                return 0
            self._strikes[client] = (count, now + self._ban_seconds)
            self._bound(now)
            return self._ban_after - count

    def record_success(self, client: str) -> None:
        with self._lock:
            self._strikes.pop(client, None)

    def _bound(self, now: float) -> None:
        if len(self._strikes) + len(self._bans) <= self._max_clients:
            return
        self._strikes = {c: v for c, v in self._strikes.items() if v[1] > now}
        self._bans = {c: until for c, until in self._bans.items() if until > now}
        excess = len(self._strikes) + len(self._bans) - self._max_clients
        for client in list(self._strikes)[: max(0, excess)]:
            del self._strikes[client]


class RedisBanList:
    """Strikes and bans shared by every replica through Redis."""

    def __init__(self, *, redis: Redis, ban_after: int, ban_seconds: int) -> None:
        self._redis = redis
        self._ban_after = check_ban_after(ban_after)
        self._ban_seconds = check_ban_seconds(ban_seconds)

    @staticmethod
    def _keys(client: str) -> tuple[str, str]:
        return f"{KEY_PREFIX}:strikes:{client}", f"{KEY_PREFIX}:ban:{client}"

    def check(self, client: str) -> None:
        _, ban_key = self._keys(client)
        try:
            remaining_ms = self._redis.pttl(ban_key)
        except RedisError:
            raise StorageUnavailable from None
        if remaining_ms == -1:  # no expiry: never written by us, but honour it for the full term
            raise Banned(retry_after=self._ban_seconds)
        if remaining_ms > 0:
            raise Banned(retry_after=max(1, math.ceil(remaining_ms / 1000)))

    @property
    def ban_seconds(self) -> int:
        return self._ban_seconds

    def record_rejection(self, client: str) -> int:
        strikes_key, ban_key = self._keys(client)
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(strikes_key)
                pipe.expire(strikes_key, self._ban_seconds)
                count, _ = pipe.execute()
            if count < self._ban_after:
                return self._ban_after - count
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(ban_key, 1, ex=self._ban_seconds)
                pipe.delete(strikes_key)
                pipe.execute()
        except RedisError:
            raise StorageUnavailable from None
        return 0

    def record_success(self, client: str) -> None:
        strikes_key, _ = self._keys(client)
        try:
            self._redis.delete(strikes_key)
        except RedisError:
            raise StorageUnavailable from None


def open_ban_list(
    storage: Storage,
    *,
    ban_after: int,
    ban_seconds: int,
    clock: Callable[[], float] = time.monotonic,
) -> BanList:
    """The ban list kept in the same place as the rate limiter's counts."""
    if isinstance(storage, RedisStorage):
        return RedisBanList(
            redis=storage.get_connection(), ban_after=ban_after, ban_seconds=ban_seconds
        )
    return MemoryBanList(ban_after=ban_after, ban_seconds=ban_seconds, clock=clock)
