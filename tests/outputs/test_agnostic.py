"""Try-on agnostic masks on the drawn FIGURE (tests/utils/label_maps.py), every expected mask
worked out by hand from the rule in m2fp.outputs.mask_rules.

In FIGURE the face is 2 rows high, so a hand is 2 pixels long: the right arm (column 2)
leaves the shirt at rows 5-6, so its hand is rows 7-8; the left arm (column 11) leaves it
at rows 5-6 too and reaches row 9, so its hand is rows 8-9. The glove at (9, 2) is a hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from m2fp.labels import CIHP_LABELS, LIP_LABELS
from m2fp.outputs.agnostic import agnostic_mask, default_radius, hand_length, hand_pixels
from m2fp.outputs.errors import OutputRequestError
from m2fp.outputs.mask_rules import KEEP_ALL, AgnosticOptions
from tests.utils.label_maps import FIGURE, BoxedPerson, draw, draw_mask, draw_persons, show


def agnostic(art, kind, labels=CIHP_LABELS, persons_art=None, persons=(), **options):
    label_map = draw(art, labels)
    person_map = draw_persons(persons_art) if persons_art else np.zeros_like(label_map)
    options.setdefault("dilate", 0)
    return agnostic_mask(
        label_map,
        labels,
        kind,
        AgnosticOptions(**options),
        person_map=person_map,
        persons=persons,
    )


def expect(mask: np.ndarray, art: str) -> None:
    assert show(mask) == show(draw_mask(art))


EMPTY_ROW = ".............."


def rows_then_empty(*rows: str) -> str:
    return "\n".join([*rows, *[EMPTY_ROW] * (14 - len(rows))])


def test_hands_of_the_figure():
    labels = draw(FIGURE)
    everywhere = np.ones(labels.shape, dtype=bool)
    assert hand_length(labels, CIHP_LABELS, everywhere) == 2
    hands = hand_pixels(labels, CIHP_LABELS, everywhere)
    assert sorted(zip(*np.nonzero(hands), strict=True)) == [(7, 2), (8, 2), (8, 11), (9, 11)]


def test_upper_body():
    expect(
        agnostic(FIGURE, "upper_body"),
        rows_then_empty(
            "..............",
            "..............",
            "..............",
            "......##......",
            "...########...",
            "..##########..",
            "..##########..",
            "....######.#..",
        ),
    )


def test_upper_body_without_keeping_hands_masks_whole_arms_and_the_glove():
    expect(
        agnostic(FIGURE, "upper_body", keep=("face", "hair", "feet")),
        rows_then_empty(
            "..............",
            "..............",
            "..............",
            "......##......",
            "...########...",
            "..##########..",
            "..##########..",
            "..#.######.#..",
            "..#........#..",
            "..#........#..",
        ),
    )


def test_upper_body_dilated_by_one_pixel():
    # the 4-neighbours join the mask, except the face above the neck, the pants below the
    # shirt, the hands and the glove
    expect(
        agnostic(FIGURE, "upper_body", dilate=1),
        rows_then_empty(
            "..............",
            "..............",
            "..............",
            "...########...",
            "..##########..",
            ".############.",
            ".############.",
            ".#.##########.",
            ".#.#......#.#.",
            ".#.#......#.#.",
            "..#........#..",
        ),
    )


def test_lower_body_keeps_the_feet_unless_told_not_to():
    legs = (
        "....######....",
        "....######....",
        "....##..##....",
        "....##..##....",
        "....##..##....",
    )
    blank = (EMPTY_ROW,) * 8
    expect(agnostic(FIGURE, "lower_body"), "\n".join([*blank, *legs, EMPTY_ROW]))
    expect(
        agnostic(FIGURE, "lower_body", keep=("face", "hair", "hands")),
        "\n".join([*blank, *legs, "....##..##...."]),
    )


DRESS_ROWS = (
    "..............",
    "..............",
    "..............",
    "......##......",
    "...########...",
    "..##########..",
    "..##########..",
    "....######.#..",
    "....######....",
    "....######....",
    "....##..##....",
    "....##..##....",
)


def test_dresses():
    expect(agnostic(FIGURE, "dresses"), "\n".join([*DRESS_ROWS, EMPTY_ROW, EMPTY_ROW]))


def test_overall_and_overall_keeping_nothing():
    legs = "....##..##...."
    expect(agnostic(FIGURE, "overall"), "\n".join([*DRESS_ROWS, legs, EMPTY_ROW]))
    nothing_kept = list(DRESS_ROWS)
    nothing_kept[7] = "..#.######.#.."
    nothing_kept[8] = "..#.######.#.."
    nothing_kept[9] = "..#.######.#.."
    # face and hair are not in the mask's classes: without dilation they stay unmasked
    expect(agnostic(FIGURE, "overall", keep=()), "\n".join([*nothing_kept, legs, legs]))


def test_the_grey_variant_is_127_and_the_default_dilation_scales_with_the_box():
    grey = agnostic(FIGURE, "upper_body", grey=True)
    assert grey.dtype == np.uint8 and set(np.unique(grey).tolist()) == {0, 127}
    assert ((grey == 127) == agnostic(FIGURE, "upper_body")).all()
    assert default_radius((0, 0, 14, 14)) == 1  # at least one pixel
    assert default_radius((0, 0, 300, 524)) == 10  # OOTDiffusion's 10 px at about 512 px
    assert default_radius((0, 0, 74, 10)) == 1 and default_radius((0, 0, 75, 10)) == 2
    default = agnostic(FIGURE, "upper_body", dilate=None)
    assert (default == agnostic(FIGURE, "upper_body", dilate=1)).all()


def test_always_protected_classes_and_other_people():
    art = """
    TUUUUf.UUU
    SUUUUf.UUU
    """
    persons_art = """
    111111.222
    111111.222
    """
    persons = (BoxedPerson((0, 0, 6, 2), 12), BoxedPerson((7, 0, 10, 2), 6))
    mask = agnostic(art, "upper_body", persons_art=persons_art, persons=persons, person=0,
                    dilate=3)  # fmt: skip
    # hat, sunglasses and scarf are never masked; the dilation stops at the other person
    expect(mask, ".####.#...\n.####.#...")
    cropped = agnostic(art, "upper_body", persons_art=persons_art, persons=persons,
                       person="main", dilate=3, crop=True)  # fmt: skip
    expect(cropped, ".####.\n.####.")
    everyone = agnostic(art, "upper_body", persons_art=persons_art, persons=persons, dilate=0)
    expect(everyone, ".####..###\n.####..###")


def test_a_hand_on_the_hip_is_still_the_hand():
    art = """
    .UUUA..F
    .UUUAA.F
    .UUU.A..
    .UUU.A..
    .UUU.A..
    .UUU.A..
    .UUU.A..
    .UUUAA..
    """
    labels = draw(art)
    hands = hand_pixels(labels, CIHP_LABELS, np.ones(labels.shape, dtype=bool))
    assert sorted(zip(*np.nonzero(hands), strict=True)) == [(7, 4), (7, 5)]


def test_an_arm_away_from_the_torso_is_a_hand_and_no_face_means_a_tenth_of_the_height():
    art = "\n".join(["..A.", "..A.", *["...."] * 18])
    labels = draw(art)
    everywhere = np.ones(labels.shape, dtype=bool)
    assert hand_pixels(labels, CIHP_LABELS, everywhere).sum() == 2
    assert hand_length(labels, CIHP_LABELS, everywhere) == 2  # 20 rows / 10
    # a bare arm with no face: only its last two pixels are the hand
    long_arm = draw("\n".join(["UA", *[".A"] * 9, *[".."] * 10]))
    hands = hand_pixels(long_arm, CIHP_LABELS, np.ones(long_arm.shape, dtype=bool))
    assert sorted(zip(*np.nonzero(hands), strict=True)) == [(8, 1), (9, 1)]


def test_lip_jumpsuits_are_a_garment_and_torso_skin_is_simply_absent():
    mask = agnostic("hJJaPF", "upper_body", LIP_LABELS, keep=KEEP_ALL)
    assert mask.tolist() == [[False, True, True, False, False, False]]


def test_unknown_kind_and_bad_options():
    with pytest.raises(OutputRequestError, match="unknown agnostic mask 'shirt'"):
        agnostic(FIGURE, "shirt")
    with pytest.raises(OutputRequestError, match="unknown part to keep 'nose'"):
        AgnosticOptions(keep=("nose",))
    with pytest.raises(OutputRequestError, match="crop needs a person"):
        AgnosticOptions(crop=True)
