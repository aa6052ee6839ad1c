"""The size flags of ``m2fp parse`` follow the ParserOptions rules the server settings follow:
the CLI takes exactly what they take, and refuses the rest as a usage error (exit code 2)
whose reason is one line, before anything heavy loads."""

from __future__ import annotations

import pytest

from m2fp import ParserOptions
from m2fp.cli.arguments import build_parser
from m2fp.compute.parser_options import MAX_BATCH_SIZE, MAX_SIZE_RANGE, MIN_SIZE_RANGE
from tests.compute.test_parser_options import SIZE_PROBES

PARSE = ["parse", "x.png", "--out", "o"]
FLAGS = {"min_size": "--min-size", "max_size": "--max-size", "batch_size": "--batch-size"}
BATCH_PROBES = [("batch_size", 0), ("batch_size", 1), ("batch_size", MAX_BATCH_SIZE),
                ("batch_size", MAX_BATCH_SIZE + 1)]  # fmt: skip


def accepted_by_the_options(values: dict[str, int]) -> bool:
    try:
        ParserOptions(**values)
    except ValueError:
        return False
    return True


def refusal(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(args)
    assert caught.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("field", "value"), [probe for probe in SIZE_PROBES if probe[0] in FLAGS] + BATCH_PROBES
)
def test_size_flags_take_what_the_options_take(field, value, capsys):
    values = {"min_size": MIN_SIZE_RANGE[0], "max_size": MAX_SIZE_RANGE[1], field: value}
    args = [*PARSE, *(arg for name, number in values.items() for arg in (FLAGS[name], str(number)))]
    if accepted_by_the_options(values):
        assert getattr(build_parser().parse_args(args), field) == value
    else:
        line = refusal(args, capsys)
        assert line.startswith(f"m2fp parse: error: argument {FLAGS[field]}: must be a whole")


def test_size_flags_that_are_no_numbers_are_usage_errors(capsys):
    assert refusal([*PARSE, "--min-size", "big"], capsys).endswith("must be a whole number")


def test_max_size_below_min_size_is_refused_naming_both_flags(capsys):
    line = refusal([*PARSE, "--min-size", "800", "--max-size", "700"], capsys)
    assert line == "m2fp parse: error: --max-size must be at least --min-size"


def test_parsed_flags_become_the_parsers_options():
    args = build_parser().parse_args([*PARSE, "--min-size", "128", "--max-size", "256", "--flip"])
    assert ParserOptions.from_fields(args) == ParserOptions(min_size=128, max_size=256, flip=True)
