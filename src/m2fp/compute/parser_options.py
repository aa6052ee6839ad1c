"""How a HumanParser computes: input size, the pixel bound, where and in which precision the
network runs, batching and flip test-time augmentation, in one validated object shared by the
Python API, the CLI and the server settings."""

from __future__ import annotations

from dataclasses import dataclass

from m2fp.compute.options import (
    DEFAULT_DEVICE,
    ComputeChoiceError,
    Engine,
    Precision,
    check_compute,
    check_device,
)
from m2fp.compute.threads import check_threads
from m2fp.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE
from m2fp.processing.preprocess import check_input_sizes

# images per network call at most: beyond this a batch only adds memory
MAX_BATCH_SIZE = 64


def check_batch_size(batch_size: int | None) -> int | None:
    """``batch_size`` if it is None (chosen from the device) or 1..MAX_BATCH_SIZE."""
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise ComputeChoiceError(
            f"batch_size must be a whole number from 1 to {MAX_BATCH_SIZE}", "batch_size"
        )
    return batch_size


@dataclass(frozen=True)
class ParserOptions:
    """Options of a ``HumanParser``; the defaults are ModelScope's.

    Attributes:
        min_size: short side of the network input.
        max_size: upper bound of the network input's long side.
        max_pixels: encoded images declaring more pixels are refused before decoding.
        device: ``auto`` (default: the first CUDA device if PyTorch sees one, else the
            CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (see ``m2fp.compute.device``).
        engine: ``torch`` (default, any device) or ``openvino`` (CPU, exact in fp32 and
            faster; see ``m2fp.engines``).
        precision: ``fp32`` (default) computes what ModelScope computes; ``tf32``, ``fp16``,
            ``bf16`` and ``int8`` are faster approximations where the device has them (see
            ``m2fp.compute.options``).
        batch_size: images per network call in ``HumanParser.parse_batch``; None (default)
            chooses from the device: 8 on CUDA, 1 elsewhere (a CPU gains nothing from
            batching but memory).
        threads: intra-op threads of the network; None (default) derives them from the
            CPUs the container may use (``m2fp.compute.threads``).
        flip: also parse the mirrored photo and average (horizontal-flip test-time
            augmentation, ``m2fp.processing.flip``): about twice the time; off by default,
            which computes what ModelScope's pipeline computes.

    Raises:
        ValueError: sizes not ``0 < min_size <= max_size``, ``max_pixels`` not positive, an
            unknown device, engine or precision or one they cannot run with
            (``ComputeChoiceError``), a bad ``batch_size`` or ``threads``, or ``flip`` not a bool.
    """

    min_size: int = DEFAULT_MIN_SIZE
    max_size: int = DEFAULT_MAX_SIZE
    max_pixels: int = DEFAULT_MAX_PIXELS
    precision: Precision = Precision.FP32
    flip: bool = False
    device: str = DEFAULT_DEVICE
    engine: Engine = Engine.TORCH
    batch_size: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        check_input_sizes(self.min_size, self.max_size)
        if self.max_pixels <= 0:
            raise ValueError("max_pixels must be positive")
        check_compute(self.device, self.engine, self.precision)
        # accept the plain strings too ("fp32", "openvino": CLI, settings)
        object.__setattr__(self, "device", check_device(self.device))
        object.__setattr__(self, "engine", Engine(self.engine))
        object.__setattr__(self, "precision", Precision(self.precision))
        check_batch_size(self.batch_size)
        check_threads(self.threads)
        if not isinstance(self.flip, bool):
            raise ValueError("flip must be True or False")
