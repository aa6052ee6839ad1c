"""``precision="fast"``: the fastest approximation this machine has, decided once at start-up.

Never the default, and never silent: the choice is logged and reported (``/readyz``,
``m2fp model info``) with what it costs (``m2fp.compute.options.CAVEAT``). Only precisions
measured in BENCHMARKS.md are candidates, fastest first for each engine on the CPUs that have
the unit it needs (``m2fp.compute.cpu_features``):

- engine torch on the CPU: bf16 autocast (native bf16 only; emulated bf16 is slower than fp32);
- engine openvino: bf16 (the whole network on AVX512-BF16/AMX, no extra package), else int8
  (VNNI/AMX; an int8 package or minutes of quantisation at start-up). bf16 comes first for
  its accuracy and because it needs no int8 package: its backbone's res5 error on the seeded
  R101 is 0.63% against int8's 2.29% (issue 22); which of the two forwards is faster on one
  CPU is what ``benchmarks/bench_engines.py`` measures (BENCHMARKS.md), not assumed here;
- CUDA: bf16 where the GPU has it, else fp16.

A machine with none of the units is refused with one line naming what is missing.
Standard library only: ``ParserOptions`` and the settings check it without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from m2fp.compute.cpu_features import BF16_FLAGS, VNNI_FLAGS, bf16_units, vnni_units
from m2fp.compute.options import Engine, Precision
from m2fp.errors import PrecisionUnsupportedError


@dataclass(frozen=True)
class FastChoice:
    """What ``fast`` became here, and why (for the start-up log)."""

    precision: Precision
    reason: str


def choose_fast(
    *,
    engine: Engine,
    device_kind: str,
    flags: frozenset[str],
    cuda_bf16: Callable[[], bool] = lambda: False,
) -> FastChoice:
    """The precision ``fast`` means for ``engine`` on a device of ``device_kind`` (``cpu``,
    ``cuda``) with these CPU ``flags``.

    Args:
        cuda_bf16: whether the CUDA device has bf16 (asked only for ``cuda``).

    Raises:
        PrecisionUnsupportedError: nothing faster than fp32 here; the message names the CPU
            features that are missing.
    """
    if device_kind == "cuda":
        if cuda_bf16():
            return FastChoice(Precision.BF16, "the GPU has bf16")
        return FastChoice(Precision.FP16, "the GPU has no bf16")
    bf16, vnni = bf16_units(flags), vnni_units(flags)
    if bf16:
        return FastChoice(Precision.BF16, f"native bf16 ({' '.join(bf16)})")
    if engine is Engine.OPENVINO:
        if vnni:
            return FastChoice(Precision.INT8, f"int8 dot products ({' '.join(vnni)})")
        raise PrecisionUnsupportedError(
            f"precision fast needs native bf16 ({' or '.join(BF16_FLAGS)}) or int8 dot "
            f"products ({', '.join(VNNI_FLAGS)}); this CPU has none of them: use fp32"
        )
    hint = " (it has int8 dot products: --engine openvino runs fast in int8)" if vnni else ""
    raise PrecisionUnsupportedError(
        f"precision fast on engine torch needs a CPU with native bf16 "
        f"({' or '.join(BF16_FLAGS)}); this one has neither{hint}: use fp32"
    )
