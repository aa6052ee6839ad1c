"""Which person ``person=`` names, and the region and box a mask is then made in."""

from __future__ import annotations

import numpy as np
import pytest

from m2fp.outputs.errors import PersonNotFoundError
from m2fp.outputs.person_scope import (
    WholeFigure,
    implicit_person,
    main_person,
    other_people,
    person_regions,
    resolve_person,
    scope_of,
)
from tests.utils.label_maps import BoxedPerson, draw_persons


def test_main_is_the_largest_area_and_the_first_of_equals():
    persons = [BoxedPerson((0, 0, 1, 1), 5), BoxedPerson((0, 0, 1, 1), 9)]
    assert main_person(persons) == 1
    assert main_person([*persons, BoxedPerson((0, 0, 1, 1), 9)]) == 1
    with pytest.raises(PersonNotFoundError):
        main_person([])


def test_indices_are_checked():
    persons = [BoxedPerson((0, 0, 1, 1), 5)]
    assert resolve_person(persons, None) is None
    assert resolve_person(persons, 0) == 0
    with pytest.raises(PersonNotFoundError, match="there is no person 1: 1 found"):
        resolve_person(persons, 1)


def test_scope_region_box_and_the_others():
    person_map = draw_persons(
        """
        11.2
        11.2
        """
    )
    persons = [BoxedPerson((0, 0, 2, 2), 4), BoxedPerson((3, 0, 4, 2), 2)]
    scope = scope_of(persons, person_map, "main")
    assert scope.index == 0 and scope.box == (0, 0, 2, 2)
    assert scope.region.tolist() == [[True, True, False, False]] * 2
    assert other_people(scope, person_map).tolist() == [[False, False, False, True]] * 2
    labels = np.full((2, 4), 7, dtype=np.uint8)
    assert scope.restrict(labels).tolist() == [[7, 7, 0, 0]] * 2
    assert scope.crop(labels).shape == (2, 2)
    whole = scope_of(persons, person_map, None)
    assert whole.region is None and whole.box == (0, 0, 4, 2)
    assert not other_people(whole, person_map).any()
    assert [r.sum() for r in person_regions(whole, person_map, 2)] == [2, 4, 2]
    assert [r.sum() for r in person_regions(scope, person_map, 2)] == [4]
    assert [r.sum() for r in person_regions(whole, np.zeros_like(person_map), 0)] == [8]


def test_the_single_person_models_implicit_person_is_the_foreground():
    labels = np.array([[0, 0, 0, 0], [0, 2, 5, 0], [0, 0, 9, 0]], dtype=np.uint8)
    persons, person_map = implicit_person(labels)
    assert persons == (WholeFigure(bbox=(1, 1, 3, 3), area=3),)
    assert person_map.tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0]]
    assert implicit_person(np.zeros((2, 2), dtype=np.uint8))[0] == ()
