"""Every option of every ``m2fp`` command says what it does and what happens when it is not
given: a newcomer reads ``--help`` instead of the source."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from m2fp.cli.arguments import build_parser
from m2fp.defaults import DEFAULT_ALPHA, DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE


def options(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.Action, bool]]:
    """(command, action, whether one of a required either-or group) for every option."""
    either_or = {
        id(action) for group in parser._mutually_exclusive_groups if group.required
        for action in group._group_actions
    }  # fmt: skip
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options(sub, f"{path} {name}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield path, action, id(action) in either_or


ALL = list(options(build_parser(), "m2fp"))


def test_the_walk_reaches_every_command():
    commands = {path for path, _, _ in ALL}
    assert {"m2fp parse", "m2fp serve", "m2fp scan", "m2fp model info"} <= commands
    assert len(ALL) > 60


@pytest.mark.parametrize(
    ("path", "action", "either_or"), ALL, ids=[f"{p} {a.option_strings[0]}" for p, a, _ in ALL]
)
def test_every_option_says_what_it_does_and_its_default(path, action, either_or):
    text = action.help or ""
    assert len(text) > 10, f"{path} {action.option_strings[0]} has no help"
    flag = isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
    if not (flag or action.required or either_or):
        assert "default" in text, f"{path} {action.option_strings[0]}: {text}"


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("parse", [f"default {DEFAULT_MIN_SIZE}", f"default {DEFAULT_MAX_SIZE}"]),
        ("parse", [f"default {DEFAULT_ALPHA}", "default: png", "default: none"]),
        ("serve", ["default 8000", "default 127.0.0.1"]),
    ],
)
def test_help_shows_the_defaults_in_a_real_process(command, shown):
    done = subprocess.run(
        [sys.executable, "-m", "m2fp", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    for text in shown:
        assert text in done.stdout
