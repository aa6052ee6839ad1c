"""``--device``, ``--engine``, ``--precision`` (and ``--batch-size``): where and how a command
computes. Standard library only (``m2fp.compute.options`` and ``parser_options`` are), so
``--help`` lists them without importing torch; the combinations are checked by
``ParserOptions``, each number by its rule there (``option_rule``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from m2fp.compute.options import (
    DEFAULT_DEVICE,
    DEVICE_HELP,
    ENGINE_HELP,
    PRECISION_HELP,
    ComputeChoiceError,
    Engine,
    Precision,
)
from m2fp.compute.parser_options import ParserOptionError, check_batch_size
from m2fp.compute.threads import THREADS_HELP, check_threads


def add_compute_arguments(
    parser: argparse.ArgumentParser, *, batch: bool = False, from_environment: bool = False
) -> None:
    """Add the device, engine, precision and threads flags (and ``--batch-size`` with
    ``batch``).

    Args:
        from_environment: the flags default to None, so the server's settings
            (``M2FP_DEVICE``, ``M2FP_ENGINE``, ``M2FP_PRECISION``) apply unless one is given.
    """
    defaults = (
        (None, None, None)
        if from_environment
        else (DEFAULT_DEVICE, Engine.TORCH.value, Precision.FP32.value)
    )
    where = " (default: $M2FP_{})" if from_environment else ""
    parser.add_argument("--device", default=defaults[0], help=DEVICE_HELP + where.format("DEVICE"))
    parser.add_argument(
        "--engine",
        choices=[e.value for e in Engine],
        default=defaults[1],
        help=ENGINE_HELP + where.format("ENGINE"),
    )
    parser.add_argument(
        "--precision",
        choices=[p.value for p in Precision],
        default=defaults[2],
        help=PRECISION_HELP + " (see BENCHMARKS.md)" + where.format("PRECISION"),
    )
    parser.add_argument(
        "--threads", type=_threads, default=None, help=THREADS_HELP + where.format("THREADS")
    )
    if batch:
        parser.add_argument(
            "--batch-size",
            type=option_rule(check_batch_size),
            default=None,
            help="images per network call (default: 8 on CUDA, 1 elsewhere); only images "
            "of the same network input size share a batch",
        )


def option_rule(check: Callable[[int], object]) -> Callable[[str], int]:
    """An argparse ``type`` applying a ``ParserOptions`` rule to a flag: the CLI refuses what
    the Python API and the server settings refuse, as a usage error in the flag's terms."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("must be a whole number") from None
        try:
            check(value)
        except ParserOptionError as exc:
            raise argparse.ArgumentTypeError(exc.reason) from None
        return value

    return parse


def _threads(text: str) -> int:
    """``--threads``: the rule is ``check_threads``'s, its message without the option name."""
    try:
        value = int(text)
    except ValueError:
        value = 0  # refused below, with the range in the message
    try:
        check_threads(value)
    except ComputeChoiceError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("threads ")) from None
    return value
