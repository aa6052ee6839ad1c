"""Giving freed heap memory back to the operating system after a parse.

glibc keeps large freed blocks (network activations, upsampled masks) in its heap for reuse,
so without this a process that parsed one photo stays near its peak RSS (about 0.5 GB above
idle for the R101 model, see BENCHMARKS.md). ``malloc_trim`` returns those pages. Where the C
library has no ``malloc_trim`` (musl, macOS, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


def release_free_memory() -> bool:
    """Return freed heap pages to the OS. True if the C library could do it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
