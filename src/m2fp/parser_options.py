"""How a HumanParser computes: input size, the pixel bound, numeric precision and flip
test-time augmentation, in one validated object shared by the Python API, the CLI and the
server settings."""

from __future__ import annotations

from dataclasses import dataclass

from m2fp.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE
from m2fp.precision import Precision
from m2fp.processing.preprocess import check_input_sizes


@dataclass(frozen=True)
class ParserOptions:
    """Options of a ``HumanParser``; the defaults are ModelScope's.

    Attributes:
        min_size: short side of the network input.
        max_size: upper bound of the network input's long side.
        max_pixels: encoded images declaring more pixels are refused before decoding.
        precision: ``fp32`` (default) computes what ModelScope computes; ``bf16`` is a faster
            approximation on CPUs with native bf16 (see ``m2fp.precision``).
        flip: also parse the mirrored photo and average (horizontal-flip test-time
            augmentation, ``m2fp.processing.flip``): about twice the time; off by default,
            which computes what ModelScope's pipeline computes.

    Raises:
        ValueError: sizes not ``0 < min_size <= max_size``, ``max_pixels`` not positive, or
            an unknown precision, or ``flip`` not a bool.
    """

    min_size: int = DEFAULT_MIN_SIZE
    max_size: int = DEFAULT_MAX_SIZE
    max_pixels: int = DEFAULT_MAX_PIXELS
    precision: Precision = Precision.FP32
    flip: bool = False

    def __post_init__(self) -> None:
        check_input_sizes(self.min_size, self.max_size)
        if self.max_pixels <= 0:
            raise ValueError("max_pixels must be positive")
        # accept the plain strings "fp32"/"bf16" too (CLI, settings)
        object.__setattr__(self, "precision", Precision(self.precision))
        if not isinstance(self.flip, bool):
            raise ValueError("flip must be True or False")
