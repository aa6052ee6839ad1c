"""What a parse request must pass before its upload is read, and what its outcome teaches.

Checks, in order:

1. API key. A wrong key, or none when keys are required, is refused 401 after the address's
   ban is checked and its anonymous quota spent, so guessing keys is rate limited like
   everything else. A banned address stays 403 ``banned`` whatever key it sends, a valid one
   included: a key client is checked against its address's ban as well as its key's own.
2. Memory shedding (the watchdog's flag): 503 ``overloaded``, before anything is counted
   against the client, since it is not the client's fault.
3. Ban: 403 ``banned``.
4. Rate limit: 429 ``rate_limited``.

If the counter storage (Redis) cannot be reached in 1, 3 or 4 the request is refused with 503
``storage_unavailable``: without it neither limits nor bans can be enforced (fail closed).
After the route, a rejected upload is a strike (the third in a row bans) and a good one clears
the strikes. Refusals are the components' ``RetryLater`` exceptions, which ``errors.py`` turns
into answers with ``Retry-After``; every refusal is logged here as a security event, those a
client repeats at will (``banned``, ``rate_limited``) thinned to a few lines per client and
minute, the next line let through counting the dropped ones (``suppressed``); such a line
carries the refusal's ``retry_after``, which the line of a ban being imposed does not. The
route
reaches all this through one dependency (``deps.guard_parse``). The storage and the watchdog
are the app's (its lifespan opens and closes them); the guard only uses them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from fastapi import Request

from m2fp.server.abuse.bans import BanList, Banned
from m2fp.server.abuse.client_identity import (
    ApiKeyRequired,
    ApiKeys,
    ClientIdentity,
    InvalidApiKey,
    address_identity,
    presented_api_key,
)
from m2fp.server.abuse.limit_storage import StorageUnavailable
from m2fp.server.abuse.rate_limit import RateLimited, RateLimiter
from m2fp.server.errors import ApiError
from m2fp.server.ops.audit_log import AuditLog
from m2fp.server.ops.log_rate_limit import Throttle
from m2fp.server.ops.memory_watchdog import MemoryShedding, MemoryWatchdog
from m2fp.server.request_state import client_ip

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Refusals that happen in the route, after the guard let the request in: the inference queue
# was full, or the request's deadline passed.
INFERENCE_REFUSALS = frozenset({"overloaded", "timeout"})


class ParseGuard:
    """The abuse and overload checks of parse requests, for one app.

    Args:
        api_keys: the configured keys.
        rate_limiter: per-client quotas.
        bans: strikes and bans, in the same storage as the quotas.
        watchdog: the app's memory watchdog; only its shedding flag is read here.
        audit: where security events go.
        refusal_lines: thins the lines of refusals a client repeats (default: the log's
            burst per minute).
    """

    def __init__(
        self,
        *,
        api_keys: ApiKeys,
        rate_limiter: RateLimiter,
        bans: BanList,
        watchdog: MemoryWatchdog,
        audit: AuditLog,
        refusal_lines: Throttle | None = None,
    ) -> None:
        self.api_keys = api_keys
        self.rate_limiter = rate_limiter
        self.bans = bans
        self.watchdog = watchdog
        self.audit = audit
        self.refusal_lines = refusal_lines or Throttle()

    async def admit(self, request: Request) -> ClientIdentity:
        """Run the checks; return who the client is.

        Raises:
            ApiError: ``unauthorized``.
            MemoryShedding, Banned, RateLimited, StorageUnavailable: the refusals that waiting
                cures.
        """
        address = client_ip(request.scope) or "unknown"
        headers = request.headers
        key = presented_api_key(headers.get("authorization"), headers.get("x-api-key"))
        try:
            client = self.api_keys.identify(key, address)
        except (InvalidApiKey, ApiKeyRequired):
            anonymous = address_identity(address)
            await self._in_storage(anonymous, self._check_and_count, anonymous)
            self.audit.security_event("unauthorized", client=address, reason="unauthorized")
            raise ApiError("unauthorized", headers={"WWW-Authenticate": "Bearer"}) from None
        try:
            self.watchdog.admit()
        except MemoryShedding as refusal:
            self._event("shed", client, reason=refusal.reason, cause="memory")
            raise
        await self._in_storage(client, self._check_and_count, client)
        return client

    def _check_and_count(self, client: ClientIdentity) -> None:
        if client.api_key:
            self.bans.check(address_identity(client.address).bucket)
        self.bans.check(client.bucket)
        self.rate_limiter.hit(client)

    async def upload_rejected(self, client: ClientIdentity, reason: str) -> int | None:
        """Log the rejected upload and count it against ``client``; ban at the limit. Returns
        the rejections ``client`` has left before a ban (0: banned now; None: not counted).
        Never raises: the client gets the rejection it earned even if the storage is down."""
        self._event("rejected_upload", client, reason=reason)
        try:
            left = await anyio.to_thread.run_sync(self.bans.record_rejection, client.bucket)
        except StorageUnavailable:
            logger.warning("rejected upload not counted: rate-limit storage unavailable")
            return None
        if left == 0:
            self._event("banned", client, reason="banned")
        return left

    async def upload_accepted(self, client: ClientIdentity) -> None:
        """A good upload: clear ``client``'s strikes. Never raises."""
        try:
            await anyio.to_thread.run_sync(self.bans.record_success, client.bucket)
        except StorageUnavailable:
            logger.warning("strikes not cleared: rate-limit storage unavailable")

    def refused(self, client: ClientIdentity, reason: str) -> None:
        """Log an overload refusal that happened in the route (queue full, deadline)."""
        if reason in INFERENCE_REFUSALS:
            self._event("shed", client, reason=reason, cause="inference")

    async def _in_storage(
        self, client: ClientIdentity, call: Callable[[ClientIdentity], T], argument: ClientIdentity
    ) -> T:
        """Run a storage-backed check off the event loop (Redis is network I/O) and log its
        refusals."""
        try:
            return await anyio.to_thread.run_sync(call, argument)
        except (Banned, RateLimited) as refusal:
            dropped = self.refusal_lines.allow((refusal.reason, client.bucket))
            if dropped is not None:
                counts = {"suppressed": dropped} if dropped else {}
                wait = max(1, math.ceil(refusal.retry_after))
                self._event(
                    refusal.reason, client, reason=refusal.reason, retry_after=wait, **counts
                )
            raise
        except StorageUnavailable as refusal:
            self._event(refusal.reason, client, reason=refusal.reason)
            raise

    def _event(
        self, kind: str, client: ClientIdentity, *, reason: str, **fields: str | int
    ) -> None:
        if client.api_key:
            fields["key_id"] = client.bucket.removeprefix("key:")
        self.audit.security_event(kind, client=client.address, reason=reason, **fields)
