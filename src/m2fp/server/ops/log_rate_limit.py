"""At most a few identical log lines per minute from everything but the audit log.

Under attack the server's own diagnostics become the flood: with the descriptors exhausted
asyncio logged ``socket.accept() out of system resource`` with a traceback hundreds of times a
second (about 2 MB/s), and uvicorn logs every malformed request. A line is identified by its
logger and message template (not its arguments); after ``burst`` of one kind in a ``window``,
the rest are dropped and the next one let through says how many were (``suppressed``). The
audit log (``m2fp.audit``: one line per request and per security event) is never thinned here;
the parse guard thins the refusals a client repeats at will with the same ``Throttle``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

from m2fp.server.ops.audit_log import AUDIT_LOGGER

BURST = 5
WINDOW = 60.0
# kinds of line remembered at most; beyond, the oldest windows are forgotten
MAX_KINDS = 1024


class Throttle:
    """``burst`` events of each key per ``window`` seconds; the first one let through after
    a window with drops says how many were dropped. Thread-safe; at most ``MAX_KINDS`` keys
    are remembered (the oldest windows are forgotten first).

    The one flood rule of this server's logs: the diagnostics filter below keys it by line
    template, the parse guard by (event kind, client) for refusals a client can repeat at
    will (a banned address hammering the API).
    """

    def __init__(
        self,
        *,
        burst: int = BURST,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [window start, events let through, events dropped]
        self._keys: dict[Hashable, list[float]] = {}

    def allow(self, key: Hashable) -> int | None:
        """None to drop this event; else how many of ``key``'s were dropped before it."""
        now = self._clock()
        with self._lock:
            entry = self._keys.get(key)
            if entry is None or now - entry[0] >= self._window:
                dropped = int(entry[2]) if entry else 0
                if len(self._keys) >= MAX_KINDS and entry is None:
                    self._keys.pop(next(iter(self._keys)))
                self._keys[key] = [now, 1, 0]
                return dropped
            if entry[1] < self._burst:
                entry[1] += 1
                return 0
            entry[2] += 1
            return None


class LogRateLimit(logging.Filter):
    """A handler filter letting ``burst`` lines of each kind through per ``window`` seconds."""

    def __init__(
        self,
        *,
        burst: int = BURST,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._throttle = Throttle(burst=burst, window=window, clock=clock)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == AUDIT_LOGGER or record.name.startswith(AUDIT_LOGGER + "."):
            return True
        dropped = self._throttle.allow((record.name, str(record.msg)))
        if dropped:
            record.suppressed = dropped
        return dropped is not None
