"""The one typed object an app keeps on ``app.state``: its configuration, its telemetry, and
the process-wide services its lifespan runs.

``create_app`` builds the ``AppState``; the lifespan opens the ``Services`` (counter storage,
memory watchdog, parse guard, parse service) at start-up and closes them at shutdown. Outside
the lifespan ``services`` is None: /readyz says not ready and parse requests get 503.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from limits.storage import Storage
from starlette.applications import Starlette

from m2fp.server.abuse.guard import ParseGuard
from m2fp.server.ops.audit_log import AuditLog
from m2fp.server.ops.memory_watchdog import MemoryWatchdog
from m2fp.server.ops.metrics import Metrics
from m2fp.server.parse.service import ParseService
from m2fp.server.settings import Settings


@dataclass(frozen=True)
class Services:
    """What the lifespan starts and stops, one of each per app.

    Attributes:
        storage: the counters of the rate limiter and the ban list (memory or Redis).
        watchdog: samples memory and owns the shedding flag.
        guard: the abuse and overload checks of parse requests (uses storage and watchdog).
        parse: runs parses on the loaded model through the bounded queue.
        compute: where and how the model computes (device, engine, precision, accuracy:
            exact or approximation) and the queue limits sized from it; /readyz reports it.
    """

    storage: Storage
    watchdog: MemoryWatchdog
    guard: ParseGuard
    parse: ParseService
    compute: dict[str, Any] = field(default_factory=dict)


@dataclass
class AppState:
    """Everything one app holds.

    Attributes:
        settings: the validated configuration.
        metrics: this app's Prometheus registry.
        audit: where request lines and security events go.
        not_ready: reasons for /readyz to fail, e.g. ``{"memory"}`` while shedding.
        services: set by the lifespan while it runs, None before and after.
    """

    settings: Settings
    metrics: Metrics
    audit: AuditLog
    not_ready: set[str] = field(default_factory=set)
    services: Services | None = None


def app_state(app: Starlette) -> AppState:
    """The ``AppState`` of an app built by ``create_app``."""
    state = app.state.m2fp
    assert isinstance(state, AppState)  # nosec B101 # narrows the type; create_app sets it
    return state
