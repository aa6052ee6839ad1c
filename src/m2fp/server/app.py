"""``create_app(settings)``: the FastAPI application, built fresh for each caller.

The model is loaded once per app (in the lifespan, or injected by the caller, e.g. ``m2fp
serve`` which loads it first to report a bad model in one line, or tests). The lifespan also
owns the process-wide services: it opens the counter storage, starts the memory watchdog,
builds the parse guard and the parse service on them, and closes all of it at shutdown.
Request flow, outermost first: client address -> security headers -> request id, audit line
and catch-all -> CORS -> CSRF origin check -> routes (parse guard, query validation, then the
streamed upload).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from m2fp.compute.parser_options import ParserOptions
from m2fp.imaging.decode_pool import DecodePool
from m2fp.predictor import HumanParser
from m2fp.protection.keys import resolve_model_key
from m2fp.server.abuse.bans import open_ban_list
from m2fp.server.abuse.client_identity import ApiKeys
from m2fp.server.abuse.guard import ParseGuard
from m2fp.server.abuse.limit_storage import close_storage, open_storage
from m2fp.server.abuse.rate_limit import RateLimiter, parse_rate_limit
from m2fp.server.app_state import AppState, Services, app_state
from m2fp.server.errors import install_error_handlers
from m2fp.server.middleware.client_address import ClientAddressMiddleware
from m2fp.server.middleware.cors import CorsMiddleware
from m2fp.server.middleware.origin_check import OriginCheckMiddleware
from m2fp.server.middleware.request_context import RequestContextMiddleware
from m2fp.server.middleware.security_headers import SecurityHeadersMiddleware
from m2fp.server.ops.alerts import AlertWebhook
from m2fp.server.ops.audit_log import AuditLog
from m2fp.server.ops.memory_watchdog import MemoryUsage, MemoryWatchdog
from m2fp.server.ops.metrics import Metrics
from m2fp.server.parse.queue import InferenceQueue
from m2fp.server.parse.queue_sizing import queue_limits
from m2fp.server.parse.service import ParseService
from m2fp.server.routes import classes, health, limits, mask_rules, metrics, parse, ui
from m2fp.server.settings import Settings, SettingsError

logger = logging.getLogger(__name__)


def load_parser(settings: Settings) -> HumanParser:
    """The model of ``settings.model`` at the configured sizes, hash-checked if pinned.

    An encrypted ``.m2fp`` model is opened with the key from ``M2FP_MODEL_KEY`` or
    ``M2FP_MODEL_KEY_FILE``; the key lives only in memory.

    Raises:
        SettingsError: no model directory configured.
        M2FPError: the model or its key is missing, malformed, or does not match its pinned
            hash.
    """
    if settings.model is None:
        raise SettingsError("no model: pass --model DIR or set M2FP_MODEL")
    secret = settings.model_key.get_secret_value() if settings.model_key else None
    key = resolve_model_key(secret, settings.model_key_file)
    return HumanParser.from_pretrained(
        settings.model,
        options=ParserOptions.from_fields(settings),
        key=key,
        expected_sha256=settings.model_sha256,
    )


def _watchdog(state: AppState) -> MemoryWatchdog:
    """The memory watchdog, feeding the memory gauge and the app's readiness."""
    settings = state.settings

    def on_sample(usage: MemoryUsage) -> None:
        state.metrics.memory_used_ratio.set(usage.percent / 100)

    def on_change(shedding: bool) -> None:
        if shedding:
            state.not_ready.add("memory")
        else:
            state.not_ready.discard("memory")

    webhook = settings.alert_webhook
    return MemoryWatchdog(
        alert_percent=settings.memory_alert_percent,
        alerts=AlertWebhook(url=webhook.get_secret_value()) if webhook else None,
        on_sample=on_sample,
        on_change=on_change,
    )


def _services(state: AppState, parser: HumanParser) -> Services:
    """The app's process-wide services, from its settings (nothing started yet)."""
    settings = state.settings
    storage = open_storage(settings.storage_uri.get_secret_value())
    watchdog = _watchdog(state)
    guard = ParseGuard(
        api_keys=ApiKeys(digests=settings.api_keys, required=settings.api_keys_required),
        rate_limiter=RateLimiter(
            storage=storage,
            anonymous_limits=parse_rate_limit(settings.rate_limit),
            api_key_limits=parse_rate_limit(settings.api_key_rate_limit),
        ),
        bans=open_ban_list(storage, ban_after=settings.ban_after, ban_seconds=settings.ban_seconds),
        watchdog=watchdog,
        audit=state.audit,
    )
    compute = parser.describe_compute()
    limits = queue_limits(
        device_type=compute["device"].partition(":")[0],
        gpu_memory_bytes=compute.get("gpu_memory_bytes"),
        concurrency=settings.max_concurrency,
        queue=settings.max_queue,
    )
    queue = InferenceQueue(
        max_concurrency=limits.concurrency,
        max_queue=limits.queue,
        timeout=settings.request_timeout,
    )
    service = ParseService(
        parser=parser,
        queue=queue,
        max_pixels=settings.max_pixels,
        max_side=settings.max_side,
        decoder=DecodePool(workers=limits.concurrency),
        metrics=state.metrics,
        release_device_memory=parser.release_device_memory,
    )
    compute = {**compute, "max_concurrency": limits.concurrency, "max_queue": limits.queue}
    return Services(storage=storage, watchdog=watchdog, guard=guard, parse=service, compute=compute)


def _include_routers(app: FastAPI) -> None:
    """Every router, and ``HEAD`` beside every ``GET`` (load balancers and uptime checkers
    probe with it). The HEAD twin runs the same handler; the server (uvicorn) sends the
    headers without the body. It stays out of the schema, where the GET already describes it.
    """
    for router in (
        parse.router,
        classes.router,
        mask_rules.router,
        limits.router,
        health.router,
        metrics.router,
        ui.build_router(),
    ):
        app.include_router(router)
    for route in list(iter_route_contexts(app.routes)):
        if isinstance(route.original_route, APIRoute) and "GET" in (route.methods or ()):
            app.router.add_api_route(
                route.path,
                route.endpoint,
                methods=["HEAD"],
                dependencies=route.dependencies,
                response_class=route.response_class,
                name=route.name,
                include_in_schema=False,
            )


def create_app(settings: Settings, *, parser: HumanParser | None = None) -> FastAPI:
    """Build the service.

    Args:
        settings: validated configuration.
        parser: an already-loaded model; when None it is loaded from ``settings.model`` at
            start-up.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = app_state(app)
        started = time.perf_counter()
        model = parser or await anyio.to_thread.run_sync(load_parser, settings)
        loaded = "" if parser else f" (loaded in {time.perf_counter() - started:.1f} s)"
        services = _services(state, model)
        facts = ", ".join(f"{k} {v}" for k, v in services.compute.items())
        logger.info("model ready%s: %s", loaded, facts)
        services.watchdog.start()
        # warm decode workers: the first upload does not pay their start
        await anyio.to_thread.run_sync(services.parse.decoder.start)
        state.services = services
        try:
            yield
        finally:
            state.services = None
            services.parse.close()
            await services.watchdog.stop()
            close_storage(services.storage)

    # Only the machine-readable schema: the Swagger/ReDoc pages load scripts from a CDN,
    # which the CSP (rightly) blocks. No trailing-slash redirects: Starlette builds them from
    # the client's Host header and the scheme uvicorn saw (http behind a TLS proxy), so a
    # client following one would re-send its photo in clear text to whatever Host said.
    app = FastAPI(
        title="m2fp",
        version="v1",
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
    )
    salt = settings.log_salt.get_secret_value().encode() if settings.log_salt else None
    state = AppState(
        settings=settings,
        metrics=Metrics(),
        audit=AuditLog(mode=settings.client_id_mode, salt=salt or secrets.token_bytes(32)),
    )
    app.state.m2fp = state

    install_error_handlers(app)
    _include_routers(app)

    # add_middleware wraps: the last added is the outermost
    app.add_middleware(OriginCheckMiddleware, allow_origins=settings.cors_origins)
    app.add_middleware(CorsMiddleware, allow_origins=settings.cors_origins)
    app.add_middleware(RequestContextMiddleware, audit=state.audit, metrics=state.metrics)
    app.add_middleware(SecurityHeadersMiddleware, trusted_proxies=settings.trusted_proxies)
    app.add_middleware(ClientAddressMiddleware, trusted_proxies=settings.trusted_proxies)
    return app
