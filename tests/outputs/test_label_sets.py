"""The remap tables against the conventions they follow, class by class."""

from __future__ import annotations

import pytest

from m2fp.labels import CIHP_LABELS, LIP_LABELS
from m2fp.outputs.errors import OutputRequestError
from m2fp.outputs.label_sets import (
    ATR_LABELS,
    OUTPUT_LABEL_SETS,
    REFUSED_REMAPS,
    REMAP_RULES,
    VITON_LABELS,
    pascal_palette,
    remap_rule,
)

# VITON-HD datasets.py: group index -> CIHP ids (the oracle for the viton table)
VITON_HD_GROUPS = {
    0: [0, 10],
    1: [1, 2],
    2: [4, 13],
    3: [5, 6, 7],
    4: [9, 12],
    5: [14],
    6: [15],
    7: [16],
    8: [17],
    9: [18],
    10: [19],
    11: [8],
    12: [3, 11],
}


def test_pascal_palette_is_the_voc_colour_map():
    colours = pascal_palette(19)
    assert colours[:8] == (
        (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0),
        (0, 0, 128), (128, 0, 128), (0, 128, 128), (128, 128, 128),
    )  # fmt: skip
    assert colours[8] == (64, 0, 0) and colours[18] == (0, 192, 0)
    assert ATR_LABELS.palette == colours


def test_every_set_has_a_colour_per_class():
    assert set(OUTPUT_LABEL_SETS) == {"cihp", "lip", "atr", "viton"}
    assert len(ATR_LABELS.names) == 19 and ATR_LABELS.names[18] == "Neck"
    assert len(VITON_LABELS.names) == 13
    for labels in OUTPUT_LABEL_SETS.values():
        assert len(labels.names) == len(labels.palette) <= 256


def test_atr_from_cihp_class_by_class():
    rule = remap_rule(CIHP_LABELS, "atr")
    atr = {name: i for i, name in enumerate(ATR_LABELS.names)}
    expected = {
        "Background": "Background", "Hat": "Hat", "Hair": "Hair", "Sunglasses": "Sunglasses",
        "UpperClothes": "Upper-clothes", "Dress": "Dress", "Coat": "Upper-clothes",
        "Pants": "Pants", "Torso-skin": "Neck", "Scarf": "Scarf", "Skirt": "Skirt",
        "Face": "Face", "Left-arm": "Left-arm", "Right-arm": "Right-arm",
        "Left-leg": "Left-leg", "Right-leg": "Right-leg", "Left-shoe": "Left-shoe",
        "Right-shoe": "Right-shoe",
    }  # fmt: skip
    for name, target in expected.items():
        assert rule.table[CIHP_LABELS.names.index(name)] == atr[target], name
    sided = {(s.source_id, s.left_id, s.right_id) for s in rule.sided}
    assert sided == {(3, atr["Left-arm"], atr["Right-arm"]), (8, atr["Left-leg"], atr["Right-leg"])}
    assert atr["Belt"] not in rule.table and atr["Bag"] not in rule.table


def test_lip_from_cihp_drops_torso_skin_and_never_paints_jumpsuits():
    rule = remap_rule(CIHP_LABELS, "lip")
    assert rule.table[10] == 0  # Torso-skin -> Background
    assert [rule.table[i] for i in range(20) if i != 10] == [i for i in range(20) if i != 10]
    assert 10 not in rule.table  # Jumpsuits


@pytest.mark.parametrize("source", [CIHP_LABELS, LIP_LABELS])
def test_viton_is_vitonhds_thirteen_groups(source):
    rule = remap_rule(source, "viton")
    for group, ids in VITON_HD_GROUPS.items():
        for cihp_id in ids:
            name = CIHP_LABELS.names[cihp_id]
            if name in source.names:
                assert rule.table[source.names.index(name)] == group, name
    if source is LIP_LABELS:
        assert rule.table[10] == VITON_LABELS.names.index("upper")  # Jumpsuits, like Dress


def test_identities_and_every_pair_has_a_rule_or_a_reason():
    for labels in (CIHP_LABELS, LIP_LABELS):
        assert remap_rule(labels, labels.name).table == tuple(range(20))
        for target in OUTPUT_LABEL_SETS:
            pair = (labels.name, target)
            assert (pair in REMAP_RULES) != (pair in REFUSED_REMAPS), pair


@pytest.mark.parametrize(
    ("target", "words"), [("atr", "Neck"), ("cihp", "Jumpsuits"), ("nope", "unknown label set")]
)
def test_what_cannot_be_derived_is_refused(target, words):
    with pytest.raises(OutputRequestError, match=words):
        remap_rule(LIP_LABELS, target)
