"""Reading one input image file whose path came from a user or a folder walk, bounded.

A path named ``*.jpg`` may be anything: a FIFO that blocks a reader forever, a device, a
20 GB sparse file, or a symlink out of the folder being parsed. So a file is opened without
blocking (``O_NONBLOCK``: a FIFO opens at once), checked on the open descriptor (``fstat``:
a regular file, no bigger than the cap) and read to at most the cap; a symlink that leads
out of the folder the file was found in is refused unless the caller follows symlinks. The
CLI and the Ray batch job read every input through here; the server never reads files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from m2fp.errors import ImageError

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class InputFileError(ImageError):
    """An input file was refused before decoding; unlike other ``ImageError`` messages this
    one names the file, as the caller gave it (the CLI prints it as it is)."""


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def check_inside(path: Path, *, root: Path | None, follow_symlinks: bool) -> Path:
    """The real location of ``path`` (symlinks resolved), if it may be read from ``root``.

    The one rule for symlinks met in an input folder, files and folders alike: one that
    leads out of ``root`` is taken only when the user follows symlinks.

    Args:
        path: a file or folder found in ``root`` (or named directly: ``root`` None).
        root: the folder being read, or None for a path the user named.
        follow_symlinks: take paths whose symlinks lead out of ``root``.

    Raises:
        InputFileError: kind ``outside_input``.
    """
    real = Path(os.path.realpath(path))
    if root is not None and not follow_symlinks and not _inside(real, Path(os.path.realpath(root))):
        raise InputFileError(
            "outside_input",
            f"{path}: a symlink out of {root} (pass --follow-symlinks to take it)",
        )
    return real


def read_input_file(
    path: Path, *, max_bytes: int, root: Path | None = None, follow_symlinks: bool = False
) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    Args:
        path: the file.
        max_bytes: the largest file accepted (the CLI's ``--max-file-size``).
        root: the folder ``path`` was found in; unless ``follow_symlinks``, a path whose real
            location (symlinks resolved) lies outside it is refused. None for a file named
            directly.
        follow_symlinks: take files whose symlinks lead out of ``root``.

    Raises:
        InputFileError: kind ``not_found`` (no such file), ``not_a_file`` (a directory, FIFO,
            device or socket), ``outside_input`` (a symlink out of ``root``),
            ``file_too_large`` (more than ``max_bytes``) or ``unreadable`` (no permission or
            an I/O error). Messages name the file as the caller gave it.
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    real = check_inside(path, root=root, follow_symlinks=follow_symlinks)
    try:
        fd = os.open(real, _READ_FLAGS)
    except FileNotFoundError:
        raise InputFileError("not_found", f"{path}: the file does not exist") from None
    except IsADirectoryError:
        raise InputFileError("not_a_file", f"{path}: a directory, not an image file") from None
    except OSError as exc:
        raise InputFileError("unreadable", f"{path}: cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError("not_a_file", f"{path}: not a regular file")
        if info.st_size > max_bytes:
            raise InputFileError(
                "file_too_large",
                f"{path}: {info.st_size} bytes, more than the limit of {max_bytes}",
            )
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        remaining = max_bytes + 1  # one more than allowed: a file that grew is seen
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise InputFileError("unreadable", f"{path}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if remaining <= 0:
        raise InputFileError("file_too_large", f"{path}: more than the limit of {max_bytes} bytes")
    return b"".join(chunks)
