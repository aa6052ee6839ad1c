"""ParserOptions: ModelScope's defaults, one validation for every interface."""

from __future__ import annotations

import pytest

from m2fp import ParserOptions
from m2fp.compute.precision import Precision
from m2fp.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE
from tests.utils.without_torch import run_without_torch


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
    assert "refused: need 0 < min_size <= max_size" in done.stdout
