"""Numeric precision of the PyTorch engine: exact fp32 by default, the rest on request.

``fp32`` computes what ModelScope computes (up to float rounding); it is what the golden parity
tests check. On CUDA that means TF32 off for matmuls *and* convolutions (cuDNN allows TF32 for
convolutions by default). ``tf32`` turns it on; ``fp16`` and ``bf16`` run the network under
autocast (weights stay fp32, each op casts its inputs); ``bf16`` also runs on CPUs with native
bf16 (AVX512-BF16, AMX) and is refused on others, where PyTorch's fallback is 60-100x slower
than fp32. Which precision goes with which device and engine is ``m2fp.compute.options``.

PyTorch's TF32 switches are process-wide, so CUDA forwards set them for their own duration
under one lock: parsers of different precisions in one process never see each other's
setting. The lock costs no GPU throughput: forwards from several threads share the device's
default stream, which runs them one after the other anyway.

torch is imported inside what runs PyTorch: ``resolve_precision`` also decides the OpenVINO
engine's precision on the slim runtime, which has no torch.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from m2fp.compute.cpu_features import cpu_flags
from m2fp.compute.device import Device
from m2fp.compute.fast import choose_fast
from m2fp.compute.options import Engine, Precision
from m2fp.errors import PrecisionUnsupportedError

if TYPE_CHECKING:
    import torch

    from m2fp.modeling.m2fp import M2FP

__all__ = [
    "Precision",
    "compute",
    "cuda_native_bf16",
    "native_bf16",
    "prepare_model",
    "resolve_precision",
]

AUTOCAST = {Precision.FP16: "float16", Precision.BF16: "bfloat16"}  # torch dtype names
TF32_CAPABILITY = (8, 0)  # Ampere: the first GPUs with TF32 tensor cores
BF16_CAPABILITY = (8, 0)  # Ampere: the first with bf16 tensor cores (older ones emulate it)
_CUDA_MATH = threading.Lock()


def native_bf16() -> bool:
    """True when oneDNN has bf16 kernels for this CPU (AVX512-BF16 or AMX).

    Without them PyTorch falls back to reference bf16 kernels that are orders of magnitude
    slower than fp32, so bf16 is refused rather than silently made slow. False without
    torch (the slim runtime), which has no eager bf16 at all.
    """
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cuda_native_bf16(device: torch.device) -> bool:
    """True when the GPU ``device`` itself computes bf16 in hardware (compute capability 8.0,
    Ampere, or newer).

    Not ``torch.cuda.is_bf16_supported()``: that judges the current device (GPU 0 for
    ``cuda:1``) and counts the emulation of older GPUs (T4, V100), which is slow.
    """
    import torch

    return torch.cuda.get_device_capability(device) >= BF16_CAPABILITY


def check_precision(precision: Precision, device: Device) -> None:
    """Refuse a precision this device cannot run (fast).

    Raises:
        PrecisionUnsupportedError: bf16 on a CPU without native bf16 or a GPU without bf16;
            tf32 on a GPU older than Ampere.
    """
    if device.type == "cpu" and precision is Precision.BF16 and not native_bf16():
        raise PrecisionUnsupportedError(
            "bf16 needs a CPU with native bf16 (AVX512-BF16 or AMX); use fp32"
        )
    if device.type != "cuda":
        return
    import torch

    capability = torch.cuda.get_device_capability(device)
    if precision is Precision.BF16 and not cuda_native_bf16(device):
        raise PrecisionUnsupportedError(
            f"bf16 needs an Ampere or newer GPU (compute capability 8.0, this one has "
            f"{capability[0]}.{capability[1]}); use fp16"
        )
    if precision is Precision.TF32 and capability < TF32_CAPABILITY:
        raise PrecisionUnsupportedError(
            f"tf32 needs an Ampere or newer GPU (compute capability 8.0, this one has "
            f"{capability[0]}.{capability[1]}); use fp32 or fp16"
        )


def prepare_model(model: M2FP, precision: Precision, device: torch.device | None = None) -> M2FP:
    """Ready ``model`` for inference at ``precision`` on ``device`` (default CPU), in place.

    The conv weights are stored channels-last: same values and parameter names, but the layout
    oneDNN and cuDNN compute in, so no reorder per call. The weights stay fp32 (autocast casts
    them per op).

    Raises:
        PrecisionUnsupportedError: see ``check_precision``.
    """
    import torch

    device = device or torch.device("cpu")
    check_precision(precision, device)
    return model.eval().to(device=device, memory_format=torch.channels_last)


@contextlib.contextmanager
def _cuda_fp32_math(precision: Precision) -> Iterator[None]:
    """TF32 off (``fp32``: exact) or on (the others) for cuBLAS matmuls and every cuDNN op
    (convolutions and RNNs), restored afterwards.

    Set through the legacy switches, which write matmul, cuDNN conv and cuDNN RNN together:
    setting only some of the new per-backend ``fp32_precision`` values leaves a state in which
    reading ``torch.backends.cuda.matmul.allow_tf32``, ``torch.backends.cudnn.allow_tf32`` or
    ``torch.get_float32_matmul_precision()`` raises "mix of the legacy and new APIs" (torch >=
    2.9), in this thread or any other meanwhile.
    """
    import torch

    tf32 = precision is not Precision.FP32
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    with _CUDA_MATH:
        before = _tf32_state()
        matmul.allow_tf32 = cudnn.allow_tf32 = tf32
        try:
            yield
        finally:
            _restore_tf32_state(before)


_LegacySwitches = tuple[bool | None, bool | None]
_NewSwitches = tuple[str, str, str] | None


def _tf32_state() -> tuple[_LegacySwitches, _NewSwitches]:
    """The switches as found: the legacy booleans of matmul and cuDNN (None where reading
    one raises, a state someone else mixed) and, on torch >= 2.9, the new per-backend values
    of matmul, cuDNN conv and cuDNN RNN, which decide what the kernels do."""
    import torch

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    legacy: list[bool | None] = []
    for switch in (matmul, cudnn):
        try:
            legacy.append(bool(switch.allow_tf32))
        except RuntimeError:
            legacy.append(None)
    new = None
    if hasattr(matmul, "fp32_precision"):
        new = (matmul.fp32_precision, cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision)
    return (legacy[0], legacy[1]), new


def _restore_tf32_state(state: tuple[_LegacySwitches, _NewSwitches]) -> None:
    """Put back what ``_tf32_state`` read: the legacy booleans first (they also write the new
    values), then the new values exactly."""
    import torch

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    (legacy_matmul, legacy_cudnn), new = state
    if legacy_matmul is not None:
        matmul.allow_tf32 = legacy_matmul
    if legacy_cudnn is not None:
        cudnn.allow_tf32 = legacy_cudnn
    if new is not None:
        matmul.fp32_precision, cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = new


@contextlib.contextmanager
def compute(precision: Precision, device: torch.device | None = None) -> Iterator[None]:
    """Context for running the network: no autograd; on CUDA the TF32 switches of
    ``precision`` and autocast for fp16/bf16; on the CPU bf16 autocast for ``bf16``."""
    import torch

    device = device or torch.device("cpu")
    with torch.inference_mode(), contextlib.ExitStack() as stack:
        if device.type == "cuda":
            stack.enter_context(_cuda_fp32_math(precision))
        if precision in AUTOCAST:
            stack.enter_context(
                torch.autocast(device.type, dtype=getattr(torch, AUTOCAST[precision]))
            )
        yield


def resolve_precision(
    precision: Precision, engine: Engine, device: Device
) -> tuple[Precision, str | None]:
    """``precision`` itself, or for ``fast`` what it means on ``device`` with this CPU
    (``m2fp.compute.fast``) and why.

    Raises:
        PrecisionUnsupportedError: ``fast`` on a machine without the units it needs.
    """
    if precision is not Precision.FAST:
        return precision, None
    choice = choose_fast(
        engine=Engine(engine),
        device_kind=device.type,
        flags=cpu_flags(),
        cuda_bf16=lambda: cuda_native_bf16(device),
    )
    return choice.precision, choice.reason
