"""The client address behind trusted proxies, as the audit line sees it."""

from __future__ import annotations

import logging

import pytest

from m2fp.server.app import create_app
from m2fp.server.app_state import app_state
from tests.server.conftest import app_client, tiny_settings

pytestmark = pytest.mark.anyio


async def test_audit_client_is_the_forwarded_address_behind_a_trusted_proxy(tiny_parser, caplog):
    settings = tiny_settings(trusted_proxies="10.0.0.0/8")
    app = create_app(settings, parser=tiny_parser)
    async with app_client(app, client_host="10.0.0.1") as client:
        with caplog.at_level(logging.INFO, logger="m2fp.audit"):
            await client.get("/healthz", headers={"x-forwarded-for": "1.1.1.1, 198.51.100.9"})
        audit = app_state(app).audit
        lines = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("event")]
        assert lines[-1]["client"] == audit.client_id("198.51.100.9")
