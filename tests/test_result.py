"""ParsingResult: persons and parts, ModelScope contract, PNG outputs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from m2fp.labels import CIHP_CLASSES, CIHP_PALETTE
from m2fp.processing.masks import CroppedMask
from m2fp.processing.postprocess import Instance, ParsedOutput
from m2fp.result import assemble


def box_mask(size, x0, y0, x1, y1) -> CroppedMask:
    full = np.zeros(size, dtype=bool)
    full[y0:y1, x0:x1] = True
    return CroppedMask.from_full(full)


@pytest.fixture
def result():
    size = (40, 60)
    label_map = np.zeros(size, dtype=np.uint8)
    label_map[2:10, 2:20] = 2  # Hair
    label_map[10:20, 2:20] = 13  # Face
    label_map[5:15, 40:55] = 13
    parsed = ParsedOutput(
        parts=[
            Instance(label=13, score=0.9, mask=box_mask(size, 2, 10, 20, 20)),
            Instance(label=2, score=0.8, mask=box_mask(size, 2, 2, 20, 10)),
            Instance(label=13, score=0.7, mask=box_mask(size, 40, 5, 55, 15)),
            Instance(label=5, score=0.6, mask=box_mask(size, 25, 30, 30, 38)),
        ],
        humans=[
            Instance(label=20, score=0.95, mask=box_mask(size, 0, 0, 22, 40)),
            Instance(label=20, score=0.85, mask=box_mask(size, 38, 0, 60, 40)),
        ],
        label_map=label_map,
        semantic_max=np.zeros(size, dtype=np.float32),
    )
    image = Image.new("RGB", (60, 40), (90, 90, 90))
    return assemble(parsed, image, CIHP_CLASSES)


def test_parts_go_to_the_person_they_overlap(result):
    first, second = result.persons
    assert [p.label for p in first.parts] == ["Face", "Hair"]
    assert [p.label for p in second.parts] == ["Face"]
    assert [p.label for p in result.unassigned_parts] == ["UpperClothes"]
    head = first.part_mask("Face", "Hair")
    assert head.sum() == 18 * 18 and head[5, 5] and not head[30, 30]


def test_to_dict_is_json_ready(result):
    import json

    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["width"] == 60 and summary["height"] == 40
    assert summary["classes_present"] == ["Hair", "Face"]
    assert summary["persons"][0]["bbox"] == [0, 0, 22, 40]
    assert summary["persons"][0]["parts"][0] == {
        "label": "Face",
        "score": 0.9,
        "bbox": [2, 10, 20, 20],
        "area": 180,
    }


def test_to_modelscope_contract(result):
    out = result.to_modelscope()
    assert out["labels"] == ["Face", "Hair", "Face", "UpperClothes", "Human", "Human"]
    assert out["scores"] == [0.9, 0.8, 0.7, 0.6, 0.95, 0.85]
    assert all(m.shape == (40, 60) and m.dtype == np.float32 for m in out["masks"])
    assert set(np.unique(out["masks"][0]).tolist()) == {0.0, 1.0}
    # the usual ModelScope recipe: head = Face + Hair
    head = np.zeros((40, 60))
    for mask, label in zip(out["masks"], out["labels"], strict=True):
        if label in ("Face", "Hair"):
            head += mask
    assert (head > 0).sum() == 18 * 18 + 15 * 10


def test_class_mask_and_unknown_class(result):
    assert result.class_mask("Face").sum() == 18 * 10 + 15 * 10
    with pytest.raises(ValueError, match="unknown class"):
        result.class_mask("Tail")


def test_person_map_numbers_persons(result):
    persons = result.person_map()
    assert persons[20, 10] == 1 and persons[20, 45] == 2 and persons[20, 30] == 0


def test_label_map_png_is_a_palette_png(result):
    image = Image.open(io.BytesIO(result.label_map_png()))
    assert image.mode == "P" and image.format == "PNG"
    np.testing.assert_array_equal(np.asarray(image), result.label_map)
    assert tuple(image.getpalette()[13 * 3 : 13 * 3 + 3]) == CIHP_PALETTE[13]


def test_visualize_overlay_and_legend(result):
    plain = Image.open(io.BytesIO(result.visualize(alpha=1.0, legend=False))).convert("RGB")
    assert plain.size == (60, 40)
    assert plain.getpixel((5, 5)) == CIHP_PALETTE[2]
    assert plain.getpixel((30, 30)) == (90, 90, 90)
    half = Image.open(io.BytesIO(result.visualize(alpha=0.5, legend=False))).convert("RGB")
    assert half.getpixel((5, 5)) != CIHP_PALETTE[2] and half.getpixel((30, 30)) == (90, 90, 90)
    with_legend = Image.open(io.BytesIO(result.visualize()))
    assert with_legend.height > 40
    with pytest.raises(ValueError):
        result.visualize(alpha=1.5)
