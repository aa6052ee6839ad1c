"""The single-person model's result: no persons, one region per class, ModelScope's contract."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from m2fp.labels import LIP_CLASSES, LIP_LABELS
from m2fp.processing.semantic import SemanticLabels
from m2fp.results.single_person import assemble_semantic


@pytest.fixture
def result():
    label_map = np.zeros((20, 30), dtype=np.uint8)
    label_map[2:8, 4:10] = 10  # Jumpsuits
    label_map[10:12, 20:30] = 19  # Right-shoe: the last class, which CIHP's "Human" would be
    labels = SemanticLabels(label_map=label_map, scores={0: 0.51, 10: 0.66, 19: 0.72})
    return assemble_semantic(labels, Image.new("RGB", (30, 20), (90, 90, 90)), LIP_CLASSES)


def test_regions_are_modelscopes_output(result):
    out = result.to_modelscope()
    assert out["labels"] == ["Background", "Jumpsuits", "Right-shoe"]
    assert out["scores"] == [0.51, 0.66, 0.72]
    assert all(m.dtype == np.float64 and m.shape == (20, 30) for m in out["masks"])
    assert out["masks"][1].sum() == 36 and out["masks"][0].sum() == 600 - 36 - 20
    np.testing.assert_array_equal(sum(out["masks"]), np.ones((20, 30)))


def test_no_persons_and_the_parts_best_first(result):
    assert result.persons == () and result.label_set is LIP_LABELS
    assert [p.label for p in result.unassigned_parts] == ["Right-shoe", "Jumpsuits"]
    assert result.unassigned_parts[1].bbox == (4, 2, 10, 8)
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["persons"] == [] and summary["classes_present"] == ["Jumpsuits", "Right-shoe"]
    assert not result.person_map().any()


def test_class_masks_know_every_lip_class(result):
    assert result.class_mask("Right-shoe").sum() == 20
    assert result.class_mask("Jumpsuits", "Right-shoe").sum() == 56
    with pytest.raises(ValueError, match="Torso-skin"):
        result.class_mask("Torso-skin")


def test_pngs_use_the_lip_palette(result):
    image = Image.open(io.BytesIO(result.label_map_png()))
    assert image.mode == "P" and image.getpixel((5, 3)) == 10
    assert tuple(image.getpalette()[30:33]) == LIP_LABELS.palette[10]
    overlay = Image.open(io.BytesIO(result.visualize(alpha=1.0, legend=False))).convert("RGB")
    assert overlay.getpixel((5, 3)) == LIP_LABELS.palette[10]
    assert overlay.getpixel((0, 0)) == (90, 90, 90)
    with_legend = Image.open(io.BytesIO(result.visualize()))
    assert with_legend.height > 20
