"""Reading an input file: regular files only, bounded in size, no blocking on FIFOs, no
symlinks out of the folder being parsed unless asked."""

from __future__ import annotations

import os
import threading

import pytest

from m2fp.errors import ImageError
from m2fp.imaging.input_file import read_input_file

MIB = 1 << 20


def refusal(path, **kwargs) -> str:
    kwargs.setdefault("max_bytes", MIB)
    with pytest.raises(ImageError) as caught:
        read_input_file(path, **kwargs)
    assert str(path) in str(caught.value)
    return caught.value.kind


def test_a_regular_file_is_read_whole(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x" * 1000)
    assert read_input_file(path, max_bytes=1000) == b"x" * 1000


def test_missing_file_and_directory(tmp_path):
    assert refusal(tmp_path / "nope.jpg") == "not_found"
    (tmp_path / "dir.jpg").mkdir()
    assert refusal(tmp_path / "dir.jpg") == "not_a_file"


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    kinds: list[str] = []
    reader = threading.Thread(target=lambda: kinds.append(refusal(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "opening a FIFO blocked"
    assert kinds == ["not_a_file"]


def test_a_device_is_refused():
    assert refusal("/dev/zero") == "not_a_file"


def test_a_huge_sparse_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.jpg"
    with open(path, "wb") as handle:
        handle.truncate(20 * 1024 * MIB)  # 20 GB of holes: no disk, but read() would fill RAM
    assert refusal(path, max_bytes=10 * MIB) == "file_too_large"
    assert refusal(path, max_bytes=1) == "file_too_large"


def test_symlinks_out_of_the_folder_are_refused_unless_followed(tmp_path):
    inside, outside = tmp_path / "in", tmp_path / "secret"
    inside.mkdir()
    outside.mkdir()
    (outside / "x.jpg").write_bytes(b"secret")
    (inside / "own.jpg").write_bytes(b"own")
    (inside / "out.jpg").symlink_to(outside / "x.jpg")
    (inside / "alias.jpg").symlink_to(inside / "own.jpg")
    assert refusal(inside / "out.jpg", root=inside) == "outside_input"
    assert read_input_file(inside / "out.jpg", max_bytes=MIB, root=inside, follow_symlinks=True)
    assert read_input_file(inside / "alias.jpg", max_bytes=MIB, root=inside) == b"own"
    # a file named directly (no folder) may be a symlink anywhere: the user named it
    assert read_input_file(inside / "out.jpg", max_bytes=MIB) == b"secret"


def test_an_io_error_is_unreadable():
    # a regular file whose read fails (EIO at offset 0), readable by nobody, root included
    assert refusal("/proc/self/mem") == "unreadable"


def test_the_cap_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        read_input_file(tmp_path / "x", max_bytes=0)
