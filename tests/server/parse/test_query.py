"""The parse query on its own: the library's overlay default and rule, the class names of the
loaded model's label set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from m2fp.defaults import DEFAULT_ALPHA
from m2fp.labels import CIHP_LABELS, LIP_LABELS
from m2fp.server.parse.query import ParseQuery


def test_defaults():
    query = ParseQuery()
    assert (query.alpha, query.visualize, query.class_names) == (DEFAULT_ALPHA, True, ())


@pytest.mark.parametrize("alpha", ["-0.1", "1.01", "nan", "inf", "half"])
def test_alpha_outside_0_to_1_is_refused(alpha):
    with pytest.raises(ValidationError) as refused:
        ParseQuery(alpha=alpha)
    assert refused.value.errors()[0]["loc"] == ("alpha",)


def test_classes_are_deduplicated_in_order():
    assert ParseQuery(classes="Hair, Face,Hair").class_names == ("Hair", "Face")


@pytest.mark.parametrize(
    ("classes", "cihp", "lip"),
    [
        ("Face,Hair", True, True),
        ("Torso-skin", True, False),
        ("Jumpsuits", False, True),
        ("Human", False, False),  # not a label-map class
        ("Face,Tail", False, False),
        ("face", False, False),  # case-sensitive
    ],
)
def test_classes_must_be_the_label_sets(classes, cihp, lip):
    query = ParseQuery(classes=classes)
    for label_set, known in ((CIHP_LABELS, cihp), (LIP_LABELS, lip)):
        if known:
            query.check_classes(label_set)
        else:
            with pytest.raises(ValueError, match="unknown class"):
                query.check_classes(label_set)
