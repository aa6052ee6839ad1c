"""Fixtures for the protection tests: keys, key files and encrypted copies of the tiny model."""

from __future__ import annotations

import base64
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from m2fp.protection.convert import encrypt_model_dir
from m2fp.protection.keys import generate_key, write_key_file

# 11 chunks for the ~2.8 MB tiny model: multi-chunk paths are exercised everywhere
SMALL_CHUNK = 256 << 10


def key_forms(key: bytes) -> list[str]:
    """Every text form a leaked key could take."""
    b64 = base64.b64encode(key).decode()
    url = base64.urlsafe_b64encode(key).decode()
    return [key.hex(), key.hex().upper(), b64, b64.rstrip("="), url, url.rstrip("=")]


def assert_no_key(text: str | bytes, *keys: bytes) -> None:
    """No key appears in ``text`` raw, hex or base64, not even a 12-character piece of one."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    for key in keys:
        assert key not in data
        assert key.decode("latin-1") not in data.decode("latin-1")
        for form in key_forms(key):
            pieces = {form[i : i + 12] for i in range(len(form) - 11)}
            found = [p for p in pieces if p.encode() in data]
            assert not found, "a piece of the key leaked"


def make_key_file(path: Path, key: bytes | None = None, mode: int = 0o600) -> Path:
    write_key_file(path, key if key is not None else generate_key())
    os.chmod(path, mode)
    return path


@pytest.fixture(scope="session")
def model_key() -> bytes:
    return generate_key()


@pytest.fixture(scope="session")
def protected_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("protected")


@pytest.fixture(scope="session")
def key_file(protected_dir: Path, model_key: bytes) -> Path:
    return make_key_file(protected_dir / "model.key", model_key)


@pytest.fixture(scope="session")
def encrypted_model(tiny_model_dir: Path, protected_dir: Path, model_key: bytes) -> Path:
    """The tiny model as an .m2fp file in 11 chunks (read-only: copy before tampering)."""
    out = protected_dir / "tiny.m2fp"
    encrypt_model_dir(tiny_model_dir, key=model_key, out=out, chunk_size=SMALL_CHUNK)
    return out


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


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """A temp dir of our own (the machine's /tmp is shared and busy), used by every temp-file
    API in this process while the test runs."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


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
