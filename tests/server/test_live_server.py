"""Real HTTP against a real ``m2fp serve`` (uvicorn) on 127.0.0.1 with the tiny golden model."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import time

import httpx
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from tests.utils.bad_inputs import corrupt_files, decompression_bomb, renamed_files
from tests.utils.images import jpeg_bytes, png_bytes
from tests.utils.same_parse import assert_informative, assert_maps_agree, assert_same_persons

PARSE = "/api/v1/parse"
MIB = 1024 * 1024
DEFAULT_MAX_UPLOAD = 10 * MIB
STRIKE_FIELDS = {"strikes_left", "ban_seconds"}


def post_file(server, content: bytes, filename: str = "photo.png", **kwargs) -> httpx.Response:
    return httpx.post(
        server.url + PARSE, files={"image": (filename, content, "image/png")}, timeout=60, **kwargs
    )


def assert_error(response: httpx.Response, status: int, reason: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == reason
    # a rejected upload that counts as a strike also says how many are left and the pause
    assert set(body) - STRIKE_FIELDS == {"error", "message", "request_id"}
    assert set(body) & STRIKE_FIELDS in (set(), STRIKE_FIELDS)
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["cache-control"] == "no-store"
    return body


def test_parse_happy_path_matches_the_library(live_server, visible_parser, golden_image_path):
    image = golden_image_path.read_bytes()
    response = post_file(live_server, image, filename="golden.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    expected = visible_parser(image)
    assert_informative(expected.label_map)
    assert len(expected.persons) > 1
    assert (body["width"], body["height"]) == expected.size
    # another process: the same code, but it may run another thread count (float order)
    assert_same_persons(body["persons"], expected.to_dict()["persons"])
    assert body["classes_present"] == expected.classes_present()
    label_map = Image.open(io.BytesIO(base64.b64decode(body["label_map_png"])))
    assert label_map.mode == "P"
    assert_maps_agree(np.asarray(label_map), expected.label_map)
    person_map = Image.open(io.BytesIO(base64.b64decode(body["person_map_png"])))
    assert_maps_agree(np.asarray(person_map), expected.person_map())
    assert "visualization_png" in body
    assert body["request_id"] == response.headers["x-request-id"]


def test_raw_jpeg_body_and_png_answer(live_server):
    response = httpx.post(
        live_server.url + PARSE,
        content=jpeg_bytes(120, 80),
        headers={"content-type": "image/jpeg", "accept": "image/png"},
        timeout=60,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).width == 120


@pytest.mark.parametrize("kind", sorted(renamed_files()))
def test_other_formats_renamed_png_are_415(live_server, kind):
    body = assert_error(
        post_file(live_server, renamed_files()[kind]), 415, "unsupported_media_type"
    )
    assert "photo" not in body["message"]


@pytest.mark.parametrize("kind", sorted(corrupt_files()))
def test_truncated_or_corrupt_images_are_400(live_server, kind):
    filename = "photo.jpg" if "jpeg" in kind else "photo.png"
    assert_error(post_file(live_server, corrupt_files()[kind], filename), 400, "corrupt_image")


def test_decompression_bomb_is_413_from_the_header(live_server):
    assert_error(post_file(live_server, decompression_bomb()), 413, "too_many_pixels")


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("photo.gif", png_bytes()),
        ("photo.png.exe", png_bytes()),
        ("photo", png_bytes()),
        ("photo.jpg", png_bytes()),
        ("photo.png", jpeg_bytes()),
    ],
)
def test_extension_must_be_allowed_and_match(live_server, filename, content):
    assert_error(post_file(live_server, content, filename), 415, "bad_extension")


def test_empty_raw_body_and_empty_part_are_400(live_server):
    raw = httpx.post(live_server.url + PARSE, content=b"", headers={"content-type": "image/png"})
    assert_error(raw, 400, "empty_body")
    assert_error(post_file(live_server, b""), 400, "empty_body")


def test_two_parts_are_refused(live_server):
    files = [
        ("image", ("a.png", png_bytes(), "image/png")),
        ("image", ("b.png", png_bytes(), "image/png")),
    ]
    response = httpx.post(live_server.url + PARSE, files=files)
    assert_error(response, 400, "bad_request")


def test_missing_image_field_is_refused(live_server):
    response = httpx.post(
        live_server.url + PARSE, files={"file": ("a.png", png_bytes(), "image/png")}
    )
    assert_error(response, 400, "bad_request")


def test_form_field_without_file_is_refused(live_server):
    response = httpx.post(live_server.url + PARSE, data={"image": "not a file"}, files={})
    assert response.status_code in (400, 415)
    assert response.json()["error"] in ("bad_request", "unsupported_media_type", "bad_extension")


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "image/gif", "application/octet-stream", ""]
)
def test_wrong_content_type_is_415(live_server, content_type):
    response = httpx.post(
        live_server.url + PARSE, content=png_bytes(), headers={"content-type": content_type}
    )
    assert_error(response, 415, "unsupported_media_type")


def test_raw_content_type_must_match_the_bytes(live_server):
    response = httpx.post(
        live_server.url + PARSE, content=png_bytes(), headers={"content-type": "image/jpeg"}
    )
    assert_error(response, 415, "unsupported_media_type")


def test_multipart_without_boundary_is_400(live_server):
    response = httpx.post(
        live_server.url + PARSE, content=b"xx", headers={"content-type": "multipart/form-data"}
    )
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize(
    "query",
    ["alpha=notanumber", "alpha=7.25", "classes=Face,<script>x</script>", "visualize=maybe"],
)
def test_bad_query_parameter_is_400_without_echo(live_server, query):
    response = httpx.post(
        f"{live_server.url}{PARSE}?{query}",
        content=png_bytes(),
        headers={"content-type": "image/png"},
    )
    body = assert_error(response, 400, "bad_request")
    value = query.split("=", 1)[1]
    assert value not in response.text
    assert "script" not in response.text
    assert query.split("=")[0] in body["message"]


def _raw_exchange(port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a request head and some body, never finishing it; return what the server says."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            response += data
        return response


def test_declared_oversize_body_is_413_before_it_is_sent(live_server):
    head = (
        f"POST {PARSE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        f"Content-Length: {50 * MIB}\r\n\r\n"
    ).encode()
    # only 1 KB of the announced 50 MB is ever sent: the answer must not wait for the rest
    response = _raw_exchange(live_server.port, head, [png_bytes()[:1024]])
    assert response.startswith(b"HTTP/1.1 413")
    assert b'"payload_too_large"' in response


def test_no_server_header_version_or_paths_in_any_response(live_server, visible_model_dir):
    from m2fp import __version__

    responses = [
        httpx.get(live_server.url + "/healthz"),
        httpx.get(live_server.url + "/readyz"),
        httpx.get(live_server.url + "/api/v1/classes"),
        httpx.get(live_server.url + "/no/such/page"),
        httpx.get(live_server.url + "/docs"),
        httpx.get(live_server.url + "/openapi.json"),
        httpx.put(live_server.url + PARSE),
        post_file(live_server, renamed_files()["elf"]),
        post_file(live_server, decompression_bomb()),
        post_file(live_server, png_bytes(), "photo.gif"),
    ]
    forbidden = [
        str(visible_model_dir),
        "resnet",
        __version__,
        "uvicorn",
        "starlette",
        "fastapi",
        "python",
        "Traceback",
        "site-packages",
        "/tmp",
    ]
    for response in responses:
        assert "server" not in response.headers
        assert "date" in response.headers
        text = (str(response.headers) + response.text).lower()
        for word in forbidden:
            assert word.lower() not in text, (response.request.url, word)
    assert httpx.get(live_server.url + "/docs").status_code == 404
    assert httpx.get(live_server.url + "/openapi.json").status_code == 404


def test_readyz_and_healthz(live_server):
    assert httpx.get(live_server.url + "/healthz").json() == {"status": "ok"}
    compute = {"device": "cpu", "engine": "torch", "precision": "fp32", "accuracy": "exact"}
    ready = httpx.get(live_server.url + "/readyz").json()
    assert ready["status"] == "ready" and set(ready) == {"status", "compute"}
    threads = ready["compute"].pop("threads")
    assert isinstance(threads, int) and 1 <= threads <= len(os.sched_getaffinity(0))
    assert isinstance(ready["compute"].pop("threads_source"), str)
    assert ready["compute"] == compute


def test_logs_hold_no_image_bytes_filename_or_client_address(live_server):
    marker = "ZQX-unique-marker-7f3a9c"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", marker)
    content = png_bytes(80, 60, seed=5, pnginfo=info)
    filename = "holiday-of-alice-4821.png"
    assert marker.encode() in content
    ok = post_file(live_server, content, filename=filename)
    refused = post_file(live_server, b"GIF89a" + marker.encode(), filename="bob-9923.png")
    assert ok.status_code == 200 and refused.status_code == 415
    assert marker not in ok.text  # the answer's PNGs carry no text chunk of the upload
    time.sleep(0.2)
    log = live_server.log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    requests = {line["request_id"]: line for line in lines if line.get("event") == "request"}
    assert requests[ok.headers["x-request-id"]]["status"] == 200
    assert requests[refused.headers["x-request-id"]]["reason"] == "unsupported_media_type"
    events = [line for line in lines if line.get("event") == "security_event"]
    assert any(e["kind"] == "rejected_upload" for e in events)
    for needle in (
        marker,
        marker.encode().hex(),
        base64.b64encode(content[:48]).decode(),
        filename,
        "holiday",
        "bob-9923",
        '127.0.0.1"',
        "GIF89a",
    ):
        assert needle not in log, needle
    assert all(len(requests[k]["client"]) == 16 for k in requests)


def test_metrics_count_routes_and_reasons_without_clients(live_server):
    post_file(live_server, b"")
    text = httpx.get(live_server.url + "/metrics").text
    assert 'm2fp_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'm2fp_rejections_total{reason="empty_body"}' in text
    assert "m2fp_inference_seconds_bucket" in text
    assert "m2fp_queue_depth" in text
    assert "process_resident_memory_bytes" in text
    assert "127.0.0.1" not in text
    assert "client" not in text
    assert "/no/such/page" not in text


@pytest.mark.parametrize("path", ["/", "/healthz", "/readyz", "/metrics", "/api/v1/classes"])
def test_head_answers_like_get_without_a_body(live_server, path):
    got = httpx.get(live_server.url + path, timeout=10)
    head = httpx.head(live_server.url + path, timeout=10)
    assert (head.status_code, got.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    if path != "/metrics":  # the metrics text grows between the two requests
        assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["content-security-policy"] == got.headers["content-security-policy"]


def test_head_of_a_post_route_is_405(live_server):
    response = httpx.head(live_server.url + PARSE, timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
