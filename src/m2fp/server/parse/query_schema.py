"""``POST /api/v1/parse``'s query as the OpenAPI schema describes it, truly enough for
schema-driven tools (schemathesis) to test the real contract: comma lists as arrays
(``style: form, explode: false``) of the closed sets they are drawn from, optional values
without pydantic's ``null`` (a query cannot send one), and the ranges the checks enforce.

The checks themselves stay in ``ParseQuery``/``MaskQuery``; this only describes them.
"""

from __future__ import annotations

import re
from typing import Any

from m2fp.labels import LABEL_SETS
from m2fp.outputs.mask_rules import AGNOSTIC_KINDS, GROUPS, KEEP_PARTS, MAX_RADIUS
from m2fp.results.visualization import MAX_ALPHA, MIN_ALPHA
from m2fp.server.parse.mask_query import LabelSetName
from m2fp.server.parse.query import ParseQuery

# every class a mask can be asked for, of any label set (the loaded model's are a subset:
# GET /api/v1/classes; the others are refused 400)
MASK_CLASSES = tuple(dict.fromkeys(n for labels in LABEL_SETS.values() for n in labels.names))
# a mask spec: a group or a class name, or a union of them joined with '+'
_TERM = "(?:" + "|".join(re.escape(name) for name in (*GROUPS, *MASK_CLASSES)) + ")"
MASK_SPEC_PATTERN = f"^{_TERM}(?:\\+{_TERM})*$"


def _comma_list(items: dict[str, Any], max_items: int) -> dict[str, Any]:
    return {
        "style": "form",
        "explode": False,
        "schema": {"type": "array", "items": items, "maxItems": max_items},
    }


def _schema_default(default: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """pydantic's default in the parameter's own type: a comma list's as an array, none for
    an absent value (``None``) or an empty list."""
    if default is None or default == "":
        return {}
    if schema.get("type") == "array":
        return {"default": default.split(",")}
    return {"default": default}


def _overrides() -> dict[str, dict[str, Any]]:
    """Per parameter, what replaces or refines pydantic's description of it."""
    return {
        "classes": _comma_list({"type": "string", "enum": list(MASK_CLASSES)}, len(MASK_CLASSES)),
        "masks": _comma_list({"type": "string", "pattern": MASK_SPEC_PATTERN}, 40),
        "agnostic": _comma_list({"type": "string", "enum": list(AGNOSTIC_KINDS)}, 4),
        # "none" alone keeps nothing; with a part it is refused (400)
        "keep": _comma_list({"type": "string", "enum": [*KEEP_PARTS, "none"]}, 5),
        "label_set": {"schema": {"type": "string", "enum": list(LabelSetName.__args__)}},
        "person": {"schema": {"type": "string", "pattern": "^(?:main|[0-9]{1,3})$"}},
        "dilate": {"schema": {"type": "integer", "minimum": 0, "maximum": MAX_RADIUS}},
        "alpha": {"schema": {"type": "number", "minimum": MIN_ALPHA, "maximum": MAX_ALPHA}},
    }


def query_parameters() -> dict[str, Any]:
    """The ``parameters`` of the parse operation (an ``openapi_extra`` entry): every field of
    ``ParseQuery``, each with its description and default."""
    schema = ParseQuery.model_json_schema()
    overrides = _overrides()
    parameters = []
    for name, field in schema["properties"].items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in schema.get("required", ()),
            "description": field.get("description", ""),
            "schema": {k: v for k, v in field.items() if k not in ("description", "title")},
        }
        parameter.update(overrides.get(name, {}))
        parameter["schema"] = {
            **{k: v for k, v in parameter["schema"].items() if k != "default"},
            **_schema_default(field.get("default"), parameter["schema"]),
        }
        parameters.append(parameter)
    return {"parameters": parameters}
