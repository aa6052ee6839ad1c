"""The killable decode workers: the memory budget turns an oversized decode into a refusal, a
decode past its deadline ends its process (nothing keeps decoding after the answer), and
``close`` leaves no worker behind (pen test 2, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2fp.errors import ImageError
from m2fp.imaging.decode_pool import DecodePool
from m2fp.scan.hostile_images import flat_png
from tests.utils.images import png_bytes

PIXELS = 50_000_000


def decode_workers() -> set[int]:
    """This process's decode worker children (of any of its threads), still running."""
    pids: set[int] = set()
    for children in Path("/proc/self/task").glob("*/children"):
        for child in children.read_text(encoding="ascii").split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                continue
            if b"m2fp.imaging.decode_worker" in cmdline and state != "Z":
                pids.add(int(child))
    return pids


def small(pool: DecodePool) -> tuple[int, int]:
    """The size a small good PNG decodes to in ``pool``."""
    return pool.decode(png_bytes(40, 30), max_pixels=PIXELS, max_side=1920).image.size


def test_a_decode_past_the_memory_budget_is_refused_and_the_worker_goes_on():
    # the flat 7071x7071 PNG needs ~250 MB; a 64 MB budget cannot hold its pixels
    pool = DecodePool(workers=1, memory_bytes=64 * 1024 * 1024)
    try:
        with pytest.raises(ImageError) as refused:
            pool.decode(flat_png(), max_pixels=PIXELS, max_side=1920)
        assert refused.value.kind == "too_costly"
        assert small(pool) == (40, 30)
    finally:
        pool.close()


def test_a_decode_past_its_deadline_ends_its_worker_process():
    before = decode_workers()
    pool = DecodePool(workers=1)
    try:
        pool.start()
        (worker,) = decode_workers() - before
        with pytest.raises(ImageError) as refused:
            pool.decode(flat_png(), max_pixels=PIXELS, max_side=1920, deadline_seconds=0.001)
        assert refused.value.kind == "too_costly"
        # answered, and the process that was decoding is gone (not left to finish)
        assert worker not in decode_workers()
        (replacement,) = decode_workers() - before
        assert replacement != worker
        assert small(pool) == (40, 30)
    finally:
        pool.close()
    assert decode_workers() - before == set()
