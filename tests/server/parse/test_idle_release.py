"""The device memory release waits for an idle period: a parse within it cancels the release,
shutdown cancels it, and it runs once the service stayed idle."""

from __future__ import annotations

import threading
import time

import pytest

from m2fp.server.parse.idle_release import IdleRelease

DEADLINE = 30.0


def wait_for(condition, deadline: float = DEADLINE) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_release_runs_once_after_the_idle_period():
    released = threading.Event()
    calls = []
    idle = IdleRelease(lambda: calls.append(1) or released.set(), after=0.01)
    idle.begin()
    idle.end()
    assert released.wait(DEADLINE)
    idle.close()
    assert calls == [1]


def test_a_parse_within_the_idle_period_cancels_the_release():
    calls = []
    idle = IdleRelease(lambda: calls.append(1), after=3600)
    idle.begin()
    idle.end()
    idle.begin()  # the next request arrives: its memory is reused, not re-allocated
    assert idle._timer is None
    idle.end()
    assert idle._timer is not None and idle._timer.is_alive()
    idle.close()
    assert idle._timer is None and calls == []


def test_no_release_while_a_parse_is_running():
    calls = []
    idle = IdleRelease(lambda: calls.append(1), after=0.0)
    idle.begin()
    idle.begin()
    idle.end()  # one of two parses ended: not idle
    assert idle._timer is None
    idle.end()
    assert wait_for(lambda: calls == [1])
    idle.close()


def test_a_stale_timer_does_not_release():
    """A timer that fires just as a parse begins (cancel came too late) must not release."""
    calls = []
    idle = IdleRelease(lambda: calls.append(1), after=3600)
    idle.begin()
    idle.end()
    stale = idle._idle_since
    idle.begin()
    idle._fire(stale)
    idle.end()
    idle._fire(stale)  # a newer idle period began since
    assert calls == []
    idle.close()


def test_negative_period_is_refused():
    with pytest.raises(ValueError, match="after"):
        IdleRelease(lambda: None, after=-1)
