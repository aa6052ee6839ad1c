"""Real server processes for the stack test: each in its own process group, output to a file,
always stopped (TERM, then KILL after a bounded wait)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

STOP_TIMEOUT = 10.0
PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if the test process dies without cleaning up
    (the fixtures' finally blocks cover every other way out)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def http_ok(url: str, **kwargs: object) -> bool:
    """``url`` answers 200 (False while nothing listens yet)."""
    try:
        return httpx.get(url, timeout=2.0, **kwargs).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One server started with ``argv``; stdout and stderr go to ``log``.

    Args:
        name: shown in failure messages.
        argv: the command.
        log: file collecting the output (appended across restarts).
        env: the environment, or None for this process's.
    """

    def __init__(
        self, *, name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, ready: Callable[[], bool], *, timeout: float) -> None:
        """Poll ``ready`` until it is true; fail with the log tail if the process died or the
        time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Signal the whole process group and reap it; SIGKILL if it lingers."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
            except ProcessLookupError:
                process.wait(timeout=STOP_TIMEOUT)
        # children that outlived the leader (e.g. nginx workers after a killed master)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
