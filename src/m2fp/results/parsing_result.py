"""What a parse returns: persons with their parts, a label map, and ways to export them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from m2fp.defaults import DEFAULT_ALPHA
from m2fp.imaging.decoder import encode_png
from m2fp.labels import LabelSet, label_set_of
from m2fp.outputs import coco_rle
from m2fp.outputs.agnostic import agnostic_mask
from m2fp.outputs.errors import OutputRequestError
from m2fp.outputs.grouped_masks import grouped_mask
from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS, remap_rule
from m2fp.outputs.mask_rules import KEEP_PARTS, AgnosticOptions, MaskOptions, PersonSpec
from m2fp.outputs.person_scope import PersonLike
from m2fp.outputs.remap import remap_label_map
from m2fp.processing.masks import CroppedMask
from m2fp.processing.postprocess import Instance, ParsedOutput
from m2fp.results.visualization import render_overlay


class _MaskedInstance:
    """Box, area and full-size mask of an instance, derived from its cropped ``mask_data``."""

    mask_data: CroppedMask

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in pixels of the original image, ends exclusive."""
        return self.mask_data.bbox

    @property
    def area(self) -> int:
        return self.mask_data.area

    @property
    def mask(self) -> np.ndarray:
        """HxW boolean mask at the original size."""
        return self.mask_data.full()


@dataclass(frozen=True)
class Part(_MaskedInstance):
    """One part instance (e.g. the hair of one person).

    Attributes:
        label: class name, e.g. ``"Hair"``.
        label_id: class index in the label map.
        score: instance score in [0, 1].
        mask_data: the binary mask, stored cropped; see ``mask``.
    """

    label: str
    label_id: int
    score: float
    mask_data: CroppedMask = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": round(self.score, 4),
            "bbox": list(self.bbox),
            "area": self.area,
        }


@dataclass(frozen=True)
class Person(_MaskedInstance):
    """One human instance and the parts assigned to it.

    Attributes:
        score: human instance score in [0, 1].
        mask_data: the person's binary mask, stored cropped; see ``mask``.
        parts: parts that overlap this person more than any other, best score first.
    """

    score: float
    mask_data: CroppedMask = field(repr=False)
    parts: tuple[Part, ...] = ()

    def part_mask(self, *labels: str) -> np.ndarray:
        """Union of this person's parts with the given labels, e.g. ``("Face", "Hair")``."""
        out = np.zeros(self.mask_data.size, dtype=bool)
        for part in self.parts:
            if part.label in labels:
                part.mask_data.paint(out, True)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "bbox": list(self.bbox),
            "area": self.area,
            "parts": [p.to_dict() for p in self.parts],
        }


@dataclass(frozen=True)
class ParsingResult:
    """Everything one parse produced, at the original image size.

    Attributes:
        image: the (upright, RGB) image that was parsed; used by ``visualize``.
        label_map: HxW uint8 semantic labels, indices into ``class_names``.
        persons: human instances, best score first, each with its parts.
        unassigned_parts: parts that overlap no person.
        class_names: names of all classes, index = label id (the multi-person model's end
            with "Human", which the label map never holds).

    The single-person model's results are ``SinglePersonResult`` (``m2fp.results.single_person``).
    """

    image: Image.Image = field(repr=False)
    label_map: np.ndarray = field(repr=False)
    persons: tuple[Person, ...]
    unassigned_parts: tuple[Part, ...]
    class_names: tuple[str, ...]

    @property
    def label_set(self) -> LabelSet:
        """The classes ``label_map`` holds (CIHP for the multi-person model, LIP for the
        single-person one)."""
        return label_set_of(self.class_names)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.image.size

    def classes_present(self) -> list[str]:
        """Semantic classes that cover at least one pixel, background excluded."""
        ids = np.unique(self.label_map)
        return [self.class_names[i] for i in ids.tolist() if i != 0]

    def class_mask(self, *labels: str) -> np.ndarray:
        """HxW boolean union of semantic classes, e.g. ``class_mask("Face", "Hair")``."""
        names = self.label_set.names
        unknown = [name for name in labels if name not in names]
        if unknown:
            raise ValueError(f"unknown class names: {', '.join(unknown)}")
        ids = [names.index(name) for name in labels]
        return np.isin(self.label_map, ids)

    def mask_people(self) -> tuple[Sequence[PersonLike], np.ndarray]:
        """Whom masks can be restricted to (``person=``): the persons and the person map
        (``SinglePersonResult`` has one implicit person instead, the whole figure)."""
        return self.persons, self.person_map()

    def person_map(self) -> np.ndarray:
        """HxW uint8: 0 for no person, i for ``persons[i - 1]`` (better scores on top)."""
        out = np.zeros(self.label_map.shape, dtype=np.uint8)
        for index in range(min(len(self.persons), 255), 0, -1):
            self.persons[index - 1].mask_data.paint(out, index)
        return out

    def to_modelscope(self) -> dict[str, list[Any]]:
        """ModelScope's pipeline output: parts then humans, masks as HxW float32 0/1 arrays."""
        parts = [p for person in self.persons for p in person.parts] + list(self.unassigned_parts)
        parts.sort(key=lambda p: -p.score)
        masks: list[np.ndarray] = []
        labels: list[str] = []
        scores: list[float] = []
        for label, score, mask in [(p.label, p.score, p.mask_data) for p in parts] + [
            (self.class_names[-1], h.score, h.mask_data) for h in self.persons
        ]:
            masks.append(mask.full().astype(np.float32))
            labels.append(label)
            scores.append(score)
        return {"masks": masks, "labels": labels, "scores": scores}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: sizes, persons, parts, scores, boxes and areas."""
        width, height = self.size
        return {
            "width": width,
            "height": height,
            "classes_present": self.classes_present(),
            "persons": [p.to_dict() for p in self.persons],
            "unassigned_parts": [p.to_dict() for p in self.unassigned_parts],
        }

    def label_map_png(self, label_set: str | None = None) -> bytes:
        """The label map as a palette PNG (pixel value = class index, the set's colours), in
        the result's own label set or in ``label_set`` (see ``label_map_as``)."""
        labels, target = self.label_map, self.label_set
        if label_set is not None:
            labels, target = self.label_map_as(label_set), OUTPUT_LABEL_SETS[label_set]
        image = Image.fromarray(labels, mode="P")
        image.putpalette(target.palette_bytes())
        return encode_png(image)

    def label_map_as(self, label_set: str) -> np.ndarray:
        """HxW uint8 label map in another label set: ``cihp``, ``lip``, ``atr`` (with Neck) or
        ``viton`` (VITON-HD's 13 groups); tables in ``m2fp.outputs.label_sets``.

        Raises:
            OutputRequestError: unknown, or not derivable from this result's label set.
        """
        rule = remap_rule(self.label_set, label_set)
        persons, person_map = self.mask_people()
        boxes = [p.bbox for p in persons[:255]]
        return remap_label_map(self.label_map, rule, person_map=person_map, boxes=boxes)

    def mask(
        self,
        *specs: str,
        person: PersonSpec = None,
        invert: bool = False,
        dilate: int = 0,
        feather: int = 0,
        crop: bool = False,
    ) -> np.ndarray:
        """A grouped mask, e.g. ``mask("upper_clothes", person="main", dilate=8)``.

        Args:
            specs: groups (``hair``, ``face``, ``head``, ``upper_clothes``, ``lower_clothes``,
                ``full_clothes``, ``skin``, ``arms``, ``legs``, ``shoes``, ``background``,
                ``foreground``), class names, or unions joined with ``+``; all are united.
            person: None (everyone), a person index, or ``"main"`` (the largest).
            invert, dilate, feather, crop: see ``m2fp.outputs.mask_rules.MaskOptions``.

        Returns:
            HxW bool (the person's box with ``crop``); uint8 0..255 with ``feather``.

        Raises:
            OutputRequestError: unknown or underivable names, bad options.
            PersonNotFoundError: no such person.
        """
        if not specs:
            raise OutputRequestError("name at least one mask, e.g. mask('hair')")
        options = MaskOptions(
            person=person, invert=invert, dilate=dilate, feather=feather, crop=crop
        )
        persons, person_map = self.mask_people()
        return grouped_mask(
            self.label_map, self.label_set, specs, options, person_map=person_map, persons=persons
        )

    def agnostic_mask(
        self,
        kind: str,
        *,
        person: PersonSpec = None,
        keep_face: bool = True,
        keep_hair: bool = True,
        keep_hands: bool = True,
        keep_feet: bool = True,
        dilate: int | None = None,
        crop: bool = False,
        grey: bool = False,
    ) -> np.ndarray:
        """The try-on agnostic mask of ``kind``: ``upper_body``, ``lower_body``, ``dresses``
        or ``overall`` (the rule: ``m2fp.outputs.mask_rules``).

        Args:
            keep_face, keep_hair, keep_hands, keep_feet: never mask these parts.
            dilate: pixels; None = the longer side of the person's box (or image) / 50.
            grey: 127 inside, 0 outside (uint8), OOTDiffusion's ``mask_gray``.

        Returns:
            HxW bool (the person's box with ``crop``); uint8 with ``grey``.
        """
        flags = (keep_face, keep_hair, keep_hands, keep_feet)
        keep = tuple(part for part, kept in zip(KEEP_PARTS, flags, strict=True) if kept)
        options = AgnosticOptions(person=person, keep=keep, dilate=dilate, crop=crop, grey=grey)
        persons, person_map = self.mask_people()
        return agnostic_mask(
            self.label_map, self.label_set, kind, options, person_map=person_map, persons=persons
        )

    def to_coco_rle(
        self,
        *specs: str,
        person: PersonSpec = None,
        invert: bool = False,
        dilate: int = 0,
        crop: bool = False,
    ) -> coco_rle.Rle:
        """``{"size": [h, w], "counts": str}`` (COCO RLE, as pycocotools writes it) of
        ``mask(*specs, ...)``; ``m2fp.outputs.coco_rle.encode`` takes any other mask."""
        mask = self.mask(*specs, person=person, invert=invert, dilate=dilate, crop=crop)
        return coco_rle.encode(mask)

    def visualize(self, alpha: float = DEFAULT_ALPHA, *, legend: bool = True) -> bytes:
        """PNG of the class colours blended over the photo, with a legend of classes present.

        Args:
            alpha: weight of the colours (0 = photo only, 1 = colours only).
            legend: append a legend strip below the image.
        """
        overlay = render_overlay(
            self.image,
            self.label_map,
            alpha=alpha,
            legend=self.classes_present() if legend else None,
            class_names=self.class_names,
            palette=self.label_set.palette,
        )
        # a photo: zlib level 1 is ~3x faster than 6 for a file ~2% larger (BENCHMARKS.md)
        return encode_png(overlay, compress_level=1)


def assemble(
    parsed: ParsedOutput, image: Image.Image, class_names: tuple[str, ...]
) -> ParsingResult:
    """Group part instances under the human instance each overlaps most."""
    humans = parsed.humans
    assigned: list[list[Part]] = [[] for _ in humans]
    unassigned: list[Part] = []
    for inst in parsed.parts:
        part = _part(inst, class_names)
        overlaps = [inst.mask.intersection(h.mask) for h in humans]
        if overlaps and max(overlaps) > 0:
            assigned[int(np.argmax(overlaps))].append(part)
        else:
            unassigned.append(part)
    persons = tuple(
        Person(score=h.score, mask_data=h.mask, parts=tuple(parts))
        for h, parts in zip(humans, assigned, strict=True)
    )
    return ParsingResult(
        image=image,
        label_map=parsed.label_map,
        persons=persons,
        unassigned_parts=tuple(unassigned),
        class_names=class_names,
    )


def _part(inst: Instance, class_names: tuple[str, ...]) -> Part:
    return Part(
        label=class_names[inst.label], label_id=inst.label, score=inst.score, mask_data=inst.mask
    )
