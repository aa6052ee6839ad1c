"""Flip test-time augmentation: the merges on their own, and the property that defines it:
the flipped average of a mirrored photo is the mirror of the result, left/right swapped."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from m2fp import HumanParser, ParserOptions
from m2fp.processing.flip import AveragedRows, MirroredRows, merge_instances, mirror_image
from m2fp.processing.masks import CroppedMask
from m2fp.processing.postprocess import Instance
from m2fp.results.parsing_result import ParsingResult
from tests.conftest import GOLDEN, LIP_GOLDEN, golden_options, golden_state_dict, write_model_dir
from tests.processing.test_semantic import FixedRows
from tests.utils.same_parse import assert_maps_agree
from tests.utils.visible_model import pinned_head

MIRROR = (0, 2, 1)  # a three-class label set whose classes 1 and 2 are a left/right pair
# scores of the two parses: the same terms summed in another order, so equal to fp32 rounding
SCORE_TOLERANCE = 1e-6


def instance(label: int, score: float, x0: int, x1: int, size=(4, 10)) -> Instance:
    mask = np.zeros(size, dtype=bool)
    mask[:, x0:x1] = True
    return Instance(label=label, score=score, mask=CroppedMask.from_full(mask))


def test_pairs_average_their_scores_and_unite_their_masks():
    direct = [instance(3, 0.8, 0, 4)]
    back = [instance(3, 0.6, 1, 5)]  # IoU 3/5
    (merged,) = merge_instances(direct, back)
    assert merged.score == pytest.approx(0.7)
    assert merged.mask.bbox == (0, 0, 5, 4) and merged.mask.area == 20


def test_an_instance_one_pass_missed_keeps_its_mask_and_half_its_score():
    direct = [instance(3, 0.8, 0, 4)]
    back = [instance(3, 0.6, 2, 6)]  # IoU 2/6: not the same instance
    merged = sorted(merge_instances(direct, back), key=lambda i: -i.score)
    assert [m.score for m in merged] == pytest.approx([0.4, 0.3])
    assert [m.mask.bbox for m in merged] == [(0, 0, 4, 4), (2, 0, 6, 4)]
    assert merge_instances([], back)[0].score == pytest.approx(0.3)


def test_pairing_is_one_to_one_best_overlap_first():
    direct = [instance(3, 0.9, 0, 4), instance(3, 0.5, 0, 5)]
    back = [instance(3, 0.7, 0, 5)]  # IoU 4/5 with the first, 1 with the second
    merged = sorted(merge_instances(direct, back), key=lambda i: -i.score)
    assert [m.score for m in merged] == pytest.approx([0.6, 0.45])


def test_mirrored_rows_swap_left_and_right_and_the_average_is_symmetric():
    rng = np.random.default_rng(0)
    a = FixedRows(rng.random((3, 4, 6), dtype=np.float32))
    b = FixedRows(rng.random((3, 4, 6), dtype=np.float32))
    back = MirroredRows(b, MIRROR).band(1, 3)
    np.testing.assert_array_equal(back, b.maps[[0, 2, 1], 1:3, ::-1])
    mirrored_result = MirroredRows(AveragedRows(a, MirroredRows(b, MIRROR)), MIRROR).band(0, 4)
    result_of_mirror = AveragedRows(b, MirroredRows(a, MIRROR)).band(0, 4)
    np.testing.assert_array_equal(mirrored_result, result_of_mirror)
    with pytest.raises(ValueError, match="same classes"):
        AveragedRows(a, FixedRows(rng.random((2, 4, 6), dtype=np.float32)))


def mirrored_result(parser: HumanParser, result: ParsingResult) -> dict:
    """``result`` as the parse of the mirrored photo would say it: maps mirrored, classes
    swapped."""
    swap = np.asarray(parser.mirrored)
    return summary(result, swap=swap, flip=True)


def summary(result: ParsingResult, *, swap: np.ndarray | None = None, flip: bool = False):
    def mask(m: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(m[:, ::-1] if flip else m)

    def label(part) -> int:
        return int(swap[part.label_id]) if swap is not None else part.label_id

    label_map = result.label_map
    if swap is not None:
        label_map = swap[label_map].astype(np.uint8)
    parts = [p for person in result.persons for p in person.parts] + list(result.unassigned_parts)
    return {
        "label_map": mask(label_map),
        "persons": sorted(((-1, p.score, mask(p.mask)) for p in result.persons), key=_order),
        "parts": sorted(((label(p), p.score, mask(p.mask)) for p in parts), key=_order),
    }


def _order(entry: tuple[int, float, np.ndarray]) -> tuple[int, float]:
    return entry[0], -entry[1]


def assert_summaries_agree(ours: dict, expected: dict) -> None:
    """The mirror symmetry as it holds on every CPU: the two parses sum the same two passes in
    the other order, so a pixel at a tie may round to the other side (``TIE_PIXELS`` of each
    map) and a score may differ in its last bits."""
    assert_maps_agree(ours["label_map"], expected["label_map"])
    for kind in ("persons", "parts"):
        assert len(ours[kind]) == len(expected[kind]), kind
        for (label, score, mask), (label_e, score_e, mask_e) in zip(
            ours[kind], expected[kind], strict=True
        ):
            assert label == label_e, kind
            assert score == pytest.approx(score_e, abs=SCORE_TOLERANCE), kind
            assert_maps_agree(mask, mask_e)


@pytest.fixture(scope="module")
def lip_visible_dir(tmp_path_factory) -> Path:
    state = pinned_head(
        golden_state_dict(LIP_GOLDEN), {2: 8.0, 10: 8.0, 13: 8.0, 14: 8.0}, weighted=(10, 13)
    )
    directory = tmp_path_factory.mktemp("lip_visible")
    return write_model_dir(directory, LIP_GOLDEN / "configuration.json", state)


@pytest.fixture(scope="module")
def cihp_visible_dir(tmp_path_factory) -> Path:
    # persons, and a left arm whose mirror image is a right arm
    state = pinned_head(golden_state_dict(), {5: 8.0, 13: 8.0, 14: 8.0, 20: 7.5}, weighted=(5, 13))
    directory = tmp_path_factory.mktemp("cihp_visible")
    return write_model_dir(directory, GOLDEN / "configuration.json", state)


@pytest.mark.parametrize("size", [(90, 150), (61, 80), (300, 310)])
def test_single_person_flip_of_a_mirrored_photo_is_the_mirrored_result(lip_visible_dir, size):
    parser = HumanParser.from_pretrained(lip_visible_dir, options=ParserOptions(flip=True))
    photo = Image.open(LIP_GOLDEN / "image.png").convert("RGB").resize(size)
    result = parser.parse_upright(photo)
    of_mirror = parser.parse_upright(mirror_image(photo))
    assert len(result.classes_present()) >= 2
    assert_summaries_agree(summary(of_mirror), mirrored_result(parser, result))
    scores = {p.label: p.score for p in result.regions}
    mirrored_scores = {
        parser.class_names[parser.mirrored[p.label_id]]: p.score for p in of_mirror.regions
    }
    assert mirrored_scores == pytest.approx(scores, abs=SCORE_TOLERANCE)


def test_multi_person_flip_of_a_mirrored_photo_is_the_mirrored_result(cihp_visible_dir):
    parser = HumanParser.from_pretrained(
        cihp_visible_dir, options=replace(golden_options(), flip=True)
    )
    photo = Image.open(GOLDEN / "image.png").convert("RGB")
    result = parser.parse_upright(photo)
    of_mirror = parser.parse_upright(mirror_image(photo))
    assert {"Left-arm", "Right-arm"} <= set(result.classes_present()) and result.persons
    assert_summaries_agree(summary(of_mirror), mirrored_result(parser, result))


@pytest.mark.parametrize("model", ["lip", "cihp"])
def test_flip_changes_the_answer_and_is_off_by_default(model, lip_visible_dir, cihp_visible_dir):
    directory, options, image = {
        "lip": (lip_visible_dir, ParserOptions(), LIP_GOLDEN / "image.png"),
        "cihp": (cihp_visible_dir, golden_options(), GOLDEN / "image.png"),
    }[model]
    assert options.flip is False
    plain = HumanParser.from_pretrained(directory, options=options)(image)
    flipped = HumanParser.from_pretrained(directory, options=replace(options, flip=True))(image)
    assert plain.label_map.shape == flipped.label_map.shape
    assert not np.array_equal(plain.label_map, flipped.label_map)
