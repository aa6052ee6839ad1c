"""The files of one parse result (``m2fp.results.output_files``): atomic commits that
survive Ctrl-C, leave nothing behind on failure and get the usual permissions."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path, PurePath

import pytest

from m2fp.results import output_files
from m2fp.results.output_files import commit


def test_commit_renames_everything_even_when_interrupted(tmp_path, monkeypatch):
    real_replace = os.replace
    calls = []

    def replace_and_interrupt(source, target):
        if not calls:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the renames
        calls.append(target)
        real_replace(source, target)

    monkeypatch.setattr(output_files.os, "replace", replace_and_interrupt)
    files = {PurePath("a.png"): b"a", PurePath("sub/b.png"): b"b", PurePath("a.json"): b"{}"}
    with pytest.raises(KeyboardInterrupt):
        commit(tmp_path, files)
    assert [Path(c).name for c in calls] == ["a.png", "b.png", "a.json"]
    assert (tmp_path / "sub" / "b.png").read_bytes() == b"b"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "a.json",
        "a.png",
        "b.png",
    ]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_failed_commit_leaves_nothing_behind(tmp_path):
    (tmp_path / "blocked").write_text("a file where a folder should be")
    files = {PurePath("x.png"): b"x", PurePath("blocked/y.png"): b"y", PurePath("x.json"): b""}
    with pytest.raises(OSError):
        commit(tmp_path, files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked"]


def test_outputs_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        commit(tmp_path, {PurePath("x.png"): b"x"})
    finally:
        os.umask(old)
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == 0o644


def test_commit_works_off_the_main_thread(tmp_path):
    """A Ray actor may run its method on a worker thread, where no signal handler can be
    set: the commit must still happen (it raised ValueError before)."""
    errors: list[BaseException] = []

    def write() -> None:
        try:
            commit(tmp_path, {PurePath("x.png"): b"x", PurePath("x.json"): b"{}"})
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=write)
    worker.start()
    worker.join(timeout=60)
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.png"]
