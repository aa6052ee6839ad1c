"""Label sets: CIHP for the multi-person model, LIP for the single-person one."""

from __future__ import annotations

import json

import pytest

from m2fp.labels import CIHP_CLASSES, CIHP_LABELS, LIP_LABELS, LabelSet, label_set_of
from tests.conftest import LIP_GOLDEN, golden_config


def test_cihp_paints_twenty_classes_without_human():
    assert len(CIHP_LABELS.names) == 20 and "Human" not in CIHP_LABELS.names
    assert CIHP_LABELS.names[10] == "Torso-skin"
    assert label_set_of(tuple(golden_config()["classes"])) is CIHP_LABELS
    assert label_set_of(CIHP_CLASSES) is CIHP_LABELS


def test_lip_differs_from_cihp_only_at_ten():
    assert LIP_LABELS.names[10] == "Jumpsuits"
    differ = [i for i in range(20) if LIP_LABELS.names[i] != CIHP_LABELS.names[i]]
    assert differ == [10]
    assert label_set_of(LIP_LABELS.names) is LIP_LABELS


def test_lip_names_are_modelscopes():
    classes = json.loads((LIP_GOLDEN / "configuration.json").read_text())["model"]["classes"]
    assert tuple(classes) == LIP_LABELS.names


@pytest.mark.parametrize("label_set", [CIHP_LABELS, LIP_LABELS])
def test_mirrored_swaps_left_and_right(label_set):
    mirrored = label_set.mirrored()
    names = label_set.names
    swapped = {names[i]: names[j] for i, j in enumerate(mirrored) if i != j}
    assert swapped == {
        "Left-arm": "Right-arm",
        "Right-arm": "Left-arm",
        "Left-leg": "Right-leg",
        "Right-leg": "Left-leg",
        "Left-shoe": "Right-shoe",
        "Right-shoe": "Left-shoe",
    }
    assert [mirrored[j] for j in mirrored] == list(range(len(names)))


def test_palette_bytes_and_unknown_sets():
    data = CIHP_LABELS.palette_bytes()
    assert len(data) == 768 and data[3:6] == bytes(CIHP_LABELS.palette[1]) and not any(data[60:])
    with pytest.raises(ValueError, match="neither"):
        label_set_of(("Background", "Cat"))
    with pytest.raises(ValueError, match="one colour per class"):
        LabelSet("x", ("a", "b"), ((0, 0, 0),))
