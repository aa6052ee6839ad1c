"""Rate limits and bans in a real redis-server: shared by instances, fail closed, recovery."""

from __future__ import annotations

import time

import pytest

from m2fp.server.abuse.bans import Banned, RedisBanList, open_ban_list
from m2fp.server.abuse.client_identity import ClientIdentity
from m2fp.server.abuse.limit_storage import (
    StorageUnavailable,
    close_storage,
    open_storage,
    with_password,
)
from m2fp.server.abuse.rate_limit import RateLimited, RateLimiter, parse_rate_limit

ALICE = ClientIdentity(bucket="ip:203.0.113.7", address="203.0.113.7")


def limiter(storage) -> RateLimiter:
    return RateLimiter(
        storage=storage,
        anonymous_limits=parse_rate_limit("5/minute"),
        api_key_limits=parse_rate_limit("60/minute"),
    )


def test_two_instances_share_one_quota(redis_server):
    one, two = open_storage(redis_server.uri), open_storage(redis_server.uri)
    try:
        first, second = limiter(one), limiter(two)
        for rate in (first, second, first, second, first):
            rate.hit(ALICE)
        with pytest.raises(RateLimited) as refused:
            second.hit(ALICE)
        assert 55 <= refused.value.retry_after <= 60
        with pytest.raises(RateLimited):
            first.hit(ALICE)
        keys = redis_server.client().keys("*")
        assert keys and all(key.startswith(b"m2fp:") for key in keys)
    finally:
        close_storage(one)
        close_storage(two)


def test_ban_is_seen_by_every_instance_and_expires_in_redis(redis_server):
    one, two = open_storage(redis_server.uri), open_storage(redis_server.uri)
    try:
        first = open_ban_list(one, ban_after=3, ban_seconds=3600)
        second = open_ban_list(two, ban_after=3, ban_seconds=3600)
        assert isinstance(first, RedisBanList)
        assert first.record_rejection(ALICE.bucket) == 2
        assert second.record_rejection(ALICE.bucket) == 1  # strikes are shared too
        first.check(ALICE.bucket)
        assert first.record_rejection(ALICE.bucket) == 0
        with pytest.raises(Banned) as refused:
            second.check(ALICE.bucket)
        assert 3590 <= refused.value.retry_after <= 3600
        client = redis_server.client()
        assert 3590 <= client.ttl("m2fp:ban:ip:203.0.113.7") <= 3600
        assert client.exists("m2fp:strikes:ip:203.0.113.7") == 0
    finally:
        close_storage(one)
        close_storage(two)


def test_good_upload_resets_strikes_and_strikes_carry_an_expiry(redis_server):
    storage = open_storage(redis_server.uri)
    try:
        bans = open_ban_list(storage, ban_after=3, ban_seconds=600)
        bans.record_rejection(ALICE.bucket)
        bans.record_rejection(ALICE.bucket)
        assert 590 <= redis_server.client().ttl("m2fp:strikes:ip:203.0.113.7") <= 600
        bans.record_success(ALICE.bucket)
        assert bans.record_rejection(ALICE.bucket) == 2
        assert bans.record_rejection(ALICE.bucket) == 1
        bans.check(ALICE.bucket)
    finally:
        close_storage(storage)


def test_short_ban_lapses_in_redis(redis_server):
    storage = open_storage(redis_server.uri)
    try:
        bans = open_ban_list(storage, ban_after=1, ban_seconds=1)
        assert bans.record_rejection(ALICE.bucket) == 0
        with pytest.raises(Banned) as refused:
            bans.check(ALICE.bucket)
        assert refused.value.retry_after == 1
        redis_server.client().pexpire("m2fp:ban:ip:203.0.113.7", 1)  # let Redis expire it now
        time.sleep(0.01)
        bans.check(ALICE.bucket)
    finally:
        close_storage(storage)


# a refusal while Redis is down: the storage's timeouts allow two tries of 0.5 s connect +
# 0.5 s read (2 s); the rest is room for a loaded machine. Without timeouts a call would hang.
FAIL_FAST_SECONDS = 5.0


def test_redis_down_fails_closed_fast_and_recovers_without_restart(redis_server):
    storage = open_storage(redis_server.uri)
    try:
        rate = limiter(storage)
        bans = open_ban_list(storage, ban_after=3, ban_seconds=3600)
        rate.hit(ALICE)
        bans.check(ALICE.bucket)
        redis_server.stop()
        for call in (
            lambda: rate.hit(ALICE),
            lambda: bans.check(ALICE.bucket),
            lambda: bans.record_rejection(ALICE.bucket),
            lambda: bans.record_success(ALICE.bucket),
        ):
            started = time.monotonic()
            with pytest.raises(StorageUnavailable):
                call()
            assert time.monotonic() - started < FAIL_FAST_SECONDS
        redis_server.start()  # same port, empty database
        rate.hit(ALICE)
        bans.check(ALICE.bucket)
        assert bans.record_rejection(ALICE.bucket) == 2
    finally:
        close_storage(storage)


def test_redis_calls_are_bounded_by_short_timeouts_and_one_retry():
    storage = open_storage("redis://127.0.0.1:1/0")
    try:
        pool = storage.get_connection().connection_pool
        kwargs = pool.connection_kwargs
        assert kwargs["socket_timeout"] == 0.5
        assert kwargs["socket_connect_timeout"] == 0.5
        assert kwargs["retry"].get_retries() == 1
    finally:
        close_storage(storage)


def test_redis_down_at_start_up_only_fails_requests(redis_server):
    redis_server.stop()
    storage = open_storage(redis_server.uri)  # no connection is attempted here
    try:
        rate = limiter(storage)
        with pytest.raises(StorageUnavailable):
            rate.hit(ALICE)
        redis_server.start()
        rate.hit(ALICE)
    finally:
        close_storage(storage)


def test_password_from_its_file_logs_in_to_a_redis_that_requires_one(redis_server):
    """``with_password`` quotes the password so that Redis gets it back byte for byte."""
    password = "p@ss/word:with%odd"
    admin = redis_server.client()
    admin.config_set("requirepass", password)
    storage = open_storage(with_password(redis_server.uri, password))
    refused = open_storage(with_password(redis_server.uri, "not-the-password"))
    try:
        limiter(storage).hit(ALICE)
        with pytest.raises(StorageUnavailable):
            limiter(refused).hit(ALICE)
    finally:
        close_storage(storage)
        close_storage(refused)
        admin.close()
