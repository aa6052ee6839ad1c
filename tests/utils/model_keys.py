"""Model keys for tests, and the check that none of a key leaks into an output."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from m2fp.protection.keys import generate_key, write_key_file

# 11 chunks for the ~2.8 MB tiny model: multi-chunk paths are exercised everywhere
SMALL_CHUNK = 256 << 10


def key_forms(key: bytes) -> list[str]:
    """Every text form a leaked key could take."""
    b64 = base64.b64encode(key).decode()
    url = base64.urlsafe_b64encode(key).decode()
    return [key.hex(), key.hex().upper(), b64, b64.rstrip("="), url, url.rstrip("=")]


def assert_no_key(text: str | bytes, *keys: bytes) -> None:
    """No key appears in ``text`` raw, hex or base64, not even a 12-character piece of one."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    for key in keys:
        assert key not in data
        assert key.decode("latin-1") not in data.decode("latin-1")
        for form in key_forms(key):
            pieces = {form[i : i + 12] for i in range(len(form) - 11)}
            found = [p for p in pieces if p.encode() in data]
            assert not found, "a piece of the key leaked"


def make_key_file(path: Path, key: bytes | None = None, mode: int = 0o600) -> Path:
    write_key_file(path, key if key is not None else generate_key())
    os.chmod(path, mode)
    return path
