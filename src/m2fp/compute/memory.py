"""Giving freed heap memory back to the operating system after a parse.

glibc keeps large freed blocks (network activations, upsampled masks) in its heap for reuse,
so without this a process that parsed one photo stays near its peak RSS (about 0.5 GB above
idle for the R101 model, see BENCHMARKS.md). ``malloc_trim`` returns those pages. Where the C
library has no ``malloc_trim`` (musl, macOS, Windows) this does nothing.

A server under bursts of concurrent uploads needs more (``bound_heap_growth``): glibc raises
its mmap threshold each time a large mmapped block is freed (up to 32 MB), so after the first
burst 8 MB bodies and decoded photos are carved out of the heaps instead, and every thread
that touches them (the event loop, anyio's pool, the inference workers) gets its own arena
(up to 8 per core) whose freed middle parts no trim can return: idle memory ratchets up burst
after burst. A fixed threshold keeps blocks of ``MMAP_THRESHOLD`` and more in their own
mappings, given back the moment they are freed, and two arenas bound what the rest can hold.
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


# glibc's mallopt parameters (<malloc.h>)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024
ARENA_MAX = 2


def bound_heap_growth() -> bool:
    """Make glibc hand large blocks back at once and keep two arenas (see the module
    docstring). Call once, early, from the process owner (``m2fp serve``); True if the C
    library took both settings, False elsewhere (musl, macOS) where it does nothing."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENA_MAX))


def release_free_memory() -> bool:
    """Return freed heap pages to the OS. True if the C library could do it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
