"""One request's masks made together, as the CLI and the server ask for them."""

from __future__ import annotations

import pytest

from m2fp.labels import LIP_LABELS
from m2fp.outputs.errors import OutputRequestError, PersonNotFoundError
from m2fp.outputs.mask_rules import AgnosticOptions, MaskOptions
from m2fp.outputs.requested import OutputRequest, make_masks
from tests.utils.label_maps import FIGURE, result_from

PERSON = "\n".join(["." * 2 + "1" * 10 + "." * 2] * 14)


def test_build_shares_person_crop_and_dilation():
    request = OutputRequest.build(specs=("hair",), kinds=("overall",), person="main", crop=True)
    assert request.mask_options == MaskOptions(person="main", crop=True)
    assert request.agnostic_options.dilate is None and request.agnostic_options.crop
    assert OutputRequest.build(dilate=3).mask_options.dilate == 3
    with pytest.raises(OutputRequestError, match="one person"):
        OutputRequest(mask_options=MaskOptions(person=0), agnostic_options=AgnosticOptions())
    with pytest.raises(OutputRequestError, match="binary masks only"):
        OutputRequest.build(specs=("hair",), feather=2, encoding="rle")
    with pytest.raises(OutputRequestError, match="binary masks only"):
        OutputRequest.build(kinds=("overall",), grey=True, encoding="rle")
    OutputRequest.build(feather=2, grey=True, encoding="rle")  # no mask asked: nothing to refuse


def test_check_for_a_label_set():
    OutputRequest.build(specs=("upper_clothes",), label_set="viton").check_for(LIP_LABELS)
    for request in (OutputRequest.build(specs=("skin",)), OutputRequest.build(label_set="atr")):
        with pytest.raises(OutputRequestError):
            request.check_for(LIP_LABELS)


def test_make_masks_reports_the_person_and_box():
    result = result_from(FIGURE, PERSON)
    made = make_masks(result, OutputRequest.build(specs=("hair", "face"), kinds=("overall",),
                                                  person="main", crop=True))  # fmt: skip
    assert made.person == 0 and made.box == (2, 0, 12, 14)
    assert list(made.grouped) == ["hair", "face"] and list(made.agnostic) == ["overall"]
    assert made.grouped["hair"].shape == (14, 10)
    whole = make_masks(result, OutputRequest.build(specs=("hair",), person=0))
    assert whole.box == (0, 0, 14, 14) and whole.grouped["hair"].shape == (14, 14)
    with pytest.raises(PersonNotFoundError):
        make_masks(result, OutputRequest.build(specs=("hair",), person=1))
