"""Horizontal-flip test-time augmentation: parse the photo and its mirror image, then average.

M2FP's published accuracy (CIHP mIoU 69.15, LIP mIoU 59.86) is measured with it; ModelScope's
pipeline runs without it, and so does ``HumanParser`` unless ``ParserOptions(flip=True)``. It
costs a second network pass and a second post-processing, about 2x the time.

The second pass is the ordinary pass run on the mirrored photo, and its outputs are mirrored
back at the photo's own size with the left/right classes swapped (``LabelSet.mirrored``:
arms 14/15, legs 16/17, shoes 18/19). Every merge below is symmetric in the two passes, so
parsing a mirrored photo gives exactly the mirror of the result, left and right swapped.

- Single-person model: the photo-size semantic probabilities of the two passes are averaged,
  band by band, before the argmax and the scores (``AveragedRows``).
- Multi-person model, label map: each class's probability map (ModelScope's pasted
  instances) is averaged over the two passes, a pass without that class counting 0, and the
  argmax is taken over the averages, as M2FP's own ``ParsingWithTTA`` does.
- Multi-person model, instances (``merge_instances``): parts of the same class, and humans,
  are paired across the passes greedily by mask IoU, highest first, each instance in at most
  one pair, a pair needing IoU >= 0.5. A pair becomes one instance scoring the mean of its
  two scores, with the union of its masks (the pixels where the mean of the two binary masks
  is at least 1/2). An instance found by one pass only keeps its mask and half its score
  (the other pass counts 0). The usual thresholds then apply to these scores (parts >= 0.1,
  humans > 0.1), and persons are grouped from the merged instances as from a single pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from m2fp.processing.postprocess import (
    HUMAN_MIN_SCORE,
    PART_MIN_SCORE,
    ClassMap,
    Instance,
    ParsedOutput,
    PassOutput,
    paste_label_map,
)
from m2fp.processing.semantic import SemanticRows

MATCH_IOU = 0.5


def mirror_image(picture: Image.Image) -> Image.Image:
    """The photo mirrored left to right (exact pixel copy)."""
    return picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


class MirroredRows:
    """Rows of the mirrored photo's semantic map, mirrored back with left/right swapped.

    Args:
        rows: the second pass's photo-size rows.
        mirrored: per class, its counterpart (``LabelSet.mirrored``).
    """

    def __init__(self, rows: SemanticRows, mirrored: Sequence[int]) -> None:
        self.rows = rows
        self.num_classes = rows.num_classes
        self.output_size = rows.output_size
        self.index = np.array(list(mirrored), dtype=np.int64)

    def band(self, start: int, stop: int) -> np.ndarray:
        return self.rows.band(start, stop)[self.index, :, ::-1]


class AveragedRows:
    """The mean of two sources of photo-size semantic rows (same classes and size)."""

    def __init__(self, first: SemanticRows, second: SemanticRows) -> None:
        if (first.num_classes, first.output_size) != (second.num_classes, second.output_size):
            raise ValueError("averaged semantic maps must have the same classes and size")
        self.first, self.second = first, second
        self.num_classes = first.num_classes
        self.output_size = first.output_size

    def band(self, start: int, stop: int) -> np.ndarray:
        return (self.first.band(start, stop) + self.second.band(start, stop)) / np.float32(2)


def _mirrored_map(found: ClassMap | None, width: int) -> ClassMap | None:
    if found is None:
        return None
    cols = slice(width - found.cols.stop, width - found.cols.start)
    return ClassMap(rows=found.rows, cols=cols, values=found.values[:, ::-1])


def _averaged_map(first: ClassMap | None, second: ClassMap | None) -> ClassMap | None:
    """The mean of two class maps, 0 outside each one's window."""
    maps = [m for m in (first, second) if m is not None]
    if not maps:
        return None
    top, bottom = min(m.rows.start for m in maps), max(m.rows.stop for m in maps)
    left, right = min(m.cols.start for m in maps), max(m.cols.stop for m in maps)
    total = np.zeros((bottom - top, right - left), dtype=np.float32)
    for m in maps:
        local = (
            slice(m.rows.start - top, m.rows.stop - top),
            slice(m.cols.start - left, m.cols.stop - left),
        )
        total[local] += m.values
    return ClassMap(rows=slice(top, bottom), cols=slice(left, right), values=total / np.float32(2))


def averaged_class_maps(
    direct: PassOutput, mirrored: PassOutput, mirror: Sequence[int], width: int
) -> Callable[[int], ClassMap | None]:
    """Class -> the mean of its map in ``direct`` and its counterpart's map in the mirrored
    pass, mirrored back."""

    def class_map(cls: int) -> ClassMap | None:
        return _averaged_map(
            direct.class_map(cls), _mirrored_map(mirrored.class_map(mirror[cls]), width)
        )

    return class_map


def _iou(a: Instance, b: Instance) -> float:
    inter = a.mask.intersection(b.mask)
    return inter / (a.mask.area + b.mask.area - inter) if inter else 0.0


def merge_instances(
    direct: Sequence[Instance], mirrored_back: Sequence[Instance]
) -> list[Instance]:
    """One class's instances of the two passes merged (see the module docstring); the
    second pass's already mirrored back, labels swapped. Unsorted, unfiltered."""
    pairs = sorted(
        (
            (iou, a.score + b.score, i, j)
            for i, a in enumerate(direct)
            for j, b in enumerate(mirrored_back)
            if (iou := _iou(a, b)) >= MATCH_IOU
        ),
        key=lambda pair: (-pair[0], -pair[1]),
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    merged: list[Instance] = []
    for _, _, i, j in pairs:
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        a, b = direct[i], mirrored_back[j]
        merged.append(
            Instance(label=a.label, score=(a.score + b.score) / 2, mask=a.mask.union(b.mask))
        )
    for used, instances in ((used_a, direct), (used_b, mirrored_back)):
        merged.extend(
            Instance(label=inst.label, score=inst.score / 2, mask=inst.mask)
            for k, inst in enumerate(instances)
            if k not in used
        )
    return merged


def _mirrored_instance(inst: Instance, mirror: Sequence[int]) -> Instance:
    return Instance(label=mirror[inst.label], score=inst.score, mask=inst.mask.mirrored())


def merge_passes(
    direct: PassOutput,
    mirrored: PassOutput,
    *,
    mirror: Sequence[int],
    num_parsing: int,
    output_size: tuple[int, int],
) -> ParsedOutput:
    """The multi-person result of a photo (``direct``) and its mirror image (``mirrored``).

    Args:
        mirror: per class index, its left/right counterpart; "Human" maps to itself.
        num_parsing: number of semantic classes ("Human" is class ``num_parsing``).
        output_size: (H, W) of the photo.
    """
    back_parts = [_mirrored_instance(p, mirror) for p in mirrored.parts]
    parts: list[Instance] = []
    for label in sorted({p.label for p in direct.parts} | {p.label for p in back_parts}):
        parts.extend(
            merge_instances(
                [p for p in direct.parts if p.label == label],
                [p for p in back_parts if p.label == label],
            )
        )
    humans = merge_instances(
        direct.humans, [_mirrored_instance(h, mirror) for h in mirrored.humans]
    )
    parts = sorted((p for p in parts if p.score >= PART_MIN_SCORE), key=lambda p: -p.score)
    humans = sorted((h for h in humans if h.score > HUMAN_MIN_SCORE), key=lambda h: -h.score)
    label_map, semantic_max = paste_label_map(
        averaged_class_maps(direct, mirrored, mirror, output_size[1]),
        num_parsing=num_parsing,
        output_size=output_size,
    )
    return ParsedOutput(parts=parts, humans=humans, label_map=label_map, semantic_max=semantic_max)
