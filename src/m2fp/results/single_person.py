"""What a parse with the single-person model returns.

That model does not detect people: it assumes the photo shows one and gives every pixel a
LIP class. So ``persons`` is empty, and each class present (background excluded) is one
``Part`` of ``unassigned_parts``, best score first, its mask every pixel of that class.
``label_map``, ``class_mask``, ``visualize`` and the PNGs work as for the multi-person model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from m2fp.outputs.person_scope import PersonLike, implicit_person
from m2fp.processing.masks import CroppedMask
from m2fp.processing.semantic import SemanticLabels
from m2fp.results.parsing_result import ParsingResult, Part


@dataclass(frozen=True)
class SinglePersonResult(ParsingResult):
    """A ``ParsingResult`` of the single-person model.

    Attributes:
        regions: one ``Part`` per class in the label map, background included, ascending
            class index: what ModelScope's pipeline returns for this model.
    """

    regions: tuple[Part, ...] = field(default=(), repr=False)

    def mask_people(self) -> tuple[Sequence[PersonLike], np.ndarray]:
        """One implicit person for masks, the whole figure (``person="main"`` or 0)."""
        return implicit_person(self.label_map)

    def to_modelscope(self) -> dict[str, list[Any]]:
        """ModelScope's pipeline output for this model: one entry per class present,
        background included, ascending class index; masks as HxW float64 0/1 arrays and
        score = sum(mask * sigmoid(semantic)) / (sum(mask) + 1), as it computes them."""
        return {
            "masks": [r.mask_data.full().astype(np.float64) for r in self.regions],
            "labels": [r.label for r in self.regions],
            "scores": [r.score for r in self.regions],
        }


def assemble_semantic(
    labels: SemanticLabels, image: Image.Image, class_names: tuple[str, ...]
) -> SinglePersonResult:
    """The result of one photo from its labelled semantic map."""
    regions = tuple(
        Part(
            label=class_names[index],
            label_id=index,
            score=score,
            mask_data=CroppedMask.from_full(labels.label_map == index),
        )
        for index, score in labels.scores.items()
    )
    parts = sorted((r for r in regions if r.label_id != 0), key=lambda p: -p.score)
    return SinglePersonResult(
        image=image,
        label_map=labels.label_map,
        persons=(),
        unassigned_parts=tuple(parts),
        class_names=class_names,
        regions=regions,
    )
