"""Memory watchdog: readers (cgroup v2, /proc/meminfo), shedding with hysteresis, alerts."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from m2fp.server.ops.alerts import AlertWebhook
from m2fp.server.ops.memory_watchdog import (
    SHED_RETRY_AFTER,
    MemoryShedding,
    MemoryUsage,
    MemoryWatchdog,
    check_alert_percent,
    read_memory,
)
from tests.utils.webhook_receiver import WebhookReceiver

GIB = 1024**3


def fake_proc(root: Path, cgroup_line: str, total_kb: int, available_kb: int) -> Path:
    proc = root / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup_line + "\n")
    (proc / "meminfo").write_text(
        f"MemTotal:       {total_kb} kB\nMemFree:        1 kB\n"
        f"MemAvailable:   {available_kb} kB\nHugePages_Total:       0\n"
    )
    return proc


def fake_cgroup(directory: Path, *, limit: str, current: int, inactive_file: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "memory.max").write_text(limit + "\n")
    (directory / "memory.current").write_text(f"{current}\n")
    (directory / "memory.stat").write_text(f"anon 1\nfile 2\ninactive_file {inactive_file}\n")


def test_meminfo_when_there_is_no_cgroup_v2(tmp_path):
    proc = fake_proc(tmp_path, "4:memory:/x", total_kb=1000, available_kb=250)
    usage = read_memory(proc=proc, cgroup_root=tmp_path / "cgroup")
    assert usage == MemoryUsage(used=750 * 1024, limit=1000 * 1024)
    assert usage.percent == 75.0


def test_cgroup_v2_working_set_against_its_limit(tmp_path):
    proc = fake_proc(tmp_path, "0::/", total_kb=10**9, available_kb=10**9)
    cgroup = tmp_path / "cgroup"
    fake_cgroup(cgroup, limit=str(4 * GIB), current=3 * GIB, inactive_file=GIB)
    usage = read_memory(proc=proc, cgroup_root=cgroup)
    assert usage == MemoryUsage(used=2 * GIB, limit=4 * GIB)  # page cache is not pressure


def test_cgroup_v2_limit_of_an_ancestor_is_used(tmp_path):
    proc = fake_proc(tmp_path, "0::/system.slice/m2fp.service", total_kb=10**9, available_kb=1)
    cgroup = tmp_path / "cgroup"
    fake_cgroup(cgroup / "system.slice" / "m2fp.service", limit="max", current=1, inactive_file=0)
    fake_cgroup(cgroup / "system.slice", limit=str(2 * GIB), current=GIB, inactive_file=0)
    assert read_memory(proc=proc, cgroup_root=cgroup).percent == 50.0


def test_unlimited_cgroup_falls_back_to_meminfo(tmp_path):
    proc = fake_proc(tmp_path, "0::/", total_kb=1000, available_kb=900)
    cgroup = tmp_path / "cgroup"
    fake_cgroup(cgroup, limit="max", current=GIB, inactive_file=0)
    assert read_memory(proc=proc, cgroup_root=cgroup).percent == 10.0


def test_this_machine_can_be_read():
    usage = read_memory()
    assert 0 < usage.used < usage.limit


class Samples:
    """An injectable memory reader returning scripted percentages."""

    def __init__(self, *percents: float) -> None:
        self.percents = list(percents)

    def __call__(self) -> MemoryUsage:
        return MemoryUsage(used=int(self.percents.pop(0) * 100), limit=10_000)


def test_sheds_above_threshold_until_below_with_hysteresis(caplog):
    seen, changes = [], []
    watchdog = MemoryWatchdog(
        alert_percent=90,
        read=Samples(50, 91, 88, 86, 84.9, 89),
        on_sample=seen.append,
        on_change=changes.append,
    )
    states = []
    with caplog.at_level(logging.WARNING):
        for _ in range(6):
            asyncio.run(watchdog.check())
            states.append(watchdog.shedding)
    assert states == [False, True, True, True, False, False]
    assert changes == [True, False]
    assert [round(s.percent) for s in seen] == [50, 91, 88, 86, 85, 89]
    assert "memory at 91%" in caplog.text
    assert "accepting parse requests again" in caplog.text


def test_admit_refuses_while_shedding_with_a_retry_after():
    watchdog = MemoryWatchdog(alert_percent=90, read=Samples(95, 50))
    watchdog.admit()
    asyncio.run(watchdog.check())
    with pytest.raises(MemoryShedding) as refused:
        watchdog.admit()
    assert (refused.value.reason, refused.value.retry_after) == ("overloaded", SHED_RETRY_AFTER)
    asyncio.run(watchdog.check())
    watchdog.admit()


@pytest.mark.parametrize("percent", [0, -1, 100, 150, float("nan")])
def test_alert_percent_outside_0_to_100_is_refused(percent):
    # the setting's name is added by Settings: test_settings.py
    with pytest.raises(ValueError, match="between 0 and 100"):
        MemoryWatchdog(alert_percent=percent)


def test_alert_percent_inside_0_to_100_is_accepted():
    assert [check_alert_percent(p) for p in (0.5, 99.9)] == [0.5, 99.9]


def test_unreadable_memory_is_logged_and_changes_nothing(caplog):
    def broken() -> MemoryUsage:
        raise OSError("gone")

    watchdog = MemoryWatchdog(alert_percent=90, read=broken)
    with caplog.at_level(logging.WARNING):
        asyncio.run(watchdog.check())
    assert watchdog.shedding is False
    assert "cannot read memory usage" in caplog.text


def test_high_memory_posts_one_debounced_alert_without_personal_data(clock):
    with WebhookReceiver() as receiver:
        alerts = AlertWebhook(url=receiver.url, min_interval=600, clock=clock)
        watchdog = MemoryWatchdog(alert_percent=90, read=Samples(95, 96, 97), alerts=alerts)

        async def three_checks():
            await watchdog.check()
            await watchdog.check()
            clock.advance(600)
            await watchdog.check()

        asyncio.run(three_checks())
    assert len(receiver.posts) == 2  # the second check was inside the debounce interval
    text = receiver.posts[0]["text"]
    assert "95%" in text and "90%" in text and "503" in text


def test_background_task_samples_until_stopped():
    async def scenario():
        samples = Samples(*([95.0] * 1000))
        watchdog = MemoryWatchdog(alert_percent=90, read=samples, interval=0.001)
        watchdog.start()
        for _ in range(1000):
            if watchdog.shedding:
                break
            await asyncio.sleep(0.001)
        await watchdog.stop()
        left = len(samples.percents)
        await asyncio.sleep(0.01)
        assert watchdog.shedding
        assert len(samples.percents) == left  # no sampling after stop

    asyncio.run(scenario())
