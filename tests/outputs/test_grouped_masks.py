"""Grouped masks on drawn label maps: which pixels each group holds, then person, dilation,
inversion, crop and feathering."""

from __future__ import annotations

import numpy as np
import pytest

from m2fp.labels import CIHP_LABELS, LIP_LABELS
from m2fp.outputs.errors import OutputRequestError, PersonNotFoundError
from m2fp.outputs.grouped_masks import grouped_mask
from m2fp.outputs.mask_rules import GROUPS, MaskOptions
from tests.utils.label_maps import (
    FIGURE,
    BoxedPerson,
    chars,
    draw,
    draw_mask,
    draw_persons,
    show,
)

# each group as the drawing's characters (tests/utils/label_maps.CODES), written from the
# group definitions in the README, not from the code
GROUP_CODES = {
    "hair": "h",
    "face": "F",
    "head": "FhTS",
    "upper_clothes": "UCDJ",
    "lower_clothes": "PK",
    "full_clothes": "UCDJPK",
    "skin": "FnaAlL",
    "arms": "aA",
    "legs": "lL",
    "shoes": "oO",
    "background": ".",
    "foreground": "ThgSUDCkPnJfKFaAlLoO",
}
# every class at least once
ALL_CLASSES = """
ThgSUDCkPn
fKFaAlLoO.
"""


def make(art: str, specs, labels=CIHP_LABELS, persons_art=None, persons=(), **options):
    label_map = draw(art, labels)
    person_map = draw_persons(persons_art) if persons_art else np.zeros_like(label_map)
    return grouped_mask(
        label_map,
        labels,
        specs,
        MaskOptions(**options),
        person_map=person_map,
        persons=persons,
    )


def test_every_group_is_listed():
    assert set(GROUP_CODES) == set(GROUPS)


@pytest.mark.parametrize("group", sorted(GROUP_CODES))
@pytest.mark.parametrize("art", [FIGURE, ALL_CLASSES])
def test_each_group_holds_exactly_its_classes(group, art):
    assert show(make(art, [group])) == show(chars(art, GROUP_CODES[group]))


def test_class_names_and_unions():
    art = ALL_CLASSES
    assert show(make(art, ["Scarf"])) == show(chars(art, "f"))
    assert show(make(art, ["head+Scarf"])) == show(chars(art, "FhTSf"))
    assert show(make(art, ["hair", "Glove+Socks"])) == show(chars(art, "hgk"))
    assert show(make(art, ["Background"])) == show(chars(art, "."))


def test_lip_groups_count_jumpsuits_as_upper_clothes_and_refuse_skin():
    art = "hJPF"
    assert make(art, ["upper_clothes"], LIP_LABELS).tolist() == [[False, True, False, False]]
    assert make(art, ["full_clothes"], LIP_LABELS).tolist() == [[False, True, True, False]]
    with pytest.raises(OutputRequestError, match="skin mask cannot be made from lip"):
        make(art, ["skin"], LIP_LABELS)
    with pytest.raises(OutputRequestError, match="neither a mask group nor a lip class"):
        make(art, ["Torso-skin"], LIP_LABELS)
    with pytest.raises(OutputRequestError, match="neither a mask group nor a cihp class"):
        make("hUPF", ["Jumpsuits"])


TWO = """
hh..hh
FF..FF
UU..UU
"""
TWO_PERSONS = """
11..22
11..22
11..22
"""
# person 2 (index 1) has more pixels: the main person
PERSONS = (BoxedPerson((0, 0, 2, 3), 5), BoxedPerson((4, 0, 6, 3), 6))


def test_person_index_and_main():
    first = make(TWO, ["hair"], persons_art=TWO_PERSONS, persons=PERSONS, person=0)
    assert show(first) == show(draw_mask("##....\n......\n......"))
    main = make(TWO, ["hair"], persons_art=TWO_PERSONS, persons=PERSONS, person="main")
    assert show(main) == show(draw_mask("....##\n......\n......"))
    cropped = make(
        TWO, ["hair", "face"], persons_art=TWO_PERSONS, persons=PERSONS, person="main", crop=True
    )
    assert show(cropped) == show(draw_mask("##\n##\n.."))
    with pytest.raises(PersonNotFoundError, match="there is no person 2"):
        make(TWO, ["hair"], persons_art=TWO_PERSONS, persons=PERSONS, person=2)
    with pytest.raises(PersonNotFoundError, match="no main person"):
        make(TWO, ["hair"], person="main")


def test_dilate_then_invert():
    art = """
    .....
    .....
    ..h..
    .....
    .....
    """
    grown = make(art, ["hair"], dilate=1)
    assert show(grown) == show(draw_mask(".....\n..#..\n.###.\n..#..\n....."))
    assert show(make(art, ["hair"], dilate=1, invert=True)) == show(~grown)


def test_feather_gives_a_soft_uint8_mask_and_crop_comes_last():
    art = "\n".join(["." * 10 + "h" * 10] * 12)
    soft = make(art, ["hair"], feather=2)
    assert soft.dtype == np.uint8 and soft.shape == (12, 20)
    assert soft[6, 0] == 0 and soft[6, 19] == 255 and 0 < soft[6, 9] < soft[6, 10] < 255
    persons_art = "\n".join(["1" * 20] * 12)
    person = (BoxedPerson((5, 0, 15, 12), 240),)
    cropped = make(art, ["hair"], persons_art=persons_art, persons=person, person=0, feather=2,
                   crop=True)  # fmt: skip
    assert (cropped == soft[:, 5:15]).all()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"dilate": -1}, "dilate must be between 0 and 128"),
        ({"feather": 129}, "feather must be between 0 and 128"),
        ({"crop": True}, "crop needs a person"),
        ({"person": -1}, "person must be"),
        ({"person": "first"}, "person must be"),
    ],
)
def test_bad_options_are_refused(options, words):
    with pytest.raises(OutputRequestError, match=words):
        MaskOptions(**options)


def test_malformed_specs_are_refused():
    for spec in ("", "hair+", "ha ir", "1hair", "hair;rm"):
        with pytest.raises(OutputRequestError, match="joined with"):
            make("h", [spec])
