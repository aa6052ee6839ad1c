"""``m2fp parse``'s inputs on their own: the watch poller's stability rule and the frame
reader."""

from __future__ import annotations

import io
from pathlib import PurePath

import pytest

from m2fp.cli.parse_inputs import IncompleteFrameError, frames, watch


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
