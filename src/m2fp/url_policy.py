"""The one rule for URLs the project sends data to (model hub, alert webhook).

``https://`` anywhere; plain ``http://`` only to this machine (a local relay, the tests' fake
servers), where nothing crosses a network.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAME = "localhost"


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP literal (127.0.0.0/8, ::1)."""
    if host == LOOPBACK_NAME:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_https_url(url: str) -> str:
    """``url`` if it is https (or http to a loopback host), else ValueError.

    The message never repeats the URL: it may embed a token.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))):
        return url
    raise ValueError("must be an https:// URL (http:// only to a loopback host)")
