"""The downstream-output query parameters on their own: defaults, normalising, the options
they become, and what the loaded model's label set refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from m2fp.labels import CIHP_LABELS, LIP_LABELS
from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS
from m2fp.outputs.mask_rules import KEEP_ALL
from m2fp.server.errors import ApiError
from m2fp.server.parse.mask_query import LabelSetName, check_fits_model
from m2fp.server.parse.query import ParseQuery


def test_defaults_ask_for_nothing():
    query = ParseQuery()
    assert query.mask_specs == () and query.agnostic_kinds == ()
    assert query.label_set is None and query.person_spec is None and query.encoding == "png"
    assert query.output_request().agnostic_options.keep == KEEP_ALL
    assert (
        query.output_request().agnostic_options.dilate is None
        and query.output_request().mask_options.dilate == 0
    )


def test_values_are_normalised_into_options():
    query = ParseQuery(
        masks=" hair , head + Scarf,hair",
        agnostic="upper_body,upper_body",
        person="main",
        crop=True,
        dilate=4,
        keep="none",
        grey=True,
    )
    assert query.mask_specs == ("hair", "head+Scarf")
    assert query.agnostic_kinds == ("upper_body",)
    assert (
        query.output_request().mask_options.person == "main"
        and query.output_request().mask_options.dilate == 4
    )
    options = query.output_request().agnostic_options
    assert options.keep == () and options.grey and options.crop and options.dilate == 4
    assert ParseQuery(person="007").person_spec == 7


@pytest.mark.parametrize(
    "values",
    [
        {"masks": "tail"},
        {"agnostic": "shirt"},
        {"label_set": "pascal"},
        {"person": "first"},
        {"keep": "toes"},
        {"crop": True},
        {"feather": 3, "encoding": "rle"},
        {"grey": True, "encoding": "rle"},
        {"dilate": 129},
    ],
)
def test_refused(values):
    with pytest.raises(ValidationError):
        ParseQuery(**values)


class Model:
    def __init__(self, labels) -> None:
        self.label_set = labels


def test_the_models_label_set_decides_what_it_can_make():
    check_fits_model(ParseQuery(masks="skin", label_set="atr"), Model(CIHP_LABELS))
    check_fits_model(ParseQuery(masks="Jumpsuits", label_set="viton"), Model(LIP_LABELS))
    for query in (ParseQuery(masks="skin"), ParseQuery(label_set="atr")):
        with pytest.raises(ApiError) as refused:
            check_fits_model(query, Model(LIP_LABELS))
        assert refused.value.reason == "bad_request"
    check_fits_model(ParseQuery(agnostic="overall"), object())  # nothing to check: not asked


@pytest.mark.parametrize("name", list(OUTPUT_LABEL_SETS))
def test_every_output_label_set_is_a_query_value(name):
    """The query's label sets are the outputs' own (one list, no copy to keep in step)."""
    assert ParseQuery(label_set=name).label_set == name
    assert set(LabelSetName.__args__) == set(OUTPUT_LABEL_SETS)
