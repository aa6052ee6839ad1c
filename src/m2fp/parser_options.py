"""How a HumanParser computes: input size, the pixel bound and numeric precision, in one
validated object shared by the Python API, the CLI and the server settings."""

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

    Raises:
        ValueError: sizes not ``0 < min_size <= max_size``, ``max_pixels`` not positive, or
            an unknown precision.
    """

    min_size: int = DEFAULT_MIN_SIZE
    max_size: int = DEFAULT_MAX_SIZE
    max_pixels: int = DEFAULT_MAX_PIXELS
    precision: Precision = Precision.FP32

    def __post_init__(self) -> None:
        check_input_sizes(self.min_size, self.max_size)
        if self.max_pixels <= 0:
            raise ValueError("max_pixels must be positive")
        # accept the plain strings "fp32"/"bf16" too (CLI, settings)
        object.__setattr__(self, "precision", Precision(self.precision))
