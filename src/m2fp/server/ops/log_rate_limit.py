"""At most a few identical log lines per minute from everything but the audit log.

Under attack the server's own diagnostics become the flood: with the descriptors exhausted
asyncio logged ``socket.accept() out of system resource`` with a traceback hundreds of times a
second (about 2 MB/s), and uvicorn logs every malformed request. A line is identified by its
logger and message template (not its arguments); after ``burst`` of one kind in a ``window``,
the rest are dropped and the next one let through says how many were (``suppressed``). The
audit log (``m2fp.audit``: one line per request and per security event) is never thinned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from m2fp.server.ops.audit_log import AUDIT_LOGGER

BURST = 5
WINDOW = 60.0
# kinds of line remembered at most; beyond, the oldest windows are forgotten
MAX_KINDS = 1024


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
        self._burst = burst
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        # kind -> [window start, lines let through, lines dropped]
        self._kinds: dict[tuple[str, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == AUDIT_LOGGER or record.name.startswith(AUDIT_LOGGER + "."):
            return True
        kind = (record.name, str(record.msg))
        now = self._clock()
        with self._lock:
            entry = self._kinds.get(kind)
            if entry is None or now - entry[0] >= self._window:
                dropped = int(entry[2]) if entry else 0
                if len(self._kinds) >= MAX_KINDS and entry is None:
                    self._kinds.pop(next(iter(self._kinds)))
                self._kinds[kind] = [now, 1, 0]
                if dropped:
                    record.suppressed = dropped
                return True
            if entry[1] < self._burst:
                entry[1] += 1
                return True
            entry[2] += 1
            return False
