"""Numeric precision of inference: exact fp32 by default, faster approximations on request.

``fp32`` computes what ModelScope computes (up to float rounding); it is what the golden parity
tests check. ``bf16`` (autocast) and ``int8`` (dynamically quantised linears of the deformable
encoder) trade a little accuracy for speed and are opt-in; BENCHMARKS.md has what each gains
on which CPU.
"""

from __future__ import annotations

import contextlib
import enum
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from m2fp.errors import PrecisionUnsupportedError
from m2fp.modeling.m2fp import M2FP


class Precision(str, enum.Enum):
    """How the network computes: ``fp32`` exact (default), ``bf16`` or ``int8`` faster."""

    FP32 = "fp32"
    BF16 = "bf16"
    INT8 = "int8"


def native_bf16() -> bool:
    """True when oneDNN has bf16 kernels for this CPU (AVX512-BF16 or AMX).

    Without them PyTorch falls back to reference bf16 kernels that are orders of magnitude
    slower than fp32, so bf16 is refused rather than silently made slow.
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def prepare_model(model: M2FP, precision: Precision) -> M2FP:
    """Ready ``model`` for inference at ``precision``, in place.

    Every precision stores the conv weights channels-last (same values, the layout oneDNN
    computes in, so no reorder per call). ``int8`` replaces the ``nn.Linear`` layers of the
    pixel decoder's deformable encoder by dynamically quantised ones; their parameter names
    change, so such a model no longer round-trips a checkpoint.

    Raises:
        PrecisionUnsupportedError: ``bf16`` on a CPU without native bf16.
    """
    if precision is Precision.BF16 and not native_bf16():
        raise PrecisionUnsupportedError(
            "bf16 needs a CPU with native bf16 (AVX512-BF16 or AMX); use fp32 or int8"
        )
    model.eval().to(memory_format=torch.channels_last)
    if precision is Precision.INT8:
        _quantize_linears(model)
    return model


def _quantize_linears(model: M2FP) -> None:
    # torch.ao's eager dynamic quantisation is deprecated upstream in favour of torchao, which
    # is not a dependency here; it is still shipped and is the CPU int8 path that needs no
    # calibration data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import quantize_dynamic

        # the deformable encoder's linears run on every 1/8-1/32 pixel and carry almost all
        # linear FLOPs; the decoder's run on 100 queries only and feed the class and mask heads
        # directly, so quantising them buys nothing and costs agreement
        encoder = model.sem_seg_head.pixel_decoder.transformer
        quantize_dynamic(encoder, {nn.Linear}, dtype=torch.qint8, inplace=True)


@contextlib.contextmanager
def compute(precision: Precision) -> Iterator[None]:
    """Context for running the network: no autograd, autocast for ``bf16``."""
    with torch.inference_mode():
        if precision is Precision.BF16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield
        else:
            yield
