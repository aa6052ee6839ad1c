"""sha256 hex digests given by people (weight pins, API-key digests): one canonical form.

Pins are compared as lower-case hex without surrounding blanks, whoever parses them (the CLI,
the server settings, the loader).
"""

from __future__ import annotations

import re

from m2fp.errors import IntegrityError

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def sha256_pin(value: str) -> str:
    """``value`` in canonical form (stripped, lower case) if it is a sha256 hex digest.

    Raises:
        ValueError: not 64 hex digits (the value is not echoed: it may be a secret's digest).
    """
    pin = value.strip().lower()
    if not SHA256_HEX.fullmatch(pin):
        raise ValueError("must be 64 hex digits")
    return pin


def check_pin(digest: str, expected_sha256: str | None) -> None:
    """Raise IntegrityError if a pin is given and the weights' ``digest`` is not it."""
    if expected_sha256 is not None and digest != sha256_pin(expected_sha256):
        raise IntegrityError("sha256 of the weights does not match the pinned hash")
