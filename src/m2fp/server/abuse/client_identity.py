"""Who is asking: the client address behind trusted proxies, and the optional API key.

Every per-client decision (rate limit, ban, audit log) keys on the identity built here, so a
client must not be able to choose it. ``X-Forwarded-For`` is client-controlled text: it is read
only when the direct TCP peer is a proxy we trust, and then only the hops our proxies appended
(right to left) are believed. Uvicorn must run with ``proxy_headers=False`` so that the peer is
the real socket peer.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from m2fp.weights.sha256_pin import sha256_pin

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# An IPv6 user typically owns a whole /64: keying on the full address would give one attacker
# 2**64 rate-limit buckets.
IPV6_BUCKET_PREFIX = 64
# A real chain of proxies is a handful of hops; a longer header is ignored beyond this many
# entries so that a huge header costs nothing to walk.
MAX_FORWARDED_HOPS = 16
# Length of the key digest shown in the client identity (enough to tell keys apart in logs).
KEY_ID_HEX_CHARS = 12


class InvalidApiKey(Exception):
    """A key was presented and matches none of the configured keys."""


class ApiKeyRequired(Exception):
    """Keys are required and the request carried none."""


@dataclass(frozen=True)
class ClientIdentity:
    """The client as the abuse protections see it.

    Attributes:
        bucket: the rate-limit and ban key: ``ip:203.0.113.7``, ``ip:2001:db8:1:2::/64`` or
            ``key:<first 12 hex digits of the key's sha256>``.
        address: the resolved client IP (or the raw peer name when it is not an IP), for the
            audit log, which hashes or truncates it.
        api_key: True when the request was authenticated by an API key.
    """

    bucket: str
    address: str
    api_key: bool = False


def _parse_ip(text: str) -> IPAddress | None:
    """An IP from a peer name or a forwarded hop, tolerating ``[v6]``, ``[v6]:port`` and
    ``v4:port`` as some proxies write them; None when it is not an address."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _bucket_for(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((address, IPV6_BUCKET_PREFIX), strict=False)
        return f"ip:{network}"
    return f"ip:{address}"


def check_trusted_proxies(items: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The networks of our proxies, from addresses or CIDR networks.

    A proxy we trust may write the client address; trusting everyone (``*``, a /0) would let
    every client forge its own, and with it its rate-limit bucket and its ban.

    Raises:
        ValueError: ``*``, a /0 network, or something that is not an address or network.
    """
    networks = []
    for item in items:
        if item == "*":
            raise ValueError("'*' would trust every client to forge its address")
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError("must be IP addresses or CIDR networks") from None
        if network.prefixlen == 0:
            raise ValueError("a /0 network would trust every client to forge its address")
        networks.append(network)
    return tuple(networks)


class TrustedProxies:
    """Resolves the client address of a request from its peer and ``X-Forwarded-For``."""

    def __init__(self, *, networks: Sequence[IPNetwork]) -> None:
        self._networks = tuple(networks)

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._networks)

    def is_trusted_peer(self, peer: str | None) -> bool:
        """The direct TCP peer is one of our proxies (so its forwarded headers count)."""
        address = _parse_ip(peer) if peer else None
        return address is not None and self._trusted(address)

    def client_address(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client address.

        Args:
            peer: the direct TCP peer host (``request.client.host``), None when unknown.
            forwarded_for: every ``X-Forwarded-For`` header value, in order.

        Returns:
            The peer itself unless it is a trusted proxy; otherwise the right-most hop of
            ``X-Forwarded-For`` that is not a trusted proxy (hops to its left were written by the
            client and are ignored). If every hop is trusted, the left-most one. If a trusted proxy
            reported something that is not an address, that proxy is treated as the client.
        """
        if peer is None:
            return "unknown"
        current = _parse_ip(peer)
        if current is None or not self._networks or not self._trusted(current):
            return str(current) if current is not None else peer
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops[-MAX_FORWARDED_HOPS:]):
            address = _parse_ip(hop)
            if address is None:
                return str(current)
            current = address
            if not self._trusted(current):
                return str(current)
        return str(current)


def address_identity(address: str) -> ClientIdentity:
    """The anonymous identity of a client address (``ip:`` bucket, IPv6 per /64)."""
    parsed = _parse_ip(address)
    bucket = _bucket_for(parsed) if parsed is not None else f"peer:{address}"
    return ClientIdentity(bucket=bucket, address=address)


def presented_api_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request carries: ``Authorization: Bearer K``, else ``X-API-Key: K``.

    Another Authorization scheme (e.g. Basic, added by a reverse proxy guarding the WebUI) is not
    an API key and is ignored.
    """
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None


def check_api_key_digests(digests: Iterable[str]) -> tuple[str, ...]:
    """The digests, trimmed and lower-case, if each is a sha256 hex digest, else ValueError.

    Only digests are configured, never the keys themselves, so that a leaked configuration
    does not leak a key. The message never repeats a value: it may be a key pasted by mistake.
    """
    try:
        return tuple(sha256_pin(digest) for digest in digests)
    except ValueError:
        raise ValueError(
            "must list sha256 hex digests of the keys, never the keys themselves"
        ) from None


def check_api_key_policy(digests: Sequence[str], *, required: bool) -> None:
    """ValueError if keys are ``required`` but there is none: every parse request would be
    refused."""
    if required and not digests:
        raise ValueError("API keys are required but the list of digests is empty")


class ApiKeys:
    """The configured API keys, held only as sha256 hex digests."""

    def __init__(self, *, digests: Sequence[str], required: bool = False) -> None:
        normalised = check_api_key_digests(digests)
        check_api_key_policy(normalised, required=required)
        self._digests = normalised
        self.required = required

    @staticmethod
    def digest(key: str) -> str:
        """The sha256 hex digest of ``key``, as it is configured."""
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def match(self, key: str) -> str | None:
        """The configured digest equal to ``key``'s, compared in constant time against every
        configured digest (no early exit), or None."""
        presented = self.digest(key).encode("ascii")
        found = None
        for digest in self._digests:
            if hmac.compare_digest(presented, digest.encode("ascii")):
                found = digest
        return found

    def identify(self, key: str | None, address: str) -> ClientIdentity:
        """The identity of a request from ``address`` carrying ``key`` (or none).

        Raises:
            InvalidApiKey: a key was presented and is not one of ours.
            ApiKeyRequired: keys are required and none was presented.
        """
        if key is None:
            if self.required:
                raise ApiKeyRequired
            return address_identity(address)
        digest = self.match(key)
        if digest is None:
            raise InvalidApiKey
        bucket = f"key:{digest[:KEY_ID_HEX_CHARS]}"
        return ClientIdentity(bucket=bucket, address=address, api_key=True)
