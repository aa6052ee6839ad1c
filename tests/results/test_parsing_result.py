"""ParsingResult's output methods on a drawn result: label sets, masks, agnostic masks, RLE."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from m2fp.labels import LIP_LABELS
from m2fp.outputs import coco_rle
from m2fp.outputs.errors import OutputRequestError, PersonNotFoundError
from m2fp.outputs.label_sets import ATR_LABELS, VITON_LABELS
from m2fp.outputs.mask_encoding import mask_png, mask_rle
from m2fp.results.single_person import SinglePersonResult
from tests.utils.label_maps import FIGURE, chars, draw, result_from

FIGURE_PERSON = "\n".join(["1" * 14] * 14)


@pytest.fixture
def figure():
    return result_from(FIGURE, FIGURE_PERSON)


def test_label_map_png_in_each_set(figure):
    native = Image.open(io.BytesIO(figure.label_map_png()))
    assert native.mode == "P" and (np.asarray(native) == figure.label_map).all()
    atr = Image.open(io.BytesIO(figure.label_map_png("atr")))
    assert (np.asarray(atr) == figure.label_map_as("atr")).all()
    assert atr.getpalette()[: 3 * 19] == [c for rgb in ATR_LABELS.palette for c in rgb]
    neck = ATR_LABELS.names.index("Neck")
    assert (figure.label_map_as("atr") == neck).sum() == 2
    viton = figure.label_map_as("viton")
    assert viton.max() < len(VITON_LABELS.names)
    assert (viton == VITON_LABELS.names.index("upper")).sum() == chars(FIGURE, "U").sum()
    with pytest.raises(OutputRequestError, match="unknown label set"):
        figure.label_map_png("pascal")


def test_lip_results_refuse_what_they_cannot_derive():
    lip = result_from("hJF", lip=True)
    assert lip.label_set.name == "lip"
    assert lip.label_map_as("viton").tolist() == [[1, 3, 2]]
    with pytest.raises(OutputRequestError, match="Neck"):
        lip.label_map_as("atr")
    with pytest.raises(OutputRequestError, match="skin"):
        lip.mask("skin")


def test_mask_and_its_options(figure):
    assert (figure.mask("upper_clothes") == chars(FIGURE, "U")).all()
    assert (figure.mask("hair", "face") == figure.mask("head")).all()
    assert (figure.mask("hair", person="main") == chars(FIGURE, "h")).all()
    dilated = figure.mask("Torso-skin", dilate=1, invert=True)
    assert dilated.sum() == 14 * 14 - 2 - 6  # the neck, the 6 pixels around it
    assert figure.mask("hair", person=0, crop=True).shape == (14, 14)
    assert figure.mask("hair", feather=1).dtype == np.uint8
    with pytest.raises(OutputRequestError, match="name at least one mask"):
        figure.mask()
    with pytest.raises(PersonNotFoundError):
        figure.mask("hair", person=1)


def test_agnostic_mask_flags_map_to_the_parts(figure):
    default = figure.agnostic_mask("upper_body", dilate=0)
    no_hands = figure.agnostic_mask("upper_body", dilate=0, keep_hands=False)
    assert (no_hands & ~default).sum() == 5  # two hands of two pixels and the glove
    no_face = figure.agnostic_mask("upper_body", dilate=1, keep_face=False)
    with_face = figure.agnostic_mask("upper_body", dilate=1)
    assert ((no_face & ~with_face) == (chars(FIGURE, "F") & no_face)).all()
    assert (no_face & ~with_face).sum() == 2  # the face above the neck
    grey = figure.agnostic_mask("overall", person="main", crop=True, grey=True)
    assert grey.dtype == np.uint8 and grey.max() == 127


def test_to_coco_rle_is_the_mask_encoded(figure):
    rle = figure.to_coco_rle("head", person="main")
    assert (coco_rle.decode(rle) == figure.mask("head")).all()
    assert coco_rle.area(rle) == chars(FIGURE, "hF").sum()


def single_person(art: str) -> SinglePersonResult:
    labels = draw(art, LIP_LABELS)
    image = Image.new("RGB", (labels.shape[1], labels.shape[0]))
    return SinglePersonResult(
        image=image,
        label_map=labels,
        persons=(),
        unassigned_parts=(),
        class_names=LIP_LABELS.names,
    )


def test_single_person_results_have_one_implicit_person():
    result = single_person(
        """
        ......
        ..hh..
        ..JJa.
        ..PP..
        """
    )
    assert result.persons == ()
    cropped = result.mask("upper_clothes", person="main", crop=True)
    assert cropped.tolist() == [[False, False, False], [True, True, False], [False, False, False]]
    assert (result.mask("hair", person=0) == result.mask("hair")).all()
    assert result.agnostic_mask("upper_body", person="main", dilate=0).sum() == 2
    with pytest.raises(PersonNotFoundError, match="there is no person 1: 1 found"):
        result.mask("hair", person=1)
    nobody = single_person("......")
    with pytest.raises(PersonNotFoundError, match="no main person"):
        nobody.mask("hair", person="main")


def test_mask_encodings():
    mask = draw("hh.\n.h.") == 2
    one_bit = Image.open(io.BytesIO(mask_png(mask)))
    assert one_bit.mode == "1" and (np.asarray(one_bit) == mask).all()
    grey = Image.open(io.BytesIO(mask_png(mask.astype(np.uint8) * 127)))
    assert grey.mode == "L" and np.asarray(grey).max() == 127
    assert mask_rle(mask) == coco_rle.encode(mask)
    with pytest.raises(OutputRequestError, match="binary masks only"):
        mask_rle(mask.astype(np.uint8))
