"""The one rate limiter for parse routes, on the ``limits`` library.

Strategy: moving window. A fixed window lets a client spend its quota at the end of one window
and again at the start of the next (10 inferences in two seconds under "5/minute"), which on a
2-core box is exactly the burst the limit exists to stop. The moving window never allows more
than N hits in any period of the window's length; it stores at most N timestamps per client
(5 by default), checked and updated atomically (a lock in memory, a Lua script in Redis).

Retry-After is the time until the oldest hit in the window leaves it, i.e. the moment the next
request would be accepted, rounded up to whole seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import Storage
from limits.strategies import MovingWindowRateLimiter

from m2fp.server.abuse.client_identity import ClientIdentity
from m2fp.server.abuse.limit_storage import StorageUnavailable
from m2fp.server.retry_later import RetryLater

NAMESPACE = "parse"


class RateLimited(RetryLater):
    """The client spent its quota; ``retry_after``: whole seconds until the next request would
    be accepted (at least 1)."""

    reason = "rate_limited"


def parse_rate_limit(text: str) -> list[RateLimitItem]:
    """Parse ``5/minute`` or ``5/minute;100/day`` (the ``limits`` syntax; an empty text is no
    limit at all and refused).

    Raises:
        ValueError: one clear line.
    """
    try:
        items = parse_many(text)
    except ValueError:
        items = []
    if not items:
        raise ValueError("must look like '5/minute' or '5/minute;100/day'")
    return items


class RateLimiter:
    """Per-client quotas: one for anonymous clients (per IP), one per API key."""

    def __init__(
        self,
        *,
        storage: Storage,
        anonymous_limits: list[RateLimitItem],
        api_key_limits: list[RateLimitItem],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        Args:
            storage: from :func:`m2fp.server.abuse.limit_storage.open_storage`.
            anonymous_limits: the quota of each anonymous client (per IP), from
                :func:`parse_rate_limit`.
            api_key_limits: the quota of each API key, from :func:`parse_rate_limit`.
            clock: wall-clock seconds, the time base ``limits`` stores (``time.time``); tests
                substitute the same fake clock here and in the memory storage.
        """
        self._limiter = MovingWindowRateLimiter(storage)
        self._anonymous = anonymous_limits
        self._api_key = api_key_limits
        self._clock = clock

    def hit(self, client: ClientIdentity) -> None:
        """Spend one request of ``client``'s quota.

        Raises:
            RateLimited: the quota is spent (a refused request is not counted by the limit
                that refused it).
            StorageUnavailable: the storage cannot be reached (fail closed).
        """
        items = self._api_key if client.api_key else self._anonymous
        try:
            for item in items:
                if not self._limiter.hit(item, NAMESPACE, client.bucket):
                    stats = self._limiter.get_window_stats(item, NAMESPACE, client.bucket)
                    wait = math.ceil(stats.reset_time - self._clock())
                    raise RateLimited(retry_after=max(1, wait))
        except StorageError:
            raise StorageUnavailable from None
