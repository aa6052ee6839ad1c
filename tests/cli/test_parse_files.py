"""``m2fp parse``'s file handling on its own: atomic commits that survive Ctrl-C, the watch
poller's stability rule and the frame reader."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path, PurePath

import pytest

from m2fp.cli import parse_outputs
from m2fp.cli.parse_inputs import IncompleteFrameError, frames, watch
from m2fp.cli.parse_outputs import commit


def test_commit_renames_everything_even_when_interrupted(tmp_path, monkeypatch):
    real_replace = os.replace
    calls = []

    def replace_and_interrupt(source, target):
        if not calls:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the renames
        calls.append(target)
        real_replace(source, target)

    monkeypatch.setattr(parse_outputs.os, "replace", replace_and_interrupt)
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


def test_watch_takes_a_file_once_it_stopped_changing(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    growing = inbox / "a.png"
    growing.write_bytes(b"12")
    looks = []

    def look(_seconds):
        looks.append(1)
        if len(looks) == 1:
            growing.write_bytes(b"1234")  # still being written at the second look
        if len(looks) == 3:
            (inbox / ".hidden.png").write_bytes(b"x")
            (inbox / "notes.txt").write_bytes(b"x")

    items = watch(inbox, recursive=False, out_dir=tmp_path / "out", sleep=look)
    first = next(items)
    assert first.name == "a.png" and first.stem == PurePath("a") and len(looks) == 2
    growing.write_bytes(b"changed after it was taken")
    (inbox / "b.png").write_bytes(b"b")
    second = next(items)
    assert second.name == "b.png"  # a.png is not taken again


def test_frames_are_cut_from_the_stream():
    stream = io.BytesIO(bytes(range(24)) * 2)
    items = list(frames(stream, (2, 4)))
    assert [item.name for item in items] == ["frame 0", "frame 1"]
    assert items[1].frame == bytes(range(24)) and items[1].size == (2, 4)
    assert list(frames(io.BytesIO(b""), (2, 4))) == []
    with pytest.raises(IncompleteFrameError, match="inside frame 0: 5 of 24 bytes"):
        list(frames(io.BytesIO(b"12345"), (2, 4)))
