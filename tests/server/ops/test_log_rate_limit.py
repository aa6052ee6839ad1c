"""The log flood guard: a few lines of each kind per window, never the audit log."""

from __future__ import annotations

import logging

from m2fp.server.ops.audit_log import AUDIT_LOGGER
from m2fp.server.ops.log_rate_limit import LogRateLimit
from tests.server.conftest import FakeClock


def record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_burst_per_kind_then_a_count_of_what_was_dropped():
    clock = FakeClock()
    limit = LogRateLimit(burst=3, window=60, clock=clock)
    passed = [limit.filter(record("asyncio", "accept failed %d", i)) for i in range(50)]
    assert passed == [True] * 3 + [False] * 47
    assert limit.filter(record("uvicorn.error", "accept failed %d", 1))  # another logger
    assert limit.filter(record("asyncio", "another message"))  # another template
    clock.advance(61)
    after = record("asyncio", "accept failed %d", 99)
    assert limit.filter(after)
    assert after.suppressed == 47


def test_the_audit_log_is_never_thinned():
    limit = LogRateLimit(burst=1, window=60, clock=FakeClock())
    assert all(limit.filter(record(AUDIT_LOGGER, "request")) for _ in range(1000))
