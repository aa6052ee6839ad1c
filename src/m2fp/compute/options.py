"""Where and how the network computes: device, engine and precision, and which combinations
exist, in one place.

Standard library only: the CLI lists these choices in ``--help`` and the server settings check
them without importing torch. ``ParserOptions`` calls ``check_compute`` with what was asked
(the device may still be ``auto``); ``HumanParser`` calls it again with the device ``auto``
resolved to (``m2fp.compute.device``), so both levels apply the same rules.

Exact means "computes what ModelScope computes, up to fp32 rounding" (what the golden parity
tests check): ``fp32`` on either engine. Everything else is an approximation the user opts in
to, never a default.
"""

from __future__ import annotations

import enum
import re

from m2fp.errors import M2FPError


class Precision(str, enum.Enum):
    """Numeric precision of the network.

    ``fp32``: exact (TF32 off on CUDA). ``tf32``: fp32 with TF32 tensor-core matmuls and
    convolutions (CUDA). ``fp16``/``bf16``: autocast (CUDA; bf16 also on CPUs with native
    bf16); on the OpenVINO engine ``bf16`` compiles the fp32 package for bf16, the sampler's
    integer indices exact.
    ``int8``: the OpenVINO engine with an int8 backbone (CPU). ``fast``: the fastest of these
    approximations this machine has, decided once at start-up (``m2fp.compute.fast``).
    """

    FP32 = "fp32"
    TF32 = "tf32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"
    FAST = "fast"

    @property
    def exact(self) -> bool:
        return self is Precision.FP32


class Engine(str, enum.Enum):
    """What runs the network: PyTorch eager (any device) or OpenVINO (CPU, converted graphs)."""

    TORCH = "torch"
    OPENVINO = "openvino"


DEFAULT_DEVICE = "auto"
DEVICE_CHOICES = "auto|cpu|cuda|cuda:N|mps"
_DEVICE = re.compile(r"(auto|cpu|cuda|mps)(?::(\d{1,3}))?")

# how each precision is described wherever the choice is shown (--help, docs/engines.md, /readyz)
ACCURACY = {precision: "exact" if precision.exact else "approximation" for precision in Precision}
PRECISION_HELP = (
    "fp32: exact (default); tf32, fp16, bf16: approximations on CUDA (bf16 also on CPUs with "
    "native bf16, either engine); int8: an approximation, needs --engine openvino; fast: the "
    "fastest approximation this machine has (bf16 or int8), decided at start-up"
)
# what each approximation costs, wherever it is reported (/readyz, m2fp model info, the log);
# the figures are BENCHMARKS.md's
CAVEAT = {
    Precision.FP32: None,
    Precision.TF32: "tf32: matmuls with a 10-bit mantissa; not measured on the CPU",
    Precision.FP16: "fp16 autocast: label maps may differ from fp32 in a few pixels",
    Precision.BF16: (
        "bf16: label maps agree with fp32 on 99.5% of pixels or more, scores and person "
        "counts may differ slightly (BENCHMARKS.md)"
    ),
    Precision.INT8: (
        "int8 backbone: about 2-3% feature error; label maps differ from fp32 in more "
        "pixels than bf16 (BENCHMARKS.md)"
    ),
    Precision.FAST: "fast: an approximation, see the precision it chose",
}
ENGINE_HELP = (
    "torch: PyTorch on any device (default); openvino: OpenVINO on the CPU, exact in fp32, "
    "faster (needs m2fp[openvino]; convert once with 'm2fp model export --format openvino')"
)
DEVICE_HELP = f"{DEVICE_CHOICES}; auto (default): the first CUDA device if there is one, else cpu"


class ComputeChoiceError(M2FPError, ValueError):
    """An impossible device, engine or precision, or combination of them.

    Attributes:
        fields: the options involved (``device``, ``engine``, ``precision``), for messages
            that name a CLI flag or an environment variable.
    """

    def __init__(self, message: str, *fields: str) -> None:
        super().__init__(message)
        self.fields = fields


def check_device(device: str) -> str:
    """``device`` normalised (``cuda:0`` stays ``cuda:0``; ``CPU`` becomes ``cpu``).

    Raises:
        ComputeChoiceError: not one of ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    """
    text = device.strip().lower() if isinstance(device, str) else ""
    match = _DEVICE.fullmatch(text)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ComputeChoiceError(f"device must be one of {DEVICE_CHOICES}", "device")
    return text


def device_kind(device: str) -> str:
    """``cuda`` for ``cuda:N``; the device itself otherwise."""
    return check_device(device).partition(":")[0]


def check_compute(device: str, engine: Engine | str, precision: Precision | str) -> None:
    """Refuse combinations that cannot run, with one line saying what would.

    ``device`` is what was asked (``auto`` allowed) or what ``auto`` resolved to. A rule
    that depends on the machine (a CUDA device present, native bf16) is checked where the
    device is resolved (``m2fp.compute.device``, ``m2fp.compute.precision``).

    Raises:
        ComputeChoiceError: an unknown value, or:
            - the OpenVINO engine on another device than the CPU;
            - the OpenVINO engine with another precision than fp32, bf16, int8 or fast;
            - int8 on the torch engine;
            - tf32 or fp16 on the CPU or MPS;
            - bf16 or fast on MPS.
    """
    kind = device_kind(device)
    try:
        engine = Engine(engine)
    except ValueError:
        names = ", ".join(e.value for e in Engine)
        raise ComputeChoiceError(f"engine must be one of {names}", "engine") from None
    try:
        precision = Precision(precision)
    except ValueError:
        names = ", ".join(p.value for p in Precision)
        raise ComputeChoiceError(f"precision must be one of {names}", "precision") from None
    if engine is Engine.OPENVINO:
        if kind not in ("auto", "cpu"):
            raise ComputeChoiceError(
                f"engine openvino runs on the CPU, not on {kind}: use device cpu (or auto)",
                "engine",
                "device",
            )
        if precision not in (Precision.FP32, Precision.BF16, Precision.INT8, Precision.FAST):
            raise ComputeChoiceError(
                f"engine openvino computes in fp32 (exact), bf16, int8 or fast, not "
                f"{precision.value}",
                "engine",
                "precision",
            )
        return
    if precision is Precision.INT8:
        raise ComputeChoiceError(
            "precision int8 runs on engine openvino only: add engine openvino",
            "precision",
            "engine",
        )
    if precision in (Precision.TF32, Precision.FP16) and kind in ("cpu", "mps"):
        raise ComputeChoiceError(
            f"precision {precision.value} needs a CUDA device, not {kind}", "precision", "device"
        )
    if precision in (Precision.BF16, Precision.FAST) and kind == "mps":
        raise ComputeChoiceError(
            f"precision {precision.value} is not supported on mps", "precision", "device"
        )
