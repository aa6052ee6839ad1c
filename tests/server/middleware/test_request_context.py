"""Request ids, the audit line and the generic 500."""

from __future__ import annotations

import json
import logging

import pytest

from m2fp.server.app import create_app
from m2fp.server.ops.audit_log import JsonFormatter
from tests.server.conftest import app_client, tiny_settings
from tests.utils.images import png_bytes
from tests.utils.stand_in_parser import StandInParser, standing_in_for

pytestmark = pytest.mark.anyio
PARSE = "/api/v1/parse"
PNG_HEADERS = {"content-type": "image/png"}


async def test_unexpected_errors_become_a_generic_500(tiny_parser, caplog):
    class BrokenParser(StandInParser):
        def parse_upright(self, image):
            raise RuntimeError("/home/alice/private-" + "detail.png")

    app = create_app(tiny_settings(), parser=BrokenParser(**standing_in_for(tiny_parser)))
    with caplog.at_level(logging.INFO):
        async with app_client(app) as client:
            response = await client.post(PARSE, content=png_bytes(), headers=PNG_HEADERS)
    assert response.status_code == 500
    body = response.json()
    assert body == {
        "error": "internal_error",
        "message": "Something went wrong on our side.",
        "request_id": response.headers["x-request-id"],
    }
    formatted = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "private-detail" not in formatted
    assert "RuntimeError" in formatted
    audit = [json.loads(line) for line in formatted.splitlines() if '"event":"request"' in line]
    assert audit[-1]["outcome"] == "error" and audit[-1]["reason"] == "internal_error"


async def test_client_request_id_is_not_echoed(tiny_parser):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        response = await client.get("/healthz", headers={"x-request-id": "<script>evil"})
    assert response.headers["x-request-id"] != "<script>evil"
    assert len(response.headers["x-request-id"]) == 32
