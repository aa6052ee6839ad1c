"""The files of one parsed image, as ``m2fp parse`` and the ``files`` form of ``m2fp batch``
write them (one code path, so both write the same names and bytes), and how: every file of
the image is first written under a hidden temporary name in its directory, then all are
renamed into place, the JSON summary last. An interrupted run therefore leaves no
half-written file, and an image whose ``<stem>.json`` exists has all its outputs (what
``--skip-existing`` relies on).

Per image, under ``--out``: the overlay, the label map (in ``--label-set``), one PNG per
grouped and agnostic mask (with ``--format png``), and the JSON summary (with ``--format rle``
the masks inside), named by ``m2fp.outputs.file_names`` with every option that changes their
pixels (``<stem>_vis.png``, ``<stem>_labels.png``, ``<stem>_mask_hair_person1_crop.png``, ...,
``<stem>.json``), the scheme the WebUI's downloads follow too.
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

from m2fp.outputs.file_names import (
    agnostic_mask_name,
    grouped_mask_name,
    label_map_name,
    overlay_name,
    summary_name,
)
from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS
from m2fp.outputs.mask_encoding import mask_png, mask_rle
from m2fp.outputs.requested import OutputRequest, make_masks
from m2fp.results.parsing_result import ParsingResult


@dataclass(frozen=True)
class OutputPlan:
    """The outputs asked for on the command line."""

    request: OutputRequest
    alpha: float

    def mask_name(self, stem: str, spec: str) -> str:
        """The file of the grouped mask ``spec``."""
        o = self.request.mask_options
        return grouped_mask_name(
            stem,
            spec,
            person=o.person,
            crop=o.crop,
            dilate=o.dilate,
            feather=o.feather,
            invert=o.invert,
        )

    def agnostic_name(self, stem: str, kind: str) -> str:
        """The file of the agnostic mask ``kind``."""
        o = self.request.agnostic_options
        return agnostic_mask_name(
            stem, kind, person=o.person, crop=o.crop, dilate=o.dilate, keep=o.keep, grey=o.grey
        )

    def file_names(self, stem: PurePath) -> list[PurePath]:
        """Every file written for ``stem``, relative to ``--out``, the JSON last."""
        request, base = self.request, stem.name
        names = [
            overlay_name(base, alpha=self.alpha),
            label_map_name(base, label_set=request.label_set),
        ]
        if request.encoding == "png":
            names += [self.mask_name(base, spec) for spec in request.specs]
            names += [self.agnostic_name(base, kind) for kind in request.kinds]
        names.append(summary_name(base))
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
                summary["masks"] = {k: self.mask_name(stem.name, k) for k in made.grouped}
                summary["agnostic_masks"] = {
                    k: self.agnostic_name(stem.name, k) for k in made.agnostic
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
