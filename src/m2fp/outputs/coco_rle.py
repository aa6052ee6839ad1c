"""COCO run-length encoding of binary masks, as ``pycocotools.mask`` writes it.

A mask of height h and width w is read column by column (Fortran order); ``counts`` are the
lengths of alternating runs, starting with a run of 0s (possibly empty). The compressed form
(``counts`` as a string) writes each count, from the third on as the difference to the count
two before, in 5-bit groups, low first, with bit 0x20 meaning "more groups follow" and the
last group sign-extended; each group is stored as the character ``chr(group + 48)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from m2fp.outputs.errors import OutputRequestError

Rle = dict[str, Any]


def run_lengths(mask: np.ndarray) -> list[int]:
    """The alternating run lengths of an HxW mask in column order, 0s first."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return [0]
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(bounds).tolist()
    return [0, *counts] if flat[0] else counts


def compress(counts: list[int]) -> str:
    """The COCO string form of run lengths."""
    out: list[str] = []
    for index, count in enumerate(counts):
        value = count - counts[index - 2] if index > 2 else count
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = not ((value == 0 and not group & 0x10) or (value == -1 and group & 0x10))
            out.append(chr(group + (0x20 if more else 0) + 48))
    return "".join(out)


def decompress(text: str) -> list[int]:
    """Run lengths from the COCO string form.

    Raises:
        OutputRequestError: not a valid string.
    """
    counts: list[int] = []
    position = 0
    while position < len(text):
        value = shift = 0
        more = True
        group = 0
        while more:
            if position >= len(text):
                raise OutputRequestError("the RLE string ends inside a count")
            group = ord(text[position]) - 48
            if not 0 <= group < 64:
                raise OutputRequestError("the RLE string has a character outside its alphabet")
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            shift += 5
            position += 1
        if group & 0x10:
            value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def encode(mask: np.ndarray) -> Rle:
    """``{"size": [h, w], "counts": str}`` of an HxW mask (bool, or nonzero = set)."""
    height, width = mask.shape
    return {"size": [int(height), int(width)], "counts": compress(run_lengths(mask))}


def _counts(rle: Rle) -> list[int]:
    counts = rle.get("counts")
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        return decompress(counts)
    if isinstance(counts, list) and all(isinstance(c, int) and c >= 0 for c in counts):
        return counts
    raise OutputRequestError("RLE counts must be a COCO string or a list of run lengths")


def decode(rle: Rle) -> np.ndarray:
    """The HxW bool mask of an RLE (compressed string or uncompressed list counts).

    Raises:
        OutputRequestError: malformed, or runs that do not add up to h x w.
    """
    size = rle.get("size")
    if not (isinstance(size, list | tuple) and len(size) == 2 and all(v >= 0 for v in size)):
        raise OutputRequestError("RLE size must be [height, width]")
    height, width = int(size[0]), int(size[1])
    counts = _counts(rle)
    if any(c < 0 for c in counts) or sum(counts) != height * width:
        raise OutputRequestError("RLE runs do not cover the mask exactly")
    values = np.resize(np.array([False, True]), len(counts))
    flat = np.repeat(values, counts)
    return flat.reshape((width, height)).T.copy()


def area(rle: Rle) -> int:
    """Pixels set in an RLE mask (the sum of its runs of 1s)."""
    return int(sum(_counts(rle)[1::2]))
