"""Control characters in human-facing CLI lines are shown as escapes, never sent raw."""

from __future__ import annotations

import subprocess
import sys

import pytest

from m2fp.cli.terminal_text import escape_controls


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("photo.jpg", "photo.jpg"),
        ("Zoë_写真.png", "Zoë_写真.png"),  # letters of any script stay as they are
        ("a\x1b[2Jb", "a\\x1b[2Jb"),  # clear screen
        ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),  # write the clipboard
        ("ok\rFAKE", "ok\\x0dFAKE"),  # overwrite the line
        ("one\ntwo", "one\\x0atwo"),
        ("tab\there", "tab\\x09here"),
        ("\x7f\x9b31m", "\\x7f\\x9b31m"),  # DEL, C1 CSI
        ("gpj.\u202eexe", "gpj.\\u202eexe"),  # right-to-left override
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
        ("bad\udcffbyte", "bad\\udcffbyte"),  # an undecodable byte of a file name
    ],
)
def test_controls_are_escaped(text, shown):
    assert escape_controls(text) == shown


def test_a_path_with_escapes_reaches_stderr_escaped(tmp_path):
    name = tmp_path / "evil\x1b[31m\x1b]0;title\x07"
    proc = subprocess.run(
        [sys.executable, "-m", "m2fp", "parse", f"--watch={name}", f"--out={tmp_path}"],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert b"\x1b" not in proc.stderr and b"\x07" not in proc.stderr
    assert b"evil\\x1b[31m\\x1b]0;title\\x07: not a directory" in proc.stderr
