"""The deployment being scanned: its URLs, the HTTP client and the probes' marker."""

from __future__ import annotations

import secrets
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

# Probes carry this in paths, names and origins; it must never come back in an answer.
MARKER_PREFIX = "m2fp-scan-"
FOREIGN_ORIGIN = "https://m2fp-scan.invalid"
FOREIGN_HOST = "m2fp-scan.invalid"


@dataclass
class Target:
    """A deployment under scan.

    Attributes:
        base: the URL given, without a trailing slash (``https://m2fp.example.org``).
        http_url: where plain HTTP is expected to redirect to ``base`` (None: not checked).
        ca_file: a CA bundle to verify the certificate with (None: the system's).
        api_key: sent with uploads, so that quotas and strikes are the scanner's key's.
        timeout: seconds per request.
        marker: a random token that no answer may repeat.
    """

    base: str
    http_url: str | None = None
    ca_file: str | None = None
    api_key: str | None = None
    timeout: float = 30.0
    marker: str = field(default_factory=lambda: MARKER_PREFIX + secrets.token_hex(6))

    @property
    def parts(self) -> tuple[str, str, int]:
        """Scheme, host and port of ``base``."""
        url = urlsplit(self.base)
        port = url.port or (443 if url.scheme == "https" else 80)
        return url.scheme, url.hostname or "", port

    @property
    def https(self) -> bool:
        return self.parts[0] == "https"

    def url(self, path: str) -> str:
        return self.base + path

    def verify(self) -> ssl.SSLContext | bool:
        if self.ca_file:
            return ssl.create_default_context(cafile=self.ca_file)
        return True

    def client(self) -> httpx.Client:
        """A client that follows no redirect (each check looks at them itself)."""
        return httpx.Client(verify=self.verify(), timeout=self.timeout, follow_redirects=False)

    def key_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def target_for(url: str, **options: object) -> Target:
    """A ``Target`` for ``url`` (http or https, no query); for https the plain-HTTP redirect
    is checked on port 80 of the same host unless ``http_url`` is given.

    Raises:
        ValueError: not an http(s) URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError("the URL to scan must be http(s)://host[:port][/path], no query")
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    if "http_url" not in options or options["http_url"] is None:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        options["http_url"] = f"http://{host}" if parts.scheme == "https" else None
    return Target(base=base, **options)  # type: ignore[arg-type]
