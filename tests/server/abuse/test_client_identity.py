"""Client identity: X-Forwarded-For only from trusted proxies, API keys hashed and matched."""

from __future__ import annotations

import hashlib
import ipaddress

import pytest

from m2fp.server.abuse.client_identity import (
    ApiKeyRequired,
    ApiKeys,
    ClientIdentity,
    InvalidApiKey,
    TrustedProxies,
    address_identity,
    check_trusted_proxies,
    presented_api_key,
)

# proxy lists that would let a client forge its address, or are no addresses at all
REFUSED_PROXIES = [("*",), ("0.0.0.0/0",), ("10.0.0.0/8", "::/0"), ("proxy.example",)]

PROXIES = TrustedProxies(
    networks=[ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
)


def test_untrusted_peer_is_the_client_and_its_header_is_ignored():
    assert PROXIES.client_address("203.0.113.7", ["198.51.100.1"]) == "203.0.113.7"


def test_no_trusted_proxies_configured_ignores_the_header_even_from_private_peers():
    nobody = TrustedProxies(networks=[])
    assert nobody.client_address("10.0.0.1", ["198.51.100.1"]) == "10.0.0.1"


def test_trusted_peer_gives_the_rightmost_untrusted_hop():
    # The client wrote "1.1.1.1" itself; our proxy appended the address it really saw.
    assert PROXIES.client_address("10.0.0.1", ["1.1.1.1, 198.51.100.9"]) == "198.51.100.9"


def test_chain_of_trusted_proxies_is_walked_right_to_left():
    header = ["1.1.1.1, 198.51.100.9, 10.1.1.1", "10.2.2.2"]
    assert PROXIES.client_address("10.0.0.1", header) == "198.51.100.9"


def test_trusted_peer_without_header_is_the_client():
    assert PROXIES.client_address("10.0.0.1", []) == "10.0.0.1"


def test_all_hops_trusted_gives_the_leftmost():
    assert PROXIES.client_address("10.0.0.1", ["10.3.3.3, 10.2.2.2"]) == "10.3.3.3"


def test_garbage_reported_by_a_trusted_proxy_makes_that_proxy_the_client():
    assert PROXIES.client_address("10.0.0.1", ["1.1.1.1, not-an-ip"]) == "10.0.0.1"
    assert PROXIES.client_address("10.0.0.1", ["not-an-ip, 10.2.2.2"]) == "10.2.2.2"


def test_ports_brackets_and_mapped_ipv4_are_normalised():
    assert PROXIES.client_address("10.0.0.1", ["198.51.100.9:4711"]) == "198.51.100.9"
    assert PROXIES.client_address("10.0.0.1", ["[2001:db8::5]:443"]) == "2001:db8::5"
    assert PROXIES.client_address("::ffff:203.0.113.7", []) == "203.0.113.7"
    assert PROXIES.client_address("fd00::1", ["2001:db8::5"]) == "2001:db8::5"


def test_peer_that_is_not_an_ip_is_kept_verbatim_and_unknown_peer_is_named():
    assert PROXIES.client_address("testclient", ["1.1.1.1"]) == "testclient"
    assert PROXIES.client_address(None, ["1.1.1.1"]) == "unknown"


def test_huge_header_is_only_walked_for_its_last_hops():
    header = ["10.9.9.9, " * 1000 + "10.0.0.2"]
    assert PROXIES.client_address("10.0.0.1", header).startswith("10.")


def test_ipv6_clients_share_a_bucket_per_64():
    one = address_identity("2001:db8:1:2::1")
    other = address_identity("2001:db8:1:2:ffff::9")
    assert one.bucket == other.bucket == "ip:2001:db8:1:2::/64"
    assert one.address == "2001:db8:1:2::1"
    assert address_identity("2001:db8:1:3::1").bucket != one.bucket
    assert address_identity("203.0.113.7") == ClientIdentity(
        bucket="ip:203.0.113.7", address="203.0.113.7"
    )
    assert address_identity("testclient").bucket == "peer:testclient"


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer abc", None, "abc"),
        ("bearer  abc ", None, "abc"),
        (None, "xyz", "xyz"),
        ("Bearer abc", "xyz", "abc"),
        ("Basic dXNlcjpwYXNz", None, None),  # a reverse proxy's basic auth is not an API key
        ("Basic dXNlcjpwYXNz", "xyz", "xyz"),
        ("Bearer ", None, None),
        (None, "  ", None),
        (None, None, None),
    ],
)
def test_presented_api_key(authorization, x_api_key, expected):
    assert presented_api_key(authorization, x_api_key) == expected


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_valid_key_gives_a_key_identity_without_revealing_the_key():
    keys = ApiKeys(digests=[_digest("other"), _digest("s3cret-key").upper()])
    identity = keys.identify("s3cret-key", "203.0.113.7")
    assert identity == ClientIdentity(
        bucket=f"key:{_digest('s3cret-key')[:12]}", address="203.0.113.7", api_key=True
    )
    assert "s3cret" not in identity.bucket
    assert ApiKeys.digest("s3cret-key") == _digest("s3cret-key")


def test_wrong_key_is_refused_even_when_keys_are_optional():
    keys = ApiKeys(digests=[_digest("good")])
    with pytest.raises(InvalidApiKey):
        keys.identify("bad", "203.0.113.7")
    with pytest.raises(InvalidApiKey):
        ApiKeys(digests=[]).identify("anything", "203.0.113.7")


def test_missing_key_is_anonymous_unless_required():
    assert ApiKeys(digests=[_digest("good")]).identify(None, "203.0.113.7").bucket == (
        "ip:203.0.113.7"
    )
    with pytest.raises(ApiKeyRequired):
        ApiKeys(digests=[_digest("good")], required=True).identify(None, "203.0.113.7")


def test_keys_must_be_digests_and_required_keys_must_exist():
    with pytest.raises(ValueError, match="sha256"):
        ApiKeys(digests=["plaintext-key"])
    with pytest.raises(ValueError, match="empty"):
        ApiKeys(digests=[], required=True)


def test_match_compares_against_every_digest(monkeypatch):
    compared = []
    import m2fp.server.abuse.client_identity as module

    real = module.hmac.compare_digest

    def spy(a, b):
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(module.hmac, "compare_digest", spy)
    digests = [_digest("a"), _digest("b"), _digest("c")]
    assert ApiKeys(digests=digests).match("a") == digests[0]
    assert len(compared) == 3  # no early exit on the first match


@pytest.mark.parametrize("items", REFUSED_PROXIES)
def test_proxy_lists_trusting_everyone_or_no_address_are_refused(items):
    with pytest.raises(ValueError, match=r"every client|IP addresses or CIDR"):
        check_trusted_proxies(items)


def test_proxy_addresses_become_networks():
    assert check_trusted_proxies(["10.0.0.1", "fd00::/8"]) == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("fd00::/8"),
    )
