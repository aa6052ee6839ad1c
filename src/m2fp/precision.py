"""Numeric precision of inference: exact fp32 by default, bf16 on request.

``fp32`` computes what ModelScope computes (up to float rounding); it is what the golden parity
tests check. ``bf16`` runs the network under bf16 autocast: about twice the arithmetic rate on
CPUs with native bf16 (AVX512-BF16, AMX), for a label map that differs on a few pixels. Dynamic
int8 quantisation of the transformer's linears was measured and rejected (BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator

import torch

from m2fp.errors import PrecisionUnsupportedError
from m2fp.modeling.m2fp import M2FP


class Precision(str, enum.Enum):
    """How the network computes: ``fp32`` exact (default) or ``bf16`` faster."""

    FP32 = "fp32"
    BF16 = "bf16"


def native_bf16() -> bool:
    """True when oneDNN has bf16 kernels for this CPU (AVX512-BF16 or AMX).

    Without them PyTorch falls back to reference bf16 kernels that are orders of magnitude
    slower than fp32, so bf16 is refused rather than silently made slow.
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def prepare_model(model: M2FP, precision: Precision) -> M2FP:
    """Ready ``model`` for inference at ``precision``, in place.

    The conv weights are stored channels-last: same values and parameter names, but the layout
    oneDNN computes in, so no reorder per call.

    Raises:
        PrecisionUnsupportedError: ``bf16`` on a CPU without native bf16.
    """
    if precision is Precision.BF16 and not native_bf16():
        raise PrecisionUnsupportedError(
            "bf16 needs a CPU with native bf16 (AVX512-BF16 or AMX); use fp32"
        )
    return model.eval().to(memory_format=torch.channels_last)


@contextlib.contextmanager
def compute(precision: Precision) -> Iterator[None]:
    """Context for running the network: no autograd, autocast for ``bf16``."""
    with torch.inference_mode():
        if precision is Precision.BF16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield
        else:
            yield
