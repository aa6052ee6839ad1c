"""TLS as a client finds it: which protocol versions and which TLS 1.2 cipher suites the
server agrees to, each tried alone the way sslscan does (TLS 1.3 suites are all AEAD).

Handshakes only: nothing is sent after them, and the certificate is not judged here (httpx
verifies it for every other check).
"""

from __future__ import annotations

import socket
import ssl

from m2fp.scan.report import CheckResult
from m2fp.scan.target import Target

OLD_VERSIONS = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
AEAD_MARKS = ("GCM", "CHACHA20", "CCM")
FORWARD_SECRET_KEX = ("ECDHE-", "DHE-")
HANDSHAKE_TIMEOUT = 10.0


def _context(
    version: ssl.TLSVersion | None = None, ciphers: str = "ALL:@SECLEVEL=0"
) -> ssl.SSLContext:
    """A client context that will offer what the server must refuse (old versions, weak
    suites): only the server's answer is under test."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(ciphers)
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


def _handshake(target: Target, context: ssl.SSLContext) -> tuple[str, str] | None:
    """(version, cipher) agreed, or None if the server refused."""
    _, host, port = target.parts
    try:
        with (
            socket.create_connection((host, port), timeout=HANDSHAKE_TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            cipher = tls.cipher()
            return (tls.version() or "", cipher[0] if cipher else "")
    except (ssl.SSLError, ConnectionError, TimeoutError):
        return None


def check_tls_protocols(target: Target) -> CheckResult:
    """TLS 1.0 and 1.1 refused; TLS 1.2 or 1.3 agreed."""
    name = "tls_protocols"
    if not target.https:
        return CheckResult(name, False, "the deployment is served over plain http")
    for version in OLD_VERSIONS:
        try:
            context = _context(version)
        except (ValueError, ssl.SSLError):
            continue  # this machine's OpenSSL cannot even offer it
        agreed = _handshake(target, context)
        if agreed is not None:
            return CheckResult(name, False, f"the server agreed to {agreed[0]}")
    versions = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    modern = [v for v in versions if _handshake(target, _context(v)) is not None]
    if not modern:
        return CheckResult(name, False, "no TLS 1.2 or 1.3 handshake succeeded")
    return CheckResult(name, True, "only " + ", ".join(v.name.replace("_", ".") for v in modern))


def _strong(suite: str) -> bool:
    """A TLS 1.2 suite with forward secrecy and authenticated encryption."""
    return suite.startswith(FORWARD_SECRET_KEX) and any(mark in suite for mark in AEAD_MARKS)


def check_tls_ciphers(target: Target) -> CheckResult:
    """Every TLS 1.2 suite the server agrees to has forward secrecy and is AEAD."""
    name = "tls_ciphers"
    if not target.https:
        return CheckResult(name, False, "the deployment is served over plain http")
    suites = [c["name"] for c in _context().get_ciphers() if c.get("protocol") != "TLSv1.3"]
    agreed = []
    for suite in dict.fromkeys(suites):
        try:
            context = _context(ssl.TLSVersion.TLSv1_2, f"{suite}:@SECLEVEL=0")
        except ssl.SSLError:
            continue
        if _handshake(target, context) is not None:
            agreed.append(suite)
    weak = [suite for suite in agreed if not _strong(suite)]
    if weak:
        return CheckResult(name, False, "weak TLS 1.2 suites accepted: " + ", ".join(weak))
    return CheckResult(name, True, f"{len(agreed)} TLS 1.2 suites, all forward-secret AEAD")
