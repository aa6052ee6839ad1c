"""Restricting a mask to one person: ``person=i`` (0-based, the order of ``persons``, best
score first) or ``person="main"``, the person with the largest area (most pixels in their
instance mask; on a tie the better score, i.e. the lower index).

A person's pixels are where the person map says them (``ParsingResult.person_map``: their
instance mask, better-scored persons on top where instances overlap); a mask restricted to a
person keeps only those pixels, and ``crop`` cuts it to the person's box.

The single-person model lists no persons (it assumes the photo shows one): for masks its
result has one implicit person, ``implicit_person``, every pixel not labelled background, so
that ``person="main"`` (or 0) and ``crop`` work with either model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from m2fp.outputs.errors import PersonNotFoundError
from m2fp.outputs.mask_rules import PersonSpec

Box = tuple[int, int, int, int]


class PersonLike(Protocol):
    """What scoping needs of a person: ``m2fp.results.parsing_result.Person`` or a parse
    answer's entry."""

    @property
    def bbox(self) -> Box: ...

    @property
    def area(self) -> int: ...


@dataclass(frozen=True)
class WholeFigure:
    """The single-person model's one person: its box and area are the foreground's."""

    bbox: Box
    area: int


def implicit_person(label_map: np.ndarray) -> tuple[tuple[WholeFigure, ...], np.ndarray]:
    """(persons, person map) of a single-person result: one person made of every pixel not
    labelled background, or none if every pixel is."""
    foreground = label_map != 0
    rows = np.flatnonzero(foreground.any(axis=1))
    if rows.size == 0:
        return (), np.zeros(label_map.shape, dtype=np.uint8)
    cols = np.flatnonzero(foreground.any(axis=0))
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    person = WholeFigure(bbox=box, area=int(np.count_nonzero(foreground)))
    return (person,), foreground.astype(np.uint8)


def main_person(persons: Sequence[PersonLike]) -> int:
    """Index of the person with the largest area (the first of equals).

    Raises:
        PersonNotFoundError: there is no person.
    """
    if not persons:
        raise PersonNotFoundError("no person was found, so there is no main person")
    areas = [p.area for p in persons]
    return areas.index(max(areas))


def resolve_person(persons: Sequence[PersonLike], person: PersonSpec) -> int | None:
    """The index ``person`` names (None stays None: everyone).

    Raises:
        PersonNotFoundError: no such person.
    """
    if person is None:
        return None
    if person == "main":
        return main_person(persons)
    if not 0 <= person < min(len(persons), 255):
        raise PersonNotFoundError(
            f"there is no person {person}: {len(persons)} found (the first is 0)"
        )
    return person


@dataclass(frozen=True)
class Scope:
    """Where a mask is made.

    Attributes:
        index: the person (into ``persons``), or None for everyone.
        region: HxW bool of the person's pixels, or None for the whole image.
        box: the person's box, or the whole image ``(0, 0, W, H)``.
    """

    index: int | None
    region: np.ndarray | None
    box: Box

    def restrict(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` with everything outside the region set to 0 (background)."""
        if self.region is None:
            return labels
        return np.where(self.region, labels, 0).astype(labels.dtype)

    def crop(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` cut to ``box``."""
        x0, y0, x1, y1 = self.box
        return mask[y0:y1, x0:x1]


def scope_of(persons: Sequence[PersonLike], person_map: np.ndarray, person: PersonSpec) -> Scope:
    """The scope ``person`` asks for.

    Args:
        persons: the result's persons, best score first.
        person_map: HxW uint8, i where ``persons[i - 1]`` is (0: nobody).

    Raises:
        PersonNotFoundError: no such person.
    """
    height, width = person_map.shape
    index = resolve_person(persons, person)
    if index is None:
        return Scope(None, None, (0, 0, width, height))
    x0, y0, x1, y1 = persons[index].bbox
    return Scope(index, person_map == index + 1, (x0, y0, x1, y1))


def person_regions(scope: Scope, person_map: np.ndarray, count: int) -> list[np.ndarray]:
    """The regions per-person rules run in (the hand heuristic measures each person's arms
    by their own face): the scope's person, else every person and the pixels of nobody,
    else (a result without persons) the whole image."""
    if scope.region is not None:
        return [scope.region]
    if count == 0:
        return [np.ones(person_map.shape, dtype=bool)]
    return [person_map == value for value in range(count + 1)]


def other_people(scope: Scope, person_map: np.ndarray) -> np.ndarray:
    """HxW bool: pixels of persons other than the scope's (none without a person)."""
    if scope.region is None:
        return np.zeros(person_map.shape, dtype=bool)
    return (person_map != 0) & ~scope.region
