"""The files of one parsed image, as ``m2fp parse`` and the ``files`` form of ``m2fp batch``
write them (one code path, so both write the same names and bytes), and how: every file of
the image is first written under a hidden temporary name in its directory, then all are
renamed into place, the JSON summary last. An interrupted run therefore leaves no
half-written file, and an image whose ``<stem>.json`` exists has all its outputs (what
``--skip-existing`` relies on).

Per image, under ``--out``: ``<stem>_vis.png`` (overlay), ``<stem>_labels.png`` (label map,
in ``--label-set``), ``<stem>_mask_<mask>.png`` and ``<stem>_agnostic_<kind>.png`` (with
``--format png``), and ``<stem>.json`` (summary; with ``--format rle`` the masks inside).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS
from m2fp.outputs.mask_encoding import mask_png, mask_rle
from m2fp.outputs.requested import OutputRequest, make_masks
from m2fp.results.parsing_result import ParsingResult


@dataclass(frozen=True)
class OutputPlan:
    """The outputs asked for on the command line."""

    request: OutputRequest
    alpha: float

    def file_names(self, stem: PurePath) -> list[PurePath]:
        """Every file written for ``stem``, relative to ``--out``, the JSON last."""
        names = [f"{stem.name}_vis.png", f"{stem.name}_labels.png"]
        if self.request.encoding == "png":
            names += [f"{stem.name}_mask_{spec}.png" for spec in self.request.specs]
            names += [f"{stem.name}_agnostic_{kind}.png" for kind in self.request.kinds]
        names.append(f"{stem.name}.json")
        return [stem.parent / name for name in names]

    def done(self, out_dir: Path, stem: PurePath) -> bool:
        """Every output of ``stem`` is there."""
        return all((out_dir / name).is_file() for name in self.file_names(stem))

    def render(self, result: ParsingResult, name: str, stem: PurePath) -> dict[PurePath, bytes]:
        """The bytes of every file of one image, in ``file_names`` order.

        Raises:
            PersonNotFoundError: the person asked for is not in the image.
        """
        request = self.request
        names = self.file_names(stem)
        labels = OUTPUT_LABEL_SETS[request.label_set] if request.label_set else result.label_set
        summary: dict[str, Any] = {
            "image": name,
            **result.to_dict(),
            "label_set": labels.name,
            "classes": list(labels.names),
        }
        files = {
            names[0]: result.visualize(alpha=self.alpha),
            names[1]: result.label_map_png(request.label_set),
        }
        if request.any_masks:
            made = make_masks(result, request)
            summary["mask_scope"] = {"person": made.person, "box": list(made.box)}
            masks = {f"mask_{k}": m for k, m in made.grouped.items()}
            masks.update({f"agnostic_{k}": m for k, m in made.agnostic.items()})
            if request.encoding == "rle":
                summary["masks"] = {k: mask_rle(m) for k, m in made.grouped.items()}
                summary["agnostic_masks"] = {k: mask_rle(m) for k, m in made.agnostic.items()}
            else:
                for path, mask in zip(names[2:-1], masks.values(), strict=True):
                    files[path] = mask_png(mask)
                summary["masks"] = {k: f"{stem.name}_mask_{k}.png" for k in made.grouped}
                summary["agnostic_masks"] = {
                    k: f"{stem.name}_agnostic_{k}.png" for k in made.agnostic
                }
        files[names[-1]] = json.dumps(summary, indent=2).encode("utf-8")
        return files


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, then raise it: renames run to the end.

    Off the main thread (where Python cannot set signal handlers, e.g. a worker thread of a
    Ray actor) SIGINT never reaches this code, so there is nothing to hold.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


def commit(out_dir: Path, files: dict[PurePath, bytes]) -> None:
    """Write ``files`` (relative to ``out_dir``) atomically: each to a hidden temporary file
    beside its target, then all renamed in order (the last one, the JSON, last). On any
    failure before the renames, the temporary files are removed and nothing is changed."""
    staged: list[tuple[str, Path]] = []
    try:
        for relative, data in files.items():
            target = out_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            # created like a plain open() would (mode from the umask), but exclusively
            temporary = str(target.parent / f".{target.name}.{secrets.token_hex(6)}.part")
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            staged.append((temporary, target))
            with os.fdopen(handle, "wb") as out:
                out.write(data)
        with interrupts_deferred():
            for temporary, target in staged:
                os.replace(temporary, target)
            staged.clear()
    finally:
        for temporary, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
