"""The mask and label-set rules as one JSON document, keyed by source label set, so the WebUI
(``static/masks.js``) applies exactly the tables the Python code does, without a second
upload. Standard library only."""

from __future__ import annotations

from typing import Any

from m2fp.labels import LabelSet
from m2fp.outputs.errors import OutputRequestError
from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS, REMAP_RULES
from m2fp.outputs.mask_rules import (
    AGNOSTIC_DILATE_DIVISOR,
    AGNOSTIC_KINDS,
    ALWAYS_PROTECTED,
    ARMS,
    GROUPS,
    HAND_DIVISOR_WITHOUT_FACE,
    KEEP_PARTS,
    KNOWN_SOURCES,
    MAX_RADIUS,
    TORSO,
    class_ids,
    group_ids,
)


def _groups(labels: LabelSet) -> dict[str, list[int] | None]:
    """Group -> class ids; None for a group this set cannot make (LIP's skin)."""
    out: dict[str, list[int] | None] = {}
    for group in GROUPS:
        try:
            out[group] = list(group_ids(group, labels))
        except OutputRequestError:
            out[group] = None
    return out


def _agnostic(labels: LabelSet) -> dict[str, Any]:
    return {
        "kinds": {
            kind: {
                "target": list(class_ids(rule.garment + rule.body, labels)),
                "protect": list(class_ids(ALWAYS_PROTECTED + rule.protect, labels)),
            }
            for kind, rule in AGNOSTIC_KINDS.items()
        },
        "keep": {part: list(class_ids(names, labels)) for part, names in KEEP_PARTS.items()},
        "arms": list(class_ids(ARMS, labels)),
        "torso": list(class_ids(TORSO, labels)),
        "face": list(class_ids(("Face",), labels)),
    }


def rules_document() -> dict[str, Any]:
    """Label sets (classes, palette), remaps, groups and agnostic rules per source set."""
    return {
        "label_sets": {
            name: {"classes": list(s.names), "palette": [list(c) for c in s.palette]}
            for name, s in OUTPUT_LABEL_SETS.items()
        },
        "remaps": {
            source: {
                target: {
                    "table": list(rule.table),
                    "sided": [[s.source_id, s.left_id, s.right_id] for s in rule.sided],
                }
                for (src, target), rule in REMAP_RULES.items()
                if src == source
            }
            for source in KNOWN_SOURCES
        },
        "groups": {source: _groups(labels) for source, labels in KNOWN_SOURCES.items()},
        "agnostic": {source: _agnostic(labels) for source, labels in KNOWN_SOURCES.items()},
        "constants": {
            "agnostic_dilate_divisor": AGNOSTIC_DILATE_DIVISOR,
            "hand_divisor_without_face": HAND_DIVISOR_WITHOUT_FACE,
            "max_radius": MAX_RADIUS,
        },
    }
