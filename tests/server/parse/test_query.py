"""The parse query on its own: the library's overlay default and rule, known class names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from m2fp.defaults import DEFAULT_ALPHA
from m2fp.server.parse.query import ParseQuery


def test_defaults():
    query = ParseQuery()
    assert (query.alpha, query.visualize, query.class_names) == (DEFAULT_ALPHA, True, ())


@pytest.mark.parametrize("alpha", ["-0.1", "1.01", "nan", "inf", "half"])
def test_alpha_outside_0_to_1_is_refused(alpha):
    with pytest.raises(ValidationError) as refused:
        ParseQuery(alpha=alpha)
    assert refused.value.errors()[0]["loc"] == ("alpha",)


def test_classes_are_deduplicated_in_order_and_must_be_known():
    assert ParseQuery(classes="Hair, Face,Hair").class_names == ("Hair", "Face")
    with pytest.raises(ValidationError):
        ParseQuery(classes="Face,Tail")
    with pytest.raises(ValidationError):
        ParseQuery(classes="Human")  # not a label-map class
