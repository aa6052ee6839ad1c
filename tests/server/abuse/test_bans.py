"""Bans after consecutive rejected uploads, in memory (Redis: test_redis_storage.py)."""

from __future__ import annotations

import pytest
from limits.storage import MemoryStorage

from m2fp.server.abuse.bans import (
    Banned,
    MemoryBanList,
    check_ban_after,
    check_ban_seconds,
    open_ban_list,
)

CLIENT = "ip:203.0.113.7"


def bans(clock, *, ban_after=3, ban_seconds=3600, max_clients=100_000) -> MemoryBanList:
    return MemoryBanList(
        ban_after=ban_after, ban_seconds=ban_seconds, clock=clock, max_clients=max_clients
    )


def test_third_rejection_bans_and_the_ban_expires(clock):
    ban_list = bans(clock)
    assert ban_list.record_rejection(CLIENT) == 2
    assert ban_list.record_rejection(CLIENT) == 1
    ban_list.check(CLIENT)
    assert ban_list.record_rejection(CLIENT) == 0
    with pytest.raises(Banned) as refused:
        ban_list.check(CLIENT)
    assert refused.value.retry_after == 3600
    clock.advance(3599.5)
    with pytest.raises(Banned) as refused:
        ban_list.check(CLIENT)
    assert refused.value.retry_after == 1
    clock.advance(0.5)
    ban_list.check(CLIENT)  # lapsed


def test_a_good_upload_resets_the_count(clock):
    ban_list = bans(clock)
    ban_list.record_rejection(CLIENT)
    ban_list.record_rejection(CLIENT)
    ban_list.record_success(CLIENT)
    assert ban_list.record_rejection(CLIENT) == 2
    assert ban_list.record_rejection(CLIENT) == 1
    ban_list.check(CLIENT)
    assert ban_list.record_rejection(CLIENT) == 0


def test_strikes_lapse_after_ban_seconds(clock):
    ban_list = bans(clock, ban_seconds=600)
    ban_list.record_rejection(CLIENT)
    ban_list.record_rejection(CLIENT)
    clock.advance(601)
    assert ban_list.record_rejection(CLIENT) == 2
    ban_list.check(CLIENT)


def test_after_a_ban_lapses_the_client_starts_from_zero(clock):
    ban_list = bans(clock, ban_after=2, ban_seconds=60)
    ban_list.record_rejection(CLIENT)
    ban_list.record_rejection(CLIENT)
    clock.advance(60)
    ban_list.check(CLIENT)
    assert ban_list.record_rejection(CLIENT) == 1


def test_clients_are_counted_separately(clock):
    ban_list = bans(clock)
    for _ in range(3):
        ban_list.record_rejection(CLIENT)
    ban_list.check("ip:198.51.100.9")
    assert ban_list.record_rejection("ip:198.51.100.9") == 2


def test_memory_is_bounded_under_a_flood_of_addresses_and_bans_survive(clock):
    ban_list = bans(clock, max_clients=100)
    for _ in range(3):
        ban_list.record_rejection(CLIENT)
    for i in range(1000):
        ban_list.record_rejection(f"ip:10.0.{i // 256}.{i % 256}")
    assert len(ban_list._strikes) + len(ban_list._bans) <= 100
    with pytest.raises(Banned):
        ban_list.check(CLIENT)


NONSENSE_POLICIES = [(0, 60), (3, 0), (1001, 60), (3, 30 * 86400 + 1)]


@pytest.mark.parametrize(("ban_after", "ban_seconds"), NONSENSE_POLICIES)
def test_nonsense_policy_is_refused(ban_after, ban_seconds):
    # the settings' names are added by Settings: test_settings.py
    with pytest.raises(ValueError, match="must be between 1 and"):
        MemoryBanList(ban_after=ban_after, ban_seconds=ban_seconds)


def test_policy_checks_return_what_they_accept():
    assert (check_ban_after(1), check_ban_after(1000)) == (1, 1000)
    assert (check_ban_seconds(1), check_ban_seconds(30 * 86400)) == (1, 30 * 86400)


def test_memory_storage_gives_a_memory_ban_list():
    assert isinstance(open_ban_list(MemoryStorage(), ban_after=3, ban_seconds=60), MemoryBanList)
