"""The upload as it arrives, in the app: its deadline, a client that goes away mid-upload, and
bad bytes refused as soon as they are seen."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from m2fp.server.app import create_app
from m2fp.server.app_state import app_state
from tests.server.conftest import app_client, tiny_settings
from tests.utils.images import png_bytes

pytestmark = pytest.mark.anyio
PARSE = "/api/v1/parse"
CALL_TIMEOUT = 20.0
PNG_HEADERS = {"content-type": "image/png"}


def scope(content_type: bytes, length: int) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PARSE,
        "raw_path": PARSE.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", content_type), (b"content-length", str(length).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def call(app, messages: list[dict | float], *, content_type=b"image/png", length=10**6):
    """Drive the app with scripted ``receive`` messages (a float sleeps that long first);
    returns the response start message and body."""
    script = list(messages)
    sent: list[dict] = []

    async def receive() -> dict:
        while script and isinstance(script[0], float):
            await asyncio.sleep(script.pop(0))
        if not script:
            await asyncio.sleep(3600)
        return script.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    # bounded: an app still waiting for the body after this has no deadline
    await asyncio.wait_for(app(scope(content_type, length), receive, send), CALL_TIMEOUT)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start, body


def chunk(data: bytes, more: bool = True) -> dict:
    return {"type": "http.request", "body": data, "more_body": more}


DISCONNECT = {"type": "http.disconnect"}


def audit_lines(caplog) -> list[dict]:
    return [r.fields for r in caplog.records if isinstance(getattr(r, "fields", None), dict)]


async def test_client_gone_mid_upload_is_a_client_abort_not_a_500(tiny_parser, caplog):
    caplog.set_level(logging.INFO)
    app = create_app(tiny_settings(), parser=tiny_parser)
    async with app_client(app) as client:
        start, _ = await call(app, [chunk(png_bytes()[:1000]), DISCONNECT])
        metrics = (await client.get("/metrics")).text
    assert start["status"] == 499
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    (line,) = [f for f in audit_lines(caplog) if f.get("route") == PARSE]
    assert (line["status"], line["reason"], line["outcome"]) == (499, "client_abort", "aborted")
    assert 'status="500"' not in metrics
    assert 'm2fp_rejections_total{reason="client_abort"} 1.0' in metrics


async def test_aborted_upload_that_was_already_bad_counts_as_a_bad_upload(tiny_parser):
    app = create_app(tiny_settings(ban_after=1), parser=tiny_parser)
    async with app_client(app) as client:
        start, body = await call(app, [chunk(b"GIF89a" + b"\0" * 1000), DISCONNECT])
        assert start["status"] == 415
        assert json.loads(body)["error"] == "unsupported_media_type"
        banned = await client.post(PARSE, content=png_bytes(), headers=PNG_HEADERS)
    assert banned.status_code == 403  # the aborted bad upload was a strike


async def test_wrong_magic_is_refused_before_the_rest_of_the_body(tiny_parser):
    app = create_app(tiny_settings(), parser=tiny_parser)
    async with app_client(app):
        # never more than the first chunk: the script has nothing after it
        start, body = await call(app, [chunk(b"<html><script>alert(1)</script>")])
    assert start["status"] == 415
    assert json.loads(body)["error"] == "unsupported_media_type"


async def test_upload_slower_than_its_deadline_is_408_and_the_connection_closes(tiny_parser):
    app = create_app(tiny_settings(upload_timeout=1.0), parser=tiny_parser)
    async with app_client(app):
        image = png_bytes()
        start, body = await call(app, [chunk(image[:100]), 0.6, chunk(image[100:200]), 5.0])
    assert start["status"] == 408
    assert json.loads(body)["error"] == "upload_timeout"
    headers = dict(start["headers"])
    assert headers[b"connection"] == b"close"
    assert app_state(app).services is None  # the lifespan ended cleanly
