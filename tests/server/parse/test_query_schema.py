"""The parse query as the OpenAPI schema describes it agrees with what ``ParseQuery`` accepts:
every value the schema offers is accepted, and the values it leaves out are refused, so a
schema-driven tool tests the real contract."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from m2fp.server.parse.query import ParseQuery
from m2fp.server.parse.query_schema import MASK_SPEC_PATTERN, query_parameters


def parameters() -> dict[str, dict]:
    return {p["name"]: p for p in query_parameters()["parameters"]}


def test_every_field_is_a_parameter_without_nulls():
    described = parameters()
    assert set(described) == set(ParseQuery.model_fields)
    for parameter in described.values():
        assert "anyOf" not in parameter["schema"]  # a query cannot send null
        assert parameter["in"] == "query" and not parameter["required"]


@pytest.mark.parametrize("name", ["classes", "agnostic", "keep", "label_set", "encoding"])
def test_every_enum_value_is_accepted(name):
    parameter = parameters()[name]
    schema = parameter["schema"]
    values = schema["items"]["enum"] if schema["type"] == "array" else schema["enum"]
    for value in values:
        ParseQuery(**{name: value})
    if schema["type"] == "array":
        assert (parameter["style"], parameter["explode"]) == ("form", False)
        ParseQuery(**{name: ",".join(v for v in values if v != "none")})


@pytest.mark.parametrize("name", ["agnostic", "keep", "label_set", "encoding"])
def test_a_value_outside_the_enum_is_refused(name):
    with pytest.raises(ValidationError):
        ParseQuery(**{name: "sleeves"})


@pytest.mark.parametrize("spec", ["hair", "head+Scarf", "Torso-skin", "Jumpsuits+legs"])
def test_mask_specs_the_pattern_allows_are_accepted(spec):
    assert re.match(MASK_SPEC_PATTERN, spec)
    assert ParseQuery(masks=spec).mask_specs == (spec,)


@pytest.mark.parametrize("spec", ["hairs", "head+", "+hair", "head++Hat", "Neck", "1"])
def test_mask_specs_the_pattern_refuses_are_refused(spec):
    assert not re.match(MASK_SPEC_PATTERN, spec)
    with pytest.raises(ValidationError):
        ParseQuery(masks=spec)


@pytest.mark.parametrize(
    ("name", "good", "bad"), [("person", "main", "first"), ("dilate", 128, 129)]
)
def test_the_ranges_are_those_enforced(name, good, bad):
    schema = parameters()[name]["schema"]
    if "pattern" in schema:
        assert re.match(schema["pattern"], good) and not re.match(schema["pattern"], bad)
    else:
        assert schema["minimum"] <= good <= schema["maximum"] < bad
    ParseQuery(**{name: good})
    with pytest.raises(ValidationError):
        ParseQuery(**{name: bad})


def test_keep_default_is_the_array_of_every_part():
    assert parameters()["keep"]["schema"]["default"] == ParseQuery().keep.split(",")
