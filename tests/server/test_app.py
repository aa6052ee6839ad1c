"""The app in-process (httpx ASGI transport): answers, headers, CORS, CSRF, errors, metrics."""

from __future__ import annotations

import base64
import io
import json
import logging
import struct
import threading

import anyio
import anyio.to_thread
import pytest
from PIL import Image, PngImagePlugin

from m2fp.server.app import create_app
from m2fp.server.middleware.security_headers import CONTENT_SECURITY_POLICY
from m2fp.server.ops.audit_log import JsonFormatter
from tests.server.conftest import app_client, tiny_settings
from tests.utils.images import jpeg_bytes, png_bytes

pytestmark = pytest.mark.anyio
PARSE = "/api/v1/parse"
PNG_HEADERS = {"content-type": "image/png"}


def png_chunk_types(data: bytes) -> list[bytes]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        types.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def decode_png(text: str) -> tuple[Image.Image, bytes]:
    data = base64.b64decode(text)
    return Image.open(io.BytesIO(data)), data


async def test_json_answer_has_every_map_and_no_metadata(tiny_parser):
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "alice")
    upload = png_bytes(90, 70, seed=3, pnginfo=info)
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        response = await client.post(
            f"{PARSE}?classes=Face,Hair,Face", content=upload, headers=PNG_HEADERS
        )
    assert response.status_code == 200
    body = response.json()
    assert (body["width"], body["height"]) == (90, 70)
    assert set(body) == {
        "request_id", "width", "height", "classes_present", "persons", "unassigned_parts",
        "label_map_png", "person_map_png", "visualization_png", "class_masks",
    }  # fmt: skip
    expected = tiny_parser(upload)
    label_map, _ = decode_png(body["label_map_png"])
    person_map, _ = decode_png(body["person_map_png"])
    assert label_map.mode == "P" and person_map.mode == "L"
    assert person_map.tobytes() == expected.person_map().tobytes()
    assert list(body["class_masks"]) == ["Face", "Hair"]
    face, _ = decode_png(body["class_masks"]["Face"])
    assert face.mode == "1" and face.size == (90, 70)
    assert face.tobytes() == Image.fromarray(expected.class_mask("Face")).tobytes()
    for key in ("label_map_png", "person_map_png", "visualization_png"):
        chunks = png_chunk_types(base64.b64decode(body[key]))
        assert set(chunks) <= {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}, key
    assert b"alice" not in response.content
    assert response.headers["cache-control"] == "no-store"


async def test_visualize_false_and_accept_png(tiny_parser):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        plain = await client.post(
            f"{PARSE}?visualize=false", content=jpeg_bytes(), headers={"content-type": "image/jpeg"}
        )
        picture = await client.post(
            f"{PARSE}?alpha=0.3",
            content=jpeg_bytes(),
            headers={"content-type": "image/jpeg", "accept": "image/png"},
        )
        both = await client.post(
            PARSE,
            content=jpeg_bytes(),
            headers={"content-type": "image/jpeg", "accept": "image/png, application/json"},
        )
    assert "visualization_png" not in plain.json()
    assert "class_masks" not in plain.json()
    assert picture.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(picture.content)).width == 96
    assert both.headers["content-type"] == "application/json"


async def test_long_side_is_limited_by_max_side(tiny_parser):
    settings = tiny_settings(max_side=64)
    async with app_client(create_app(settings, parser=tiny_parser)) as client:
        response = await client.post(PARSE, content=png_bytes(200, 100), headers=PNG_HEADERS)
    assert (response.json()["width"], response.json()["height"]) == (64, 32)


async def test_pixel_limit_from_settings(tiny_parser):
    settings = tiny_settings(max_pixels=1000)
    async with app_client(create_app(settings, parser=tiny_parser)) as client:
        response = await client.post(PARSE, content=png_bytes(50, 50), headers=PNG_HEADERS)
    assert response.status_code == 413
    assert response.json()["error"] == "too_many_pixels"


async def test_upload_limit_from_settings(tiny_parser):
    settings = tiny_settings(max_upload_bytes=2048)
    async with app_client(create_app(settings, parser=tiny_parser)) as client:
        response = await client.post(PARSE, content=png_bytes(64, 64), headers=PNG_HEADERS)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


async def test_classes_health_and_readiness(tiny_parser):
    app = create_app(tiny_settings(), parser=tiny_parser)
    async with app_client(app) as client:
        classes = (await client.get("/api/v1/classes")).json()["classes"]
        assert len(classes) == 20
        assert classes[2] == {"id": 2, "name": "Hair", "color": [255, 0, 0]}
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).status_code == 200
        app.state.not_ready.add("memory")
        shedding = await client.get("/readyz")
        assert (shedding.status_code, shedding.json()) == (503, {"status": "not_ready"})
        assert (await client.get("/healthz")).status_code == 200


async def test_not_ready_before_the_model_is_loaded(tiny_parser):
    import httpx

    app = create_app(tiny_settings(), parser=tiny_parser)
    transport = httpx.ASGITransport(app=app)  # no lifespan: the model is not in place yet
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/readyz")).status_code == 503
        response = await client.post(PARSE, content=png_bytes(), headers=PNG_HEADERS)
    assert (response.status_code, response.json()["error"]) == (503, "overloaded")


async def test_lifespan_loads_the_model_from_settings(tiny_model_dir):
    app = create_app(tiny_settings(model=tiny_model_dir))
    async with app_client(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        response = await client.post(PARSE, content=png_bytes(), headers=PNG_HEADERS)
    assert response.status_code == 200


@pytest.mark.parametrize("docs", [False, True])
async def test_docs_only_when_enabled(tiny_parser, docs):
    async with app_client(create_app(tiny_settings(docs=docs), parser=tiny_parser)) as client:
        openapi = await client.get("/openapi.json")
        page = await client.get("/docs")
    assert openapi.status_code == (200 if docs else 404)
    assert page.status_code == 404  # no CDN-backed HTML docs page, ever
    if docs:
        assert openapi.json()["info"] == {"title": "m2fp", "version": "v1"}


async def test_security_headers_and_hsts_only_over_https(tiny_parser):
    import httpx

    settings = tiny_settings(trusted_proxies="10.0.0.0/8")
    app = create_app(settings, parser=tiny_parser)
    async with app_client(app) as client:
        plain = await client.get("/healthz")
        spoofed = await client.get("/healthz", headers={"x-forwarded-proto": "https"})
    async with app_client(app, client_host="10.1.2.3") as proxied:
        forwarded = await proxied.get("/healthz", headers={"x-forwarded-proto": "https"})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as tls:
        direct_tls = await tls.get("/healthz")
    assert plain.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert plain.headers["referrer-policy"] == "no-referrer"
    assert "camera=()" in plain.headers["permissions-policy"]
    assert "strict-transport-security" not in plain.headers
    assert "strict-transport-security" not in spoofed.headers  # untrusted peer
    assert "max-age=" in forwarded.headers["strict-transport-security"]
    assert "max-age=" in direct_tls.headers["strict-transport-security"]
    assert "server" not in plain.headers


async def test_cors_is_closed_by_default(tiny_parser):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        preflight = await client.options(
            PARSE,
            headers={"origin": "https://other.example", "access-control-request-method": "POST"},
        )
        simple = await client.get("/api/v1/classes", headers={"origin": "https://other.example"})
    assert preflight.status_code == 403
    assert preflight.json()["error"] == "forbidden_origin"
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_allow_list(tiny_parser):
    settings = tiny_settings(cors_origins="https://app.example")
    async with app_client(create_app(settings, parser=tiny_parser)) as client:
        preflight = await client.options(
            PARSE,
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        allowed = await client.post(
            PARSE,
            content=png_bytes(),
            headers={
                **PNG_HEADERS,
                "origin": "https://app.example",
                "sec-fetch-site": "cross-site",
            },
        )
        other = await client.get("/api/v1/classes", headers={"origin": "https://evil.example"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # curl, scripts: no browser, no ambient credentials
        ({"sec-fetch-site": "same-origin"}, True),
        ({"sec-fetch-site": "none"}, True),
        ({"sec-fetch-site": "cross-site", "origin": "https://evil.example"}, False),
        ({"sec-fetch-site": "same-site", "origin": "https://sub.testserver"}, False),
        ({"origin": "https://evil.example"}, False),
        ({"origin": "null"}, False),
        ({"origin": "http://testserver"}, True),
    ],
)
async def test_cross_site_posts_are_refused(tiny_parser, headers, allowed):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        response = await client.post(PARSE, content=png_bytes(), headers={**PNG_HEADERS, **headers})
        safe = await client.get("/api/v1/classes", headers=headers)
    if allowed:
        assert response.status_code == 200
    else:
        assert (response.status_code, response.json()["error"]) == (403, "forbidden_origin")
    assert safe.status_code == 200  # only state-changing methods are checked


async def test_unexpected_errors_become_a_generic_500(tiny_parser, caplog):
    class BrokenParser:
        def __call__(self, image):
            raise RuntimeError("/home/alice/private-" + "detail.png")

    app = create_app(tiny_settings(), parser=BrokenParser())
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


async def test_errors_for_unknown_routes_and_methods(tiny_parser):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        missing = await client.get("/private/alice.png")
        wrong = await client.delete(PARSE)
        metrics = (await client.get("/metrics")).text
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert "alice" not in missing.text
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "POST"
    assert 'route="<unmatched>"' in metrics
    assert "alice" not in metrics


async def test_rejected_uploads_are_security_events(tiny_parser, caplog):
    with caplog.at_level(logging.INFO, logger="m2fp.audit"):
        async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
            await client.post(PARSE, content=b"GIF89a", headers=PNG_HEADERS)
    events = [r.fields for r in caplog.records if r.fields["event"] == "security_event"]
    assert events == [
        {"event": "security_event", "kind": "rejected_upload", "client": events[0]["client"],
         "reason": "unsupported_media_type"}
    ]  # fmt: skip
    assert events[0]["client"] != "127.0.0.1"


async def test_inference_runs_off_the_event_loop_with_bounded_concurrency(tiny_parser):
    class GatedParser:
        def __init__(self) -> None:
            self.entered = threading.Event()
            self.release = threading.Event()
            self.calls = 0

        def __call__(self, image):
            self.calls += 1
            self.entered.set()
            assert self.release.wait(60)
            return tiny_parser(image)

    gated = GatedParser()
    app = create_app(tiny_settings(max_concurrency=1), parser=gated)
    statuses = []
    async with app_client(app) as client:

        async def post() -> None:
            response = await client.post(PARSE, content=png_bytes(), headers=PNG_HEADERS)
            statuses.append(response.status_code)

        async with anyio.create_task_group() as group:
            group.start_soon(post)
            group.start_soon(post)
            await anyio.to_thread.run_sync(gated.entered.wait, 60)
            # the event loop still answers while a parse holds the only worker slot
            assert (await client.get("/healthz")).status_code == 200
            queue = app.state.inference.queue
            for _ in range(6000):
                if queue.depth == 1:
                    break
                await anyio.sleep(0.01)
            assert gated.calls == 1
            assert "m2fp_queue_depth 1.0" in (await client.get("/metrics")).text
            gated.release.set()
    assert statuses == [200, 200]
    assert gated.calls == 2


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
