"""ParserOptions: ModelScope's defaults, one validation for every interface."""

from __future__ import annotations

import pytest

from m2fp import ParserOptions
from m2fp.compute.precision import Precision
from m2fp.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE


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
        ({"min_size": 0}, "min_size <= max_size"),
        ({"min_size": 800, "max_size": 700}, "min_size <= max_size"),
        ({"max_pixels": 0}, "max_pixels"),
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
