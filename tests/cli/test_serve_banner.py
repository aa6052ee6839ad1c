"""``m2fp serve`` on a terminal: one human line with the URL, then the JSON logs; piped or with
``--log-format json``: JSON lines only. The real command, its stderr on a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from m2fp.cli.serve_banner import banner_line
from tests.conftest import golden_sizes
from tests.server.conftest import running_server, tiny_settings
from tests.utils.ports import free_port

WAIT = 120.0


def test_the_banner_says_where_and_what_a_newcomer_trips_over():
    plain = banner_line("http://127.0.0.1:8000", tiny_settings())
    assert plain.startswith("m2fp: WebUI and API on http://127.0.0.1:8000 — docs off")
    assert "rate limit 5/minute per address" in plain and "API key" not in plain
    open_docs = banner_line("http://[::1]:9000", tiny_settings(docs=True, rate_limit="9/second"))
    assert "docs on http://[::1]:9000/docs" in open_docs and "rate limit 9/second" in open_docs


def serve_on_a_terminal(model_dir: Path, *extra: str) -> tuple[list[str], bool]:
    """Run ``m2fp serve`` with stderr on a pseudo-terminal until ``/healthz`` answers; its
    stderr lines then, and whether it answered."""
    port = free_port()
    min_size, max_size = golden_sizes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("M2FP_")}
    env.update(M2FP_MIN_SIZE=str(min_size), M2FP_MAX_SIZE=str(max_size))
    command = [sys.executable, "-m", "m2fp", "serve", "--model", str(model_dir)]
    command += ["--port", str(port), *extra]
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    output = b""
    healthy = False
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and process.poll() is None:
            if select.select([leader], [], [], 0.2)[0]:
                output += os.read(leader, 65536)
            try:
                healthy = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success
            except httpx.TransportError:
                continue
            if healthy:
                break
        while select.select([leader], [], [], 0.5)[0]:  # what it wrote up to now
            try:
                output += os.read(leader, 65536)
            except OSError:
                break
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        os.close(leader)
    return output.decode("utf-8", "replace").splitlines(), healthy


def is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def test_on_a_terminal_one_human_line_then_json(tiny_model_dir):
    lines, healthy = serve_on_a_terminal(tiny_model_dir)
    assert healthy, lines
    human = [line for line in lines if not is_json(line)]
    assert len(human) == 1, lines
    assert human[0].startswith("m2fp: WebUI and API on http://127.0.0.1:")
    assert "docs off" in human[0] and "rate limit 5/minute" in human[0]
    assert any(json.loads(line).get("message", "").startswith("listening on") for line in lines
               if is_json(line))  # fmt: skip


def test_log_format_json_keeps_a_terminal_to_json_lines(tiny_model_dir):
    lines, healthy = serve_on_a_terminal(tiny_model_dir, "--log-format", "json")
    assert healthy, lines
    assert lines and all(is_json(line) for line in lines), lines


def test_not_a_terminal_gets_json_lines_only(tiny_model_dir, tmp_path):
    with running_server(tiny_model_dir, tmp_path / "server.log") as server:
        logged = server.log_path.read_text().splitlines()
    assert logged and all(is_json(line) for line in logged), logged
