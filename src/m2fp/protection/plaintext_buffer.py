"""Decrypted weights live in one bytearray that is zeroed on the way out.

Python ``bytes`` cannot be cleared, so every decrypting path writes into a bytearray, hands
out views of it (``m2fp.weights.safetensors_view``) and wipes it when done, also when loading fails.
"""

from __future__ import annotations

import ctypes


def wipe(buffer: bytearray) -> None:
    """Overwrite ``buffer`` with zeros in place (no resize, so live views stay valid)."""
    if buffer:
        ctypes.memset((ctypes.c_char * len(buffer)).from_buffer(buffer), 0, len(buffer))
