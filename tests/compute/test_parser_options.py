"""ParserOptions: ModelScope's defaults, one validation for every interface."""

from __future__ import annotations

import pytest

from m2fp import ParserOptions
from m2fp.compute.parser_options import (
    MAX_BATCH_SIZE,
    MAX_PIXELS_RANGE,
    MAX_SIZE_RANGE,
    MIN_SIZE_RANGE,
    ParserOptionError,
    check_sizes,
)
from m2fp.compute.precision import Precision
from m2fp.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE
from tests.utils.without_torch import run_without_torch

# values at and just beyond the ends of each size range: the settings refuse exactly what
# ParserOptions refuses (tests/server/test_settings.py, tests/cli/test_arguments.py)
SIZE_PROBES = [
    ("min_size", MIN_SIZE_RANGE[0] - 1),
    ("min_size", MIN_SIZE_RANGE[0]),
    ("min_size", 1333),
    ("min_size", 10_000),
    ("max_size", MAX_SIZE_RANGE[0] - 1),
    ("max_size", MAX_SIZE_RANGE[1]),
    ("max_size", MAX_SIZE_RANGE[1] + 1),
    ("max_pixels", 0),
    ("max_pixels", MAX_PIXELS_RANGE[1]),
    ("max_pixels", MAX_PIXELS_RANGE[1] + 1),
]


def test_defaults_are_modelscopes():
    options = ParserOptions()
    assert (
        (options.min_size, options.max_size)
        == (DEFAULT_MIN_SIZE, DEFAULT_MAX_SIZE)
        == (
            640,
            1333,
        )
    )
    assert options.max_pixels == DEFAULT_MAX_PIXELS
    assert options.precision is Precision.FP32


def test_precision_given_as_text():
    assert ParserOptions(precision="bf16").precision is Precision.BF16


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_size": 0}, "min_size must be a whole number from 32 to 4096"),
        ({"min_size": 10_000, "max_size": 10_000}, "min_size must be"),
        ({"max_size": 9000}, "max_size must be a whole number from 32 to 8192"),
        ({"min_size": 800, "max_size": 700}, "max_size must be at least min_size"),
        ({"min_size": 640.5}, "min_size must be a whole number"),
        ({"max_pixels": 0}, "max_pixels must be"),
        ({"max_pixels": 200_000_001}, "max_pixels must be"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"batch_size": MAX_BATCH_SIZE + 1}, "batch_size must be"),
        ({"batch_size": True}, "batch_size must be"),
        ({"precision": "int4"}, "precision must be one of"),
    ],
)
def test_bad_options_are_value_errors(values, message):
    with pytest.raises(ValueError, match=message):
        ParserOptions(**values)


def test_options_are_frozen():
    with pytest.raises(AttributeError):
        ParserOptions().min_size = 5  # type: ignore[misc]


def test_flip_is_off_by_default_and_must_be_a_bool():
    assert ParserOptions().flip is False
    assert ParserOptions(flip=True).flip is True
    with pytest.raises(ValueError, match="flip"):
        ParserOptions(flip="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("min_size", "max_size"),
    [(MIN_SIZE_RANGE[0], MIN_SIZE_RANGE[0]), (MIN_SIZE_RANGE[1], MAX_SIZE_RANGE[1]), (640, 1333)],
)
def test_sizes_at_the_ends_of_their_ranges_pass(min_size, max_size):
    check_sizes(min_size, max_size)
    assert ParserOptions(min_size=min_size, max_size=max_size).max_size == max_size


def test_range_errors_carry_the_option_and_the_bare_reason():
    with pytest.raises(ParserOptionError) as caught:
        ParserOptions(max_pixels=MAX_PIXELS_RANGE[1] + 1)
    assert caught.value.fields == ("max_pixels",)
    assert caught.value.reason == f"must be a whole number from 1 to {MAX_PIXELS_RANGE[1]}"


class _Flags:
    """What argparse gives: some fields, some None (not given), one the options lack."""

    min_size = 128
    max_size = 256
    device = None
    precision = "fp32"
    flip = True
    batch_size = None
    alpha = 0.6


def test_from_fields_takes_what_the_record_names_and_defaults_the_rest():
    options = ParserOptions.from_fields(_Flags())
    assert options == ParserOptions(min_size=128, max_size=256, flip=True)


def test_from_fields_applies_the_same_rules():
    flags = _Flags()
    flags.min_size = 10_000
    with pytest.raises(ParserOptionError, match="min_size"):
        ParserOptions.from_fields(flags)


def test_parser_options_load_and_check_sizes_where_torch_is_absent() -> None:
    # the slim runtime validates its options without torch installed
    done = run_without_torch(
        """
        from m2fp.compute.parser_options import ParserOptions
        ParserOptions(engine="openvino", min_size=64, max_size=128)
        try:
            ParserOptions(engine="openvino", min_size=128, max_size=64)
        except ValueError as error:
            print("refused:", error)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "refused: max_size must be at least min_size" in done.stdout
