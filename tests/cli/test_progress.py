"""``m2fp parse`` on a terminal: the progress bar on stderr never shares a line with the JSON
result lines on stdout, and a single image shows its elapsed time. The real command, stdout
and stderr on one pseudo-terminal as in a shell."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time

from tests.conftest import golden_sizes

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WAIT = 180.0


def on_a_terminal(*args: str) -> tuple[int, str]:
    """Run ``m2fp parse`` with stdout and stderr on one pseudo-terminal; its exit code and
    everything the terminal received."""
    min_size, max_size = golden_sizes()
    command = [sys.executable, "-m", "m2fp", "parse", *args]
    command += [f"--min-size={min_size}", f"--max-size={max_size}"]
    leader, follower = pty.openpty()
    # a real terminal has a size; tqdm draws nothing in 0 columns
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("M2FP_")}
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    received = b""
    deadline = time.monotonic() + WAIT
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the other side closed: the process is gone
                    break
                if not chunk:
                    break
                received += chunk
            elif process.poll() is not None:
                break
        code = process.wait(timeout=60)
    finally:
        os.close(leader)
    # the terminal turns each newline into CR LF: back to plain newlines
    return code, received.decode("utf-8", "replace").replace("\r\n", "\n")


def screen_lines(received: str) -> list[str]:
    """What each terminal line ends up showing: after the last carriage return, no colours."""
    return [ANSI.sub("", line.split("\r")[-1]).strip() for line in received.split("\n")]


def test_result_lines_never_share_a_line_with_the_bar(tiny_model_dir, golden_image_path, tmp_path):
    for name in ("one", "two", "three"):
        shutil.copy(golden_image_path, tmp_path / f"{name}.png")
    images = [str(tmp_path / f"{name}.png") for name in ("one", "two", "three")]
    code, received = on_a_terminal(
        *images, "--model", str(tiny_model_dir), "--out", str(tmp_path / "o")
    )
    assert code == 0, received
    assert "3/3" in received  # the bar was drawn
    # every result line starts its own line, whole, wherever the bar was
    raw_lines = [ANSI.sub("", line) for line in received.split("\n")]
    results = [line.split("\r")[-1] for line in raw_lines if '{"image"' in line]
    assert len(results) == 3, received
    for line in results:
        assert line.startswith('{"image"'), repr(line)
        assert json.loads(line)["status"] == "ok"
    for line in raw_lines:
        if '{"image"' in line:
            assert "|" not in line.split('{"image"')[0].split("\r")[-1], repr(line)


def test_a_single_image_shows_its_elapsed_time(tiny_model_dir, golden_image_path, tmp_path):
    code, received = on_a_terminal(
        str(golden_image_path), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o")
    )
    assert code == 0, received
    shown = [line for line in screen_lines(received) if line]
    assert any(re.search(r"1/1 \[\d\d:\d\d", line) for line in ANSI.sub("", received).split("\r"))
    assert json.loads(next(line for line in shown if line.startswith('{"image"')))["status"] == "ok"


def test_off_a_terminal_one_image_draws_nothing(tiny_model_dir, golden_image_path, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "m2fp", "parse", str(golden_image_path), "--model",
         str(tiny_model_dir), "--out", str(tmp_path / "o"), "--min-size=128", "--max-size=256"],
        capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["status"] == "ok"


def test_the_bar_is_on_stderr_only(tiny_model_dir, golden_image_path, tmp_path):
    for name in ("a", "b"):
        shutil.copy(golden_image_path, tmp_path / f"{name}.png")
    done = subprocess.run(
        [sys.executable, "-m", "m2fp", "parse", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
         "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"),
         "--min-size=128", "--max-size=256"],
        capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2/2" in done.stderr
    assert [json.loads(line)["status"] for line in done.stdout.splitlines()] == ["ok", "ok"]
