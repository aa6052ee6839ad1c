"""Secret files (``M2FP_*_FILE``): read bounded, whitespace trimmed, and refused with a reason
that never shows the content."""

from __future__ import annotations

import os
import threading

import pytest

from m2fp.server.secret_file import MAX_SECRET_FILE_BYTES, SecretFileError, read_secret_file


def test_text_is_read_without_the_trailing_newline(tmp_path):
    path = tmp_path / "salt"
    path.write_text("  a-long-secret-log-salt\n")
    assert read_secret_file(path) == "a-long-secret-log-salt"


def test_symlinks_are_followed_as_kubelet_mounts_them(tmp_path):
    """kubelet mounts a secret key as ``name -> ..data/name``."""
    (tmp_path / "..data").mkdir()
    (tmp_path / "..data" / "salt").write_text("value-behind-a-link")
    (tmp_path / "salt").symlink_to("..data/salt")
    assert read_secret_file(tmp_path / "salt") == "value-behind-a-link"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SecretFileError, match="does not exist"):
        read_secret_file(tmp_path / "absent")


def test_unreadable_path_is_refused(tmp_path):
    """A path through a file (ENOTDIR): an error even for root, which mode bits do not stop."""
    path = tmp_path / "salt"
    path.write_text("secret-content-123")
    with pytest.raises(SecretFileError, match="could not be read") as caught:
        read_secret_file(path / "child")
    assert "secret-content-123" not in str(caught.value)


def test_directory_is_refused(tmp_path):
    with pytest.raises(SecretFileError, match="not a regular file"):
        read_secret_file(tmp_path)


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_secret_file(fifo)
        except SecretFileError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive():  # unblock the thread so that the test run ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert "not a regular file" in str(outcome[0])


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * (MAX_SECRET_FILE_BYTES + 1))
    with pytest.raises(SecretFileError, match="larger than"):
        read_secret_file(path)
    path.write_bytes(b"x" * MAX_SECRET_FILE_BYTES)
    assert len(read_secret_file(path)) == MAX_SECRET_FILE_BYTES


def test_binary_file_is_refused_without_its_bytes(tmp_path):
    path = tmp_path / "key"
    path.write_bytes(b"\xff\xfesecret-bytes")
    with pytest.raises(SecretFileError, match="not UTF-8") as caught:
        read_secret_file(path)
    assert "secret-bytes" not in str(caught.value)
