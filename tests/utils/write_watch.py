"""``nothing_written``: proof that a block of code writes no file (audit hook + directory
snapshots), for the "plaintext never touches the disk" tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
FILE_EVENTS = {
    "tempfile.mkstemp",
    "tempfile.mkdtemp",
    "os.rename",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.mkdir",
    "shutil.copyfile",
}
_recorders: list[list[tuple]] = []
_hook_installed: list[bool] = []


def _audit(event: str, args: tuple) -> None:
    if not _recorders:
        return
    opens_for_writing = event == "open" and isinstance(args[2], int) and args[2] & WRITE_FLAGS
    if opens_for_writing or event in FILE_EVENTS:
        _recorders[-1].append((event, str(args[0])))


def tree(directory: Path) -> set[tuple[str, int]]:
    found = set()
    for root, _, files in os.walk(directory):
        for name in files:
            path = Path(root, name)
            try:
                found.add((str(path), path.stat().st_size))
            except OSError:
                continue
    return found


@contextmanager
def nothing_written(*directories: Path) -> Iterator[None]:
    """Assert that the block opens nothing for writing and leaves no new file behind."""
    if not _hook_installed:
        # audit hooks cannot be removed: this one stays, idle unless a recorder is active
        sys.addaudithook(_audit)
        _hook_installed.append(True)
    before = {d: tree(d) for d in directories}
    events: list[tuple] = []
    _recorders.append(events)
    try:
        yield
    finally:
        _recorders.pop()
    assert events == []
    for directory in directories:
        assert tree(directory) - before[directory] == set(), directory
