"""Every mask one request asks for, made in one pass: the CLI and the server both describe
what they want as an ``OutputRequest`` and write out what ``make_masks`` returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from m2fp.labels import LabelSet
from m2fp.outputs.agnostic import agnostic_mask
from m2fp.outputs.errors import OutputRequestError
from m2fp.outputs.grouped_masks import grouped_mask
from m2fp.outputs.label_sets import remap_rule
from m2fp.outputs.mask_encoding import check_encoding
from m2fp.outputs.mask_rules import (
    KEEP_ALL,
    AgnosticOptions,
    Encoding,
    MaskOptions,
    PersonSpec,
    spec_ids,
)
from m2fp.outputs.person_scope import PersonLike, resolve_person

Box = tuple[int, int, int, int]


class ResultLike(Protocol):
    """What mask making needs of a ``ParsingResult``."""

    label_map: np.ndarray

    @property
    def label_set(self) -> LabelSet: ...

    @property
    def size(self) -> tuple[int, int]: ...

    def mask_people(self) -> tuple[Sequence[PersonLike], np.ndarray]: ...


@dataclass(frozen=True)
class OutputRequest:
    """The downstream outputs asked for.

    Attributes:
        specs: grouped masks (``m2fp.outputs.mask_rules.parse_specs``).
        kinds: agnostic masks.
        label_set: the label set of the label map (None: the result's own).
        encoding: ``png`` or ``rle`` for the masks.

    Raises:
        OutputRequestError: RLE with feathered or grey masks.
    """

    specs: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    mask_options: MaskOptions = field(default_factory=MaskOptions)
    agnostic_options: AgnosticOptions = field(default_factory=AgnosticOptions)
    label_set: str | None = None
    encoding: Encoding = "png"

    def __post_init__(self) -> None:
        check_encoding(
            self.encoding,
            feather=self.mask_options.feather if self.specs else 0,
            grey=self.agnostic_options.grey and bool(self.kinds),
        )
        grouped, agnostic = self.mask_options, self.agnostic_options
        if (grouped.person, grouped.crop) != (agnostic.person, agnostic.crop):
            raise OutputRequestError("one person and one crop setting for all the masks")

    @classmethod
    def build(
        cls,
        *,
        specs: tuple[str, ...] = (),
        kinds: tuple[str, ...] = (),
        person: PersonSpec = None,
        crop: bool = False,
        invert: bool = False,
        dilate: int | None = None,
        feather: int = 0,
        keep: tuple[str, ...] = KEEP_ALL,
        grey: bool = False,
        label_set: str | None = None,
        encoding: Encoding = "png",
    ) -> OutputRequest:
        """A request from the flat options the CLI and the query string have: ``dilate``
        None means 0 for grouped masks and the default for agnostic ones."""
        return cls(
            specs=specs,
            kinds=kinds,
            mask_options=MaskOptions(
                person=person, invert=invert, dilate=dilate or 0, feather=feather, crop=crop
            ),
            agnostic_options=AgnosticOptions(
                person=person, keep=keep, dilate=dilate, crop=crop, grey=grey
            ),
            label_set=label_set,
            encoding=encoding,
        )

    @property
    def any_masks(self) -> bool:
        return bool(self.specs or self.kinds)

    def check_for(self, labels: LabelSet) -> None:
        """Refuse, before any parse, what a model painting ``labels`` cannot make.

        Raises:
            OutputRequestError: a name or group ``labels`` lacks, or an underivable label set.
        """
        for spec in self.specs:
            spec_ids(spec, labels)
        if self.label_set is not None:
            remap_rule(labels, self.label_set)


@dataclass(frozen=True)
class MadeMasks:
    """The masks of one result.

    Attributes:
        person: the person they were made for (an index), or None for everyone.
        box: ``(x0, y0, x1, y1)`` of the image they cover (the person's box if cropped).
        grouped, agnostic: name -> mask (bool, or uint8 when feathered or grey).
    """

    person: int | None
    box: Box
    grouped: dict[str, np.ndarray]
    agnostic: dict[str, np.ndarray]


def make_masks(result: ResultLike, request: OutputRequest) -> MadeMasks:
    """Every mask ``request`` asks for, from one person map.

    Raises:
        PersonNotFoundError: the person asked for is not in the result.
        OutputRequestError: a name the result's label set cannot make.
    """
    persons, person_map = result.mask_people()
    labels, label_set = result.label_map, result.label_set
    index = resolve_person(persons, request.mask_options.person)
    grouped = {
        spec: grouped_mask(
            labels, label_set, [spec], request.mask_options, person_map=person_map, persons=persons
        )
        for spec in request.specs
    }
    agnostic = {
        kind: agnostic_mask(
            labels,
            label_set,
            kind,
            request.agnostic_options,
            person_map=person_map,
            persons=persons,
        )
        for kind in request.kinds
    }
    width, height = result.size
    cropped = index is not None and request.mask_options.crop
    box = persons[index].bbox if cropped else (0, 0, width, height)
    return MadeMasks(index, box, grouped, agnostic)
