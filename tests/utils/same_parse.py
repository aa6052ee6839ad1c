"""Comparing results computed in different float orders (another batch size, another engine,
another CPU's kernels, a mirrored pass, a reference transcription): what holds on every CPU.

Two float orders agree to rounding, not bit for bit: AVX2 and AVX-512 kernels (or a batch's
GEMM blocking) round a sum in its last bits differently, and a pixel whose two candidates sit
at a tie can go either way. So masks and label maps are compared as sets of pixels that may
differ in at most ``TIE_PIXELS`` places, boxes to a pixel, scores to a float tolerance. Within
one code path (the same parser run twice on the same input) results are bit-exact, and the
tests that rely on that compare exactly.

Two all-background maps agree whatever the code under test does (the golden tiny model paints
no part on any photo), so every comparison first asserts that its reference says something:
``assert_informative``. The "visible" models of ``tests.utils.visible_model`` paint several.
"""

from __future__ import annotations

import numpy as np

# pixels of one mask or label map that may fall on the other side of a tie between two float
# orders: a handful, stated once (on a Xeon with AVX-512/AMX the flip symmetry test differed
# in no pixel, only in scores, by 2e-9)
TIE_PIXELS = 8
# a box follows its mask: a tie pixel on a mask's edge moves it by one
BOX_TOLERANCE = 1
# what a compared label map must hold before agreeing with it proves anything: background and
# at least two part classes, and a tenth of the photo painted (the visible model paints three
# classes over ~70-80% of the golden photo and of the noise photos)
MIN_CLASSES = 3
MIN_PAINTED_SHARE = 0.1
# scores average mask probabilities, which the visible model's sharpened (x20) mask logits make
# sensitive to rounding: a batch of 3 against one photo moved persons' scores by up to 1.9e-5
# and parts' by 3.1e-5 on a Xeon (AVX-512/AMX)
SCORE_TOLERANCE = 1e-4


def differing_pixels(ours: np.ndarray, reference: np.ndarray) -> int:
    """How many pixels two same-shape maps disagree on."""
    assert ours.shape == reference.shape, f"shapes differ: {ours.shape} != {reference.shape}"
    return int(np.count_nonzero(np.asarray(ours) != np.asarray(reference)))


def assert_informative(
    label_map: np.ndarray,
    *,
    min_classes: int = MIN_CLASSES,
    min_painted_share: float = MIN_PAINTED_SHARE,
) -> None:
    """``label_map`` (HxW class ids, 0 background) holds at least ``min_classes`` classes and
    ``min_painted_share`` of its pixels outside the background: comparing it can fail."""
    label_map = np.asarray(label_map)
    classes = np.unique(label_map).tolist()
    painted = int(np.count_nonzero(label_map))
    assert len(classes) >= min_classes, (
        f"the label map holds classes {classes}: too few to compare (at least {min_classes})"
    )
    assert painted >= min_painted_share * label_map.size, (
        f"only {painted} of {label_map.size} pixels are painted: too few to compare"
    )


def assert_maps_agree(
    ours: np.ndarray, reference: np.ndarray, *, max_differing: int = TIE_PIXELS
) -> None:
    """Two masks or label maps are the same but for at most ``max_differing`` tie pixels."""
    differing = differing_pixels(ours, reference)
    assert differing <= max_differing, (
        f"{differing} of {np.asarray(ours).size} pixels differ (at most {max_differing} may)"
    )


def assert_boxes_agree(ours, reference, *, tolerance: int = BOX_TOLERANCE) -> None:
    """Two lists of ``(x0, y0, x1, y1)`` boxes agree to ``tolerance`` pixels, box by box."""
    assert len(ours) == len(reference), f"{len(ours)} boxes != {len(reference)}"
    for box, expected in zip(ours, reference, strict=True):
        assert max(abs(a - b) for a, b in zip(box, expected, strict=True)) <= tolerance, (
            f"box {box} != {expected}"
        )


def assert_same_parse(ours, reference, *, score_tolerance: float = SCORE_TOLERANCE) -> None:
    """``ours`` and ``reference`` (``ParsingResult``) agree: same size, an informative label
    map (``assert_informative``) and person map equal but for tie pixels, persons' and parts'
    labels equal, boxes to a pixel, persons' and parts' scores within ``score_tolerance``."""
    assert ours.size == reference.size
    assert_informative(reference.label_map)
    assert reference.persons, "the reference found no person: nothing to compare"
    assert_maps_agree(ours.label_map, reference.label_map)
    assert_maps_agree(ours.person_map(), reference.person_map())
    assert_boxes_agree([p.bbox for p in ours.persons], [p.bbox for p in reference.persons])
    for person, expected in zip(ours.persons, reference.persons, strict=True):
        assert abs(person.score - expected.score) < score_tolerance
        assert [part.label for part in person.parts] == [part.label for part in expected.parts]
        assert_boxes_agree([p.bbox for p in person.parts], [p.bbox for p in expected.parts])
        for part, expected_part in zip(person.parts, expected.parts, strict=True):
            assert abs(part.score - expected_part.score) < score_tolerance


# JSON scores are rounded to 4 decimals, so two float orders may land one step apart
JSON_SCORE_TOLERANCE = 1.5e-4


def assert_same_persons(ours: list[dict], reference: list[dict]) -> None:
    """Two JSON lists of persons (or of parts: ``ParsingResult.to_dict()``) agree to rounding:
    same labels in the same order, scores within a rounding step, boxes to a pixel, areas
    within ``TIE_PIXELS``, parts likewise."""
    assert len(ours) == len(reference), f"{len(ours)} entries != {len(reference)}"
    for entry, expected in zip(ours, reference, strict=True):
        assert entry.keys() == expected.keys()
        assert entry.get("label") == expected.get("label")
        assert abs(entry["score"] - expected["score"]) <= JSON_SCORE_TOLERANCE
        assert_boxes_agree([entry["bbox"]], [expected["bbox"]])
        assert abs(entry["area"] - expected["area"]) <= TIE_PIXELS
        if "parts" in entry:
            assert_same_persons(entry["parts"], expected["parts"])
