"""The WebUI and its static files, served from the package."""

from __future__ import annotations

import pytest

from m2fp.server.app import create_app
from m2fp.server.middleware.security_headers import CONTENT_SECURITY_POLICY
from tests.server.conftest import app_client, tiny_settings

pytestmark = pytest.mark.anyio


async def test_webui_and_static_files_from_the_package(tiny_parser, tmp_path, monkeypatch):
    from m2fp.server.routes import ui

    (tmp_path / "index.html").write_text("<!doctype html><title>m2fp</title>")
    (tmp_path / "app.js").write_text("console.log('ok');")
    monkeypatch.setattr(ui, "STATIC_DIR", tmp_path)
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        page = await client.get("/")
        script = await client.get("/static/app.js")
        escape = await client.get("/static/..%2F..%2Fetc%2Fpasswd")
        missing = await client.get("/static/nope.js")
        metrics = (await client.get("/metrics")).text
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert escape.status_code == 404 and escape.json()["error"] == "not_found"
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert 'route="/static/{path:path}"' in metrics and "app.js" not in metrics


async def test_webui_is_404_when_not_installed(tiny_parser, tmp_path, monkeypatch):
    from m2fp.server.routes import ui

    monkeypatch.setattr(ui, "STATIC_DIR", tmp_path / "absent")
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        page = await client.get("/")
        script = await client.get("/static/app.js")
    assert page.status_code == script.status_code == 404
