"""Waiting for a file a child ``m2fp`` process is to write, failing with what it printed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Poll until ``path`` exists; fail (killing ``process`` on the deadline) with its output
    if it exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"m2fp exited early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path.name} never appeared: {process.communicate()}")
        time.sleep(0.1)
