"""sha256 pins: one canonical form, one comparison."""

from __future__ import annotations

import hashlib

import pytest

from m2fp.errors import IntegrityError
from m2fp.weights.sha256_pin import check_pin, sha256_pin

DIGEST = hashlib.sha256(b"weights").hexdigest()


def test_canonical_form_strips_and_lowercases():
    assert sha256_pin(f"  {DIGEST.upper()}\n") == DIGEST


@pytest.mark.parametrize("bad", ["", "abc", DIGEST[:-1], DIGEST + "0", "g" * 64])
def test_non_digests_are_refused_without_echo(bad):
    with pytest.raises(ValueError, match="64 hex digits") as refused:
        sha256_pin(bad)
    assert not bad or bad not in str(refused.value)


def test_check_pin():
    check_pin(DIGEST, None)
    check_pin(DIGEST, DIGEST.upper())
    with pytest.raises(IntegrityError, match="pinned hash"):
        check_pin(DIGEST, "0" * 64)
