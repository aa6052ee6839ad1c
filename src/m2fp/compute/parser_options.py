"""How a HumanParser computes: input size, the pixel bound, where and in which precision the
network runs, batching and flip test-time augmentation, in one validated object shared by the
Python API, the CLI and the server settings.

Each size knob has its one rule here (``check_min_size``, ``check_max_size``, ``check_sizes``,
``check_max_pixels``, ``check_batch_size``); ``ParserOptions`` applies them, and the server
settings and the CLI flags call the same functions, so all three refuse the same values.
Standard library only: the CLI checks its flags without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from m2fp.compute.options import (
    DEFAULT_DEVICE,
    Engine,
    Precision,
    check_compute,
    check_device,
)
from m2fp.compute.threads import check_threads
from m2fp.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE
from m2fp.errors import M2FPError

# network input sides: below 32 the backbone's 1/32 feature map has no pixel left; above
# these the activations of one photo alone exceed what a server should hold
MIN_SIZE_RANGE = (32, 4096)
MAX_SIZE_RANGE = (32, 8192)
# declared pixels of an encoded image: 200 MP decoded is 600 MB of RGB before any parsing
MAX_PIXELS_RANGE = (1, 200_000_000)
# images per network call at most: beyond this a batch only adds memory
MAX_BATCH_SIZE = 64


class ParserOptionError(M2FPError, ValueError):
    """A size knob out of its range (``str()`` names the option, for Python callers).

    Attributes:
        fields: the options involved (``min_size``...), so that a message can name the CLI
            flag or the environment variable instead.
        reason: the rule broken, without the option's name (``must be ...``).
    """

    def __init__(self, reason: str, *fields: str) -> None:
        super().__init__(f"{' and '.join(fields)} {reason}")
        self.fields = fields
        self.reason = reason


def _whole_number(value: object, low: int, high: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ParserOptionError(f"must be a whole number from {low} to {high}", name)
    return value


def check_min_size(min_size: int) -> int:
    """``min_size`` (short side of the network input) if within ``MIN_SIZE_RANGE``."""
    return _whole_number(min_size, *MIN_SIZE_RANGE, "min_size")


def check_max_size(max_size: int) -> int:
    """``max_size`` (bound of the network input's long side) if within ``MAX_SIZE_RANGE``."""
    return _whole_number(max_size, *MAX_SIZE_RANGE, "max_size")


def check_sizes(min_size: int, max_size: int) -> None:
    """Both sizes within their ranges and ``min_size <= max_size``.

    Raises:
        ParserOptionError: the first rule broken (the order is reported on ``max_size``).
    """
    check_min_size(min_size)
    check_max_size(max_size)
    if max_size < min_size:
        raise ParserOptionError("must be at least min_size", "max_size")


def check_max_pixels(max_pixels: int) -> int:
    """``max_pixels`` (encoded images declaring more are refused) if within
    ``MAX_PIXELS_RANGE``."""
    return _whole_number(max_pixels, *MAX_PIXELS_RANGE, "max_pixels")


def check_batch_size(batch_size: int | None) -> int | None:
    """``batch_size`` if it is None (chosen from the device) or 1..MAX_BATCH_SIZE."""
    if batch_size is None:
        return None
    return _whole_number(batch_size, 1, MAX_BATCH_SIZE, "batch_size")


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
        ValueError: a size, ``max_pixels``, ``batch_size`` or ``threads`` out of its range
            (``ParserOptionError`` for the sizes and the batch), an unknown device, engine or
            precision or one they cannot run with (``ComputeChoiceError``), or ``flip`` not a
            bool.
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
        check_sizes(self.min_size, self.max_size)
        check_max_pixels(self.max_pixels)
        check_compute(self.device, self.engine, self.precision)
        # accept the plain strings too ("fp32", "openvino": CLI, settings)
        object.__setattr__(self, "device", check_device(self.device))
        object.__setattr__(self, "engine", Engine(self.engine))
        object.__setattr__(self, "precision", Precision(self.precision))
        check_batch_size(self.batch_size)
        check_threads(self.threads)
        if not isinstance(self.flip, bool):
            raise ValueError("flip must be True or False")

    @classmethod
    def from_fields(cls, source: object) -> ParserOptions:
        """The options a record names as ``ParserOptions`` does: the server's ``Settings``
        or the CLI's parsed flags. The one way from either to a parser, so both build it
        alike; a field the record lacks, or holds as None, keeps its default.

        Raises:
            ValueError: as the constructor.
        """
        given = {field.name: getattr(source, field.name, None) for field in fields(cls)}
        return cls(**{name: value for name, value in given.items() if value is not None})
