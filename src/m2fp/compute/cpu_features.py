"""Which fast CPU units this machine has, read from ``/proc/cpuinfo``'s flags.

The fast modes pay only with native units: bf16 needs AVX512-BF16 or AMX-BF16 (without them
oneDNN and OpenVINO fall back to emulation, slower than fp32), int8 pays with VNNI
(AVX512-VNNI, AVX-VNNI) or AMX-INT8 (on plain AVX2 an int8 matmul is no faster than fp32).
Standard library only, so ``precision="fast"`` is decided and explained without importing
torch; tests pass fake flag sets.
"""

from __future__ import annotations

import functools
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The flags of the first processor listed (x86 ``flags``; other CPUs list none here)."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This machine's CPU flags (empty where ``/proc/cpuinfo`` is missing)."""
    try:
        return parse_cpu_flags(CPUINFO.read_text(encoding="ascii", errors="replace"))
    except OSError:
        return frozenset()


def bf16_units(flags: frozenset[str]) -> tuple[str, ...]:
    """The native bf16 flags among ``flags`` (empty: no native bf16)."""
    return tuple(f for f in BF16_FLAGS if f in flags)


def vnni_units(flags: frozenset[str]) -> tuple[str, ...]:
    """The int8 dot-product flags among ``flags`` (empty: int8 does not pay)."""
    return tuple(f for f in VNNI_FLAGS if f in flags)
