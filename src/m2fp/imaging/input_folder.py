"""The image files of an input folder, as ``m2fp parse DIR`` and ``m2fp batch DIR`` take them:
JPEG and PNG by suffix, hidden files and folders skipped, an output folder inside skipped, and
symlinked folders entered under the one symlink rule of ``m2fp.imaging.input_file`` (a folder
that leads out is refused unless symlinks are followed). Only names and ``stat`` are looked at
here; every file is read later through ``read_input_file``.
"""

from __future__ import annotations

import os
from pathlib import Path

from m2fp.imaging.input_file import InputFileError, check_inside

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def walk(
    directory: Path, *, recursive: bool, out_dir: Path, follow_symlinks: bool = False
) -> list[tuple[Path, InputFileError | None]]:
    """Image files in ``directory`` (and below, if ``recursive``), sorted, each with None;
    hidden files and folders and everything inside ``out_dir`` (the outputs, if it lies
    within) are skipped.

    A symlinked folder below leading out of ``directory`` is entered with ``follow_symlinks``
    (each real folder once: a symlink loop ends), else listed with its refusal.
    """
    found: list[tuple[Path, InputFileError | None]] = []
    entered = {os.path.realpath(directory)}
    for root, folders, files in os.walk(directory, followlinks=follow_symlinks):
        here = Path(root)
        found.extend((here / f, None) for f in sorted(files) if _is_image(here / f))
        if not recursive:
            break
        kept: list[str] = []
        for name in sorted(folders):
            folder = here / name
            if name.startswith(".") or _inside(folder, out_dir):
                continue
            if folder.is_symlink():
                real = os.path.realpath(folder)
                if _inside(Path(real), directory) or real in entered:
                    continue  # walked under its real name, or a loop
                try:
                    check_inside(folder, root=directory, follow_symlinks=follow_symlinks)
                except InputFileError as refusal:
                    found.append((folder, refusal))
                    continue
                entered.add(real)
            kept.append(name)
        folders[:] = kept
    return found
