"""``GET /api/v1/mask-rules``: the tables the WebUI computes masks with are the Python ones."""

from __future__ import annotations

import pytest

from m2fp.labels import CIHP_LABELS, LIP_LABELS
from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS, REMAP_RULES
from m2fp.outputs.mask_rules import AGNOSTIC_KINDS, GROUPS
from m2fp.server.app import create_app
from tests.server.conftest import app_client, tiny_settings

pytestmark = pytest.mark.anyio


async def test_the_document_is_the_python_tables(tiny_parser):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        response = await client.get("/api/v1/mask-rules")
        head = await client.head("/api/v1/mask-rules")
    assert response.status_code == head.status_code == 200
    rules = response.json()
    assert set(rules["label_sets"]) == set(OUTPUT_LABEL_SETS)
    assert rules["label_sets"]["atr"]["classes"][18] == "Neck"
    assert rules["remaps"]["cihp"]["atr"]["table"] == list(REMAP_RULES["cihp", "atr"].table)
    assert rules["remaps"]["cihp"]["atr"]["sided"] == [[3, 14, 15], [8, 12, 13]]
    assert set(rules["remaps"]["lip"]) == {"lip", "viton"}  # atr and cihp are refused
    assert set(rules["groups"]["cihp"]) == set(GROUPS)
    assert rules["groups"]["lip"]["skin"] is None
    assert rules["groups"]["lip"]["upper_clothes"] == [5, 6, 7, 10]
    for labels in (CIHP_LABELS, LIP_LABELS):
        agnostic = rules["agnostic"][labels.name]
        assert set(agnostic["kinds"]) == set(AGNOSTIC_KINDS)
        assert agnostic["face"] == [13] and agnostic["keep"]["hair"] == [2]
    assert rules["agnostic"]["cihp"]["kinds"]["upper_body"] == {
        "target": [3, 5, 6, 7, 10, 14, 15],
        "protect": [1, 4, 9, 11, 12, 16, 17],
    }
    assert rules["constants"] == {
        "agnostic_dilate_divisor": 50,
        "hand_divisor_without_face": 10,
        "max_radius": 128,
    }


async def test_it_needs_no_key_and_spends_no_quota(tiny_parser):
    settings = tiny_settings(api_keys="0" * 64, api_keys_required=True, rate_limit="1/minute")
    async with app_client(create_app(settings, parser=tiny_parser)) as client:
        answers = [await client.get("/api/v1/mask-rules") for _ in range(3)]
        refused = await client.post("/api/v1/parse", content=b"x")
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert refused.status_code == 401  # the parse route is still guarded
