"""Memory watchdog: sheds new parse requests while memory is nearly exhausted.

An inference on a large photo allocates hundreds of MB at once; letting more start when memory
is nearly full ends with the kernel's OOM killer taking the whole service (and every request in
it) down. Above the alert threshold the watchdog logs a warning, posts a debounced alert and
sets the shedding flag: new parse requests get 503 ``overloaded`` and /readyz reports not ready,
until usage falls ``hysteresis`` points below the threshold (so the flag does not flap).

Usage is the cgroup v2 working set (``memory.current`` minus reclaimable ``inactive_file``,
against ``memory.max``) when the process runs under a cgroup memory limit (containers, systemd
``MemoryMax=``), else the host's ``MemTotal - MemAvailable`` from /proc/meminfo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from m2fp.server.ops.alerts import AlertWebhook
from m2fp.server.retry_later import RetryLater

logger = logging.getLogger(__name__)

# Seconds between samples: an inference takes seconds to allocate its peak, so this is prompt
# enough, and reading two small kernel files costs microseconds.
INTERVAL = 1.0
# Percentage points below the threshold that memory must fall to before shedding stops.
HYSTERESIS = 5.0
# Seconds a client is asked to wait while memory is being shed: the running inferences that
# hold the memory finish within a few seconds, and the watchdog samples every second.
SHED_RETRY_AFTER = 10


class MemoryShedding(RetryLater):
    """New parse requests are refused while memory is nearly exhausted."""

    reason = "overloaded"


def check_alert_percent(percent: float) -> float:
    """``percent`` if it can be the memory use that starts shedding, else ValueError.

    100 is refused with 0: at 100% the OOM killer acts before the watchdog can, and at 0
    nothing would ever be served.
    """
    if not 0 < percent < 100:
        raise ValueError("must be between 0 and 100 (exclusive)")
    return percent


@dataclass(frozen=True)
class MemoryUsage:
    """Bytes in use and the limit they count against."""

    used: int
    limit: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit > 0 else 0.0


def _cgroup_v2(proc: Path, cgroup_root: Path) -> MemoryUsage | None:
    """The working set of the nearest cgroup (this one or an ancestor) that has a memory limit."""
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return None
    relative = next((line[3:] for line in lines if line.startswith("0::")), None)
    if relative is None:
        return None
    directory = cgroup_root / relative.lstrip("/")
    while True:
        try:
            limit_text = (directory / "memory.max").read_text().strip()
            if limit_text != "max":
                current = int((directory / "memory.current").read_text())
                stat = (directory / "memory.stat").read_text().split()
                fields = dict(zip(stat[0::2], stat[1::2], strict=False))
                inactive_file = int(fields.get("inactive_file", 0))
                return MemoryUsage(used=max(0, current - inactive_file), limit=int(limit_text))
        except (OSError, ValueError):
            pass
        if directory == cgroup_root or cgroup_root not in directory.parents:
            return None
        directory = directory.parent


def _meminfo(proc: Path) -> MemoryUsage:
    fields = {}
    for line in (proc / "meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = int(value.split()[0]) * 1024
    return MemoryUsage(used=fields["MemTotal"] - fields["MemAvailable"], limit=fields["MemTotal"])


def read_memory(
    *, proc: Path = Path("/proc"), cgroup_root: Path = Path("/sys/fs/cgroup")
) -> MemoryUsage:
    """Current memory usage: the cgroup v2 limit if there is one, else the host's memory.

    Raises:
        OSError, ValueError, KeyError: neither source could be read.
    """
    return _cgroup_v2(proc, cgroup_root) or _meminfo(proc)


class MemoryWatchdog:
    """Samples memory periodically and owns the shedding flag."""

    def __init__(
        self,
        *,
        alert_percent: float,
        read: Callable[[], MemoryUsage] = read_memory,
        alerts: AlertWebhook | None = None,
        interval: float = INTERVAL,
        hysteresis: float = HYSTERESIS,
        on_sample: Callable[[MemoryUsage], None] | None = None,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        """
        Args:
            alert_percent: memory use, in percent of the limit, that starts shedding and
                alerts (see ``check_alert_percent``).
            read: the memory source (tests inject one).
            alerts: where alerts are posted (None: log only).
            interval: seconds between samples.
            hysteresis: points below ``alert_percent`` at which shedding stops.
            on_sample: called with every sample (the memory gauge).
            on_change: called with the new shedding flag when it flips (readiness).
        """
        self.alert_percent = check_alert_percent(alert_percent)
        self._read = read
        self._alerts = alerts
        self._interval = interval
        self._resume_percent = alert_percent - hysteresis
        self._on_sample = on_sample
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self.shedding = False

    async def check(self) -> None:
        """Take one sample and update the shedding flag; alert while memory is high."""
        try:
            usage = self._read()
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("memory watchdog cannot read memory usage: %s", type(exc).__name__)
            return
        if self._on_sample is not None:
            self._on_sample(usage)
        percent = usage.percent
        if percent >= self.alert_percent:
            if not self.shedding:
                self._set_shedding(True)
                logger.warning(
                    "memory at %.0f%% (alert threshold %.0f%%): refusing new parse requests",
                    percent,
                    self.alert_percent,
                )
            if self._alerts is not None:
                await self._alerts.send(self._alert_text(percent))
        elif self.shedding and percent < self._resume_percent:
            self._set_shedding(False)
            logger.warning("memory back to %.0f%%: accepting parse requests again", percent)

    def admit(self) -> None:
        """Let a new parse request in, unless memory is being shed.

        Raises:
            MemoryShedding: memory is above the threshold (or not yet back below it).
        """
        if self.shedding:
            raise MemoryShedding(retry_after=SHED_RETRY_AFTER)

    def _set_shedding(self, shedding: bool) -> None:
        self.shedding = shedding
        if self._on_change is not None:
            self._on_change(shedding)

    def _alert_text(self, percent: float) -> str:
        return (
            f"m2fp on {socket.gethostname()}: memory use is {percent:.0f}% (alert threshold "
            f"{self.alert_percent:.0f}%). New parse requests are refused with 503 until it "
            f"falls below {self._resume_percent:.0f}%."
        )

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        """Start sampling in the background (app lifespan start-up)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="m2fp-memory")

    async def stop(self) -> None:
        """Stop sampling (app lifespan shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
