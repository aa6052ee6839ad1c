"""What a parse request must pass before its upload is read, and what its outcome teaches.

Checks, in order:

1. API key. A wrong key, or none when keys are required, is refused 401 after spending the
   address's anonymous quota, so guessing keys is rate limited like everything else.
2. Memory shedding (the watchdog's flag): 503 ``overloaded``, before anything is counted
   against the client, since it is not the client's fault.
3. Ban: 403 ``banned``.
4. Rate limit: 429 ``rate_limited``.

If the counter storage (Redis) cannot be reached in 1, 3 or 4 the request is refused with 503
``storage_unavailable``: without it neither limits nor bans can be enforced (fail closed).
After the route, a rejected upload is a strike (the third in a row bans) and a good one clears
the strikes. Every refusal carries ``Retry-After`` when waiting helps, and is logged as a
security event. The route reaches all this through one dependency (``deps.guard_parse``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from fastapi import Request
from limits.storage import Storage

from m2fp.server.abuse.bans import BanList, Banned, open_ban_list
from m2fp.server.abuse.client_identity import (
    ApiKeyRequired,
    ApiKeys,
    ClientIdentity,
    InvalidApiKey,
    address_identity,
    presented_api_key,
)
from m2fp.server.abuse.limit_storage import StorageUnavailable, close_storage, open_storage
from m2fp.server.abuse.rate_limit import RateLimited, RateLimiter, parse_rate_limit
from m2fp.server.errors import ApiError
from m2fp.server.ops.alerts import AlertWebhook
from m2fp.server.ops.audit_log import AuditLog, client_address
from m2fp.server.ops.memory_watchdog import MemoryUsage, MemoryWatchdog
from m2fp.server.ops.metrics import Metrics
from m2fp.server.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds a client is asked to wait while memory is being shed: the running inferences that
# hold the memory finish within a few seconds, and the watchdog samples every second.
SHED_RETRY_AFTER = 10


def retry_after(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(max(1, int(seconds)))}


class ParseGuard:
    """The abuse and overload checks of parse requests, for one app."""

    def __init__(
        self,
        *,
        api_keys: ApiKeys,
        rate_limiter: RateLimiter,
        bans: BanList,
        watchdog: MemoryWatchdog,
        storage: Storage,
        audit: AuditLog,
    ) -> None:
        self.api_keys = api_keys
        self.rate_limiter = rate_limiter
        self.bans = bans
        self.watchdog = watchdog
        self.storage = storage
        self.audit = audit

    def start(self) -> None:
        """Start the memory watchdog (app lifespan start-up)."""
        self.watchdog.start()

    async def stop(self) -> None:
        """Stop the watchdog and release the storage (app lifespan shutdown)."""
        await self.watchdog.stop()
        close_storage(self.storage)

    async def admit(self, request: Request) -> ClientIdentity:
        """Run the checks; return who the client is.

        Raises:
            ApiError: ``unauthorized``, ``overloaded``, ``banned``, ``rate_limited`` or
                ``storage_unavailable``.
        """
        address = client_address(request.scope) or "unknown"
        headers = request.headers
        key = presented_api_key(headers.get("authorization"), headers.get("x-api-key"))
        try:
            client = self.api_keys.identify(key, address)
        except (InvalidApiKey, ApiKeyRequired):
            anonymous = address_identity(address)
            await self._in_storage(anonymous, self.rate_limiter.hit, anonymous)
            self.audit.security_event("unauthorized", client=address, reason="unauthorized")
            raise ApiError("unauthorized", headers={"WWW-Authenticate": "Bearer"}) from None
        if self.watchdog.shedding:
            self._event("shed", client, reason="overloaded", cause="memory")
            raise ApiError("overloaded", headers=retry_after(SHED_RETRY_AFTER))
        await self._in_storage(client, self._check_and_count, client)
        return client

    def _check_and_count(self, client: ClientIdentity) -> None:
        self.bans.check(client.bucket)
        self.rate_limiter.hit(client)

    async def upload_rejected(self, client: ClientIdentity) -> None:
        """Count a rejected upload against ``client``; ban at the limit. Never raises: the
        client gets the rejection it earned even if the storage is down.

        The ``rejected_upload`` security event itself is written by the error handler
        (``errors.py``) for every rejection; this adds ``banned`` when the strike bans.
        """
        try:
            banned = await anyio.to_thread.run_sync(self.bans.record_rejection, client.bucket)
        except StorageUnavailable:
            logger.warning("rejected upload not counted: rate-limit storage unavailable")
            return
        if banned:
            self._event("banned", client, reason="banned")

    async def upload_accepted(self, client: ClientIdentity) -> None:
        """A good upload: clear ``client``'s strikes. Never raises."""
        try:
            await anyio.to_thread.run_sync(self.bans.record_success, client.bucket)
        except StorageUnavailable:
            logger.warning("strikes not cleared: rate-limit storage unavailable")

    def refused(self, client: ClientIdentity, error: ApiError) -> None:
        """Log an overload refusal that happened in the route (queue full, deadline)."""
        if error.reason in ("overloaded", "timeout"):
            self._event("shed", client, reason=error.reason, cause="inference")

    async def _in_storage(
        self, client: ClientIdentity, call: Callable[[ClientIdentity], T], argument: ClientIdentity
    ) -> T:
        """Run a storage-backed check off the event loop (Redis is network I/O) and turn its
        refusals into API errors."""
        try:
            return await anyio.to_thread.run_sync(call, argument)
        except RateLimited as exc:
            self._event("rate_limited", client, reason="rate_limited")
            raise ApiError("rate_limited", headers=retry_after(exc.retry_after)) from None
        except Banned as exc:
            raise ApiError("banned", headers=retry_after(exc.retry_after)) from None
        except StorageUnavailable as exc:
            self._event("storage_unavailable", client, reason="storage_unavailable")
            headers = retry_after(exc.retry_after)
            raise ApiError("storage_unavailable", headers=headers) from None

    def _event(self, kind: str, client: ClientIdentity, *, reason: str, **fields: str) -> None:
        if client.api_key:
            fields["key_id"] = client.bucket.removeprefix("key:")
        self.audit.security_event(kind, client=client.address, reason=reason, **fields)


def build_parse_guard(
    settings: Settings, *, audit: AuditLog, metrics: Metrics, not_ready: set[str]
) -> ParseGuard:
    """The guard of one app, from its settings.

    Args:
        settings: the app's settings.
        audit: where security events go.
        metrics: gets the memory gauge.
        not_ready: the app's set of reasons to fail /readyz; "memory" is in it while shedding.

    Raises:
        ValueError: a setting cannot be used (one line naming it).
    """
    storage = open_storage(settings.storage_uri.get_secret_value())

    def on_sample(usage: MemoryUsage) -> None:
        metrics.memory_used_ratio.set(usage.percent / 100)

    def on_change(shedding: bool) -> None:
        if shedding:
            not_ready.add("memory")
        else:
            not_ready.discard("memory")

    webhook = settings.alert_webhook
    watchdog = MemoryWatchdog(
        alert_percent=settings.memory_alert_percent,
        alerts=AlertWebhook(url=webhook.get_secret_value()) if webhook else None,
        on_sample=on_sample,
        on_change=on_change,
    )
    return ParseGuard(
        api_keys=ApiKeys(digests=settings.api_keys, required=settings.api_keys_required),
        rate_limiter=RateLimiter(
            storage=storage,
            anonymous_limits=parse_rate_limit(settings.rate_limit, setting="M2FP_RATE_LIMIT"),
            api_key_limits=parse_rate_limit(
                settings.api_key_rate_limit, setting="M2FP_API_KEY_RATE_LIMIT"
            ),
        ),
        bans=open_ban_list(storage, ban_after=settings.ban_after, ban_seconds=settings.ban_seconds),
        watchdog=watchdog,
        storage=storage,
        audit=audit,
    )
