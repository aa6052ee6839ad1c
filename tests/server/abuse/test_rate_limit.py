"""The parse rate limiter: moving window, per-client buckets, Retry-After from the window."""

from __future__ import annotations

import pytest
from limits.storage import MemoryStorage

from m2fp.server.abuse.client_identity import ClientIdentity
from m2fp.server.abuse.limit_storage import StorageUnavailable, check_storage_uri, open_storage
from m2fp.server.abuse.rate_limit import RateLimited, RateLimiter, parse_rate_limit

ALICE = ClientIdentity(bucket="ip:203.0.113.7", address="203.0.113.7")
BOB = ClientIdentity(bucket="ip:198.51.100.9", address="198.51.100.9")
KEYED = ClientIdentity(bucket="key:0123456789ab", address="203.0.113.7", api_key=True)


def limiter(clock, anonymous="5/minute", api_key="60/minute") -> RateLimiter:
    return RateLimiter(
        storage=MemoryStorage(),
        anonymous_limits=parse_rate_limit(anonymous),
        api_key_limits=parse_rate_limit(api_key),
        clock=clock,
    )


def test_sixth_request_in_a_minute_is_refused_with_retry_after(clock):
    rate = limiter(clock)
    for _ in range(5):
        rate.hit(ALICE)
        clock.advance(1)
    with pytest.raises(RateLimited) as refused:
        rate.hit(ALICE)
    # The first hit was 5 s ago; it leaves the 60 s window in 55 s.
    assert refused.value.retry_after == 55


def test_retry_after_is_exact_and_the_window_moves(clock):
    rate = limiter(clock)
    for _ in range(5):  # at t = 0, 1, 2, 3, 4
        rate.hit(ALICE)
        clock.advance(1)
    clock.advance(54.5)  # t = 59.5
    with pytest.raises(RateLimited) as refused:
        rate.hit(ALICE)
    assert refused.value.retry_after == 1  # 0.5 s rounded up, never 0
    clock.advance(0.6)  # t = 60.1: the hit of t = 0 has left the window, the others have not
    rate.hit(ALICE)
    with pytest.raises(RateLimited) as refused:
        rate.hit(ALICE)
    assert refused.value.retry_after == 1


def test_no_burst_across_a_window_boundary(clock):
    # A fixed window would allow 5 at the end of one minute and 5 more at the start of the next.
    rate = limiter(clock)
    clock.advance(55)
    for _ in range(5):
        rate.hit(ALICE)
    clock.advance(10)
    with pytest.raises(RateLimited):
        rate.hit(ALICE)


def test_refused_requests_do_not_extend_the_wait(clock):
    rate = limiter(clock)
    for _ in range(5):
        rate.hit(ALICE)
    for _ in range(20):
        with pytest.raises(RateLimited):
            rate.hit(ALICE)
    clock.advance(60.01)
    rate.hit(ALICE)


def test_clients_have_separate_buckets(clock):
    rate = limiter(clock)
    for _ in range(5):
        rate.hit(ALICE)
    rate.hit(BOB)
    with pytest.raises(RateLimited):
        rate.hit(ALICE)


def test_api_keys_have_their_own_limit(clock):
    rate = limiter(clock, anonymous="2/minute", api_key="4/minute")
    for _ in range(4):
        rate.hit(KEYED)
    with pytest.raises(RateLimited):
        rate.hit(KEYED)
    rate.hit(ALICE)  # the key's use did not spend the anonymous quota of the same address
    rate.hit(ALICE)
    with pytest.raises(RateLimited):
        rate.hit(ALICE)


def test_several_limits_all_apply(clock):
    rate = limiter(clock, anonymous="3/minute;4/hour")
    for _ in range(3):
        rate.hit(ALICE)
    clock.advance(61)
    rate.hit(ALICE)
    with pytest.raises(RateLimited) as refused:
        rate.hit(ALICE)
    assert refused.value.retry_after == 3600 - 61


BAD_LIMITS = ["", "five per minute", "5/fortnight", ";"]
UNSUPPORTED_STORAGE = ["memcached://127.0.0.1", "mongodb://x", "file:///tmp/x", "x"]


@pytest.mark.parametrize("text", BAD_LIMITS)
def test_bad_limit_strings_are_refused_with_one_line(text):
    # the setting's name is added by Settings: test_settings.py
    with pytest.raises(ValueError, match="must look like '5/minute'"):
        parse_rate_limit(text)


def test_unreachable_redis_fails_closed_quickly():
    # Nothing listens on port 1 of loopback: connection refused at once.
    storage = open_storage("redis://127.0.0.1:1/0")
    rate = RateLimiter(
        storage=storage,
        anonymous_limits=parse_rate_limit("5/minute"),
        api_key_limits=parse_rate_limit("60/minute"),
    )
    with pytest.raises(StorageUnavailable) as refused:
        rate.hit(ALICE)
    assert refused.value.retry_after > 0


@pytest.mark.parametrize("uri", UNSUPPORTED_STORAGE)
def test_unsupported_storage_is_refused(uri):
    with pytest.raises(ValueError, match="must start with one of memory://, redis://"):
        open_storage(uri)
    with pytest.raises(ValueError, match="must start with one of"):
        check_storage_uri(uri)


def test_refused_storage_uri_is_not_echoed():
    with pytest.raises(ValueError) as refused:
        check_storage_uri("memcached://user:hunter2@cache.example")
    assert "hunter2" not in str(refused.value)


def test_supported_storage_uris_pass_their_check():
    for uri in ("memory://", "redis://:secret@127.0.0.1:6379/0", "rediss://h", "redis+unix:///s"):
        assert check_storage_uri(uri) == uri
