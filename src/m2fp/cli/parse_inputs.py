"""Where ``m2fp parse`` gets its images: files and directories (walked, optionally
recursively), a watched directory (polled until interrupted), or raw RGB24 frames on stdin.

Each image becomes an ``Item`` with the stem its outputs are written under, relative to
``--out``: a file's own stem, a file found in a directory its path below that directory (so
``a/x.jpg`` and ``b/x.jpg`` of one tree do not collide), ``frame_000012`` for frames.

Nothing here reads a file: each is read later through ``m2fp.imaging.input_file`` (regular
files only, size-capped, no symlinks out of its directory unless ``--follow-symlinks``). A
symlinked folder met while walking is entered only if it is followed and leads out of the
directory (one that stays inside is walked under its real name already); unfollowed, it
becomes an item that is refused on its own line.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

from m2fp.cli.errors import EXIT_USAGE, CLIError
from m2fp.imaging.input_file import InputFileError
from m2fp.imaging.input_folder import walk

# how often a watched directory is looked at; a new file is taken once its size and time
# have not changed between two looks (so a file still being copied is not read half-way)
WATCH_INTERVAL = 0.5


@dataclass(frozen=True)
class Item:
    """One image to parse.

    Attributes:
        name: how messages and the JSON lines name it: a file's name, a walked file's path
            below its directory, or ``frame N``.
        stem: output path stem relative to ``--out``.
        path: the file, or None for a frame.
        root: the directory ``path`` was found in (its symlinks may not lead out of it), or
            None for a file named directly.
        refused: why the item was refused while walking (a symlinked folder not followed).
        frame: a frame's RGB24 bytes, row by row.
        size: (width, height) of a frame.
    """

    name: str
    stem: PurePath
    path: Path | None = None
    root: Path | None = None
    refused: InputFileError | None = None
    frame: bytes | None = None
    size: tuple[int, int] | None = None


def _found_item(path: Path, refused: InputFileError | None, directory: Path) -> Item:
    """The item of one ``walk`` result, named by its path below ``directory``."""
    below = path.relative_to(directory)
    return Item(
        name=str(below), stem=below.with_suffix(""), path=path, root=directory, refused=refused
    )


def collect(
    arguments: list[str], *, recursive: bool, out_dir: Path, follow_symlinks: bool = False
) -> list[Item]:
    """The items of the positional arguments, in order.

    A path that is not a directory stays an item even if it does not exist: it fails when
    read, on one line, like any other bad file.

    Raises:
        CLIError: two inputs would write the same outputs (exit code 2).
    """
    items: list[Item] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = walk(
                path, recursive=recursive, out_dir=out_dir, follow_symlinks=follow_symlinks
            )
            items.extend(_found_item(each, refused, path) for each, refused in found)
        else:
            items.append(Item(name=path.name, stem=PurePath(path.stem), path=path))
    seen: dict[PurePath, str] = {}
    for item in items:
        if item.refused is not None:
            continue  # writes nothing
        if item.stem in seen:
            raise CLIError(
                f"{seen[item.stem]} and {item.name} would write the same outputs "
                f"({item.stem}_*); parse them into different --out directories",
                EXIT_USAGE,
            )
        seen[item.stem] = item.name
    return items


def watch(
    directory: Path,
    *,
    recursive: bool,
    out_dir: Path,
    follow_symlinks: bool = False,
    interval: float = WATCH_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Item]:
    """Items for the images in ``directory``, those there now first, then each new one once
    its size and modification time are the same at two looks ``interval`` apart. Runs until
    the caller stops (Ctrl-C). A file is taken once, even if it changes later.

    Only ``stat`` is used here; what is not a regular file (a FIFO, a device, a refused
    symlinked folder) becomes an item at once, to be refused on its own line when read.

    Raises:
        CLIError: ``directory`` is not a directory (exit code 2).
    """
    if not directory.is_dir():
        raise CLIError(f"--watch {directory}: not a directory", EXIT_USAGE)
    taken: set[Path] = set()
    last_seen: dict[Path, tuple[int, int]] = {}
    while True:
        current: dict[Path, tuple[int, int]] = {}
        found = walk(
            directory, recursive=recursive, out_dir=out_dir, follow_symlinks=follow_symlinks
        )
        for path, refused in found:
            if path in taken:
                continue
            try:
                info = path.stat()
            except OSError:
                continue  # gone again
            if refused is not None or not stat.S_ISREG(info.st_mode):
                taken.add(path)
                yield _found_item(path, refused, directory)
                continue
            current[path] = (info.st_size, info.st_mtime_ns)
        for path, signature in current.items():
            if last_seen.get(path) == signature and signature[0] > 0:
                taken.add(path)
                yield _found_item(path, None, directory)
        last_seen = current
        sleep(interval)


class IncompleteFrameError(CLIError):
    """stdin ended inside a frame."""


def frames(stream: BinaryIO, size: tuple[int, int]) -> Iterator[Item]:
    """One item per raw RGB24 frame of ``size`` (width, height) on ``stream``, until it ends.

    Raises:
        IncompleteFrameError: the stream ended inside a frame.
    """
    width, height = size
    frame_bytes = width * height * 3
    index = 0
    while True:
        buffer = bytearray(frame_bytes)
        view = memoryview(buffer)
        filled = 0
        while filled < frame_bytes:
            got = stream.readinto(view[filled:])
            if not got:
                break
            filled += got
        if filled == 0:
            return
        if filled < frame_bytes:
            raise IncompleteFrameError(
                f"stdin ended inside frame {index}: {filled} of {frame_bytes} bytes "
                f"({width}x{height} RGB24)"
            )
        yield Item(
            name=f"frame {index}",
            stem=PurePath(f"frame_{index:06d}"),
            frame=bytes(buffer),
            size=size,
        )
        index += 1
