"""``POST /api/v1/parse`` in process: the JSON answer, the PNG alternative and the limits
from settings."""

from __future__ import annotations

import base64
import io
import struct

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from m2fp.server.app import create_app
from m2fp.server.errors import REASONS
from m2fp.server.parse.response import ParseAnswer
from m2fp.server.routes.parse import PARSE_REFUSALS
from tests.server.conftest import app_client, tiny_settings
from tests.utils.images import jpeg_bytes, png_bytes
from tests.utils.same_parse import assert_informative

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


async def test_json_answer_has_every_map_and_no_metadata(visible_parser):
    """Every map the parser made, as it made it (the visible model paints Hair and
    UpperClothes, so the maps and masks compared are not empty), and no metadata."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "alice")
    upload = png_bytes(90, 70, seed=3, pnginfo=info)
    async with app_client(create_app(tiny_settings(), parser=visible_parser)) as client:
        response = await client.post(
            f"{PARSE}?classes=UpperClothes,Hair,UpperClothes", content=upload, headers=PNG_HEADERS
        )
    assert response.status_code == 200
    body = response.json()
    assert (body["width"], body["height"]) == (90, 70)
    assert set(body) == {
        "request_id", "width", "height", "classes_present", "persons", "unassigned_parts",
        "label_set", "classes", "label_map_png", "person_map_png", "visualization_png",
        "class_masks",
    }  # fmt: skip
    expected = visible_parser(upload)
    assert_informative(expected.label_map)
    label_map, _ = decode_png(body["label_map_png"])
    person_map, _ = decode_png(body["person_map_png"])
    assert label_map.mode == "P" and person_map.mode == "L"
    assert label_map.tobytes() == expected.label_map.tobytes()  # the same parser, bit-exact
    assert len(np.unique(expected.person_map())) > 2  # background and several persons
    assert person_map.tobytes() == expected.person_map().tobytes()
    assert list(body["class_masks"]) == ["UpperClothes", "Hair"]
    for name in ("UpperClothes", "Hair"):
        mask, _ = decode_png(body["class_masks"][name])
        assert mask.mode == "1" and mask.size == (90, 70)
        assert 0 < expected.class_mask(name).sum() < 90 * 70
        assert mask.tobytes() == Image.fromarray(expected.class_mask(name)).tobytes()
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


async def test_json_answers_match_their_schema(tiny_parser):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        full = await client.post(f"{PARSE}?classes=Face", content=png_bytes(), headers=PNG_HEADERS)
        lean = await client.post(
            f"{PARSE}?visualize=false", content=png_bytes(), headers=PNG_HEADERS
        )
    for response in (full, lean):
        assert response.status_code == 200
        ParseAnswer.model_validate(response.json())  # extra keys are refused by the model
    assert ParseAnswer.model_validate(full.json()).class_masks.keys() == {"Face"}
    assert ParseAnswer.model_validate(lean.json()).visualization_png is None


def parse_operation(app) -> tuple[dict, dict]:
    schema = app.openapi()
    return schema["paths"]["/api/v1/parse"]["post"], schema["components"]["schemas"]


def test_schema_describes_the_answer_the_png_and_every_error(tiny_parser):
    operation, schemas = parse_operation(create_app(tiny_settings(docs=True), parser=tiny_parser))
    responses = operation["responses"]
    ok = responses["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/ParseAnswer"}
    assert ok["image/png"]["schema"] == {"type": "string", "format": "binary"}
    statuses = {str(REASONS[reason][0]) for reason in PARSE_REFUSALS}
    assert set(responses) == {"200", "default", *statuses}
    for status in (*statuses, "default"):
        error = responses[status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorBody"}
    assert "banned" in responses["403"]["description"]
    assert set(schemas["ParseAnswer"]["required"]) == {
        "request_id", "width", "height", "classes_present", "persons", "unassigned_parts",
        "label_set", "classes", "label_map_png", "person_map_png",
    }  # fmt: skip


def test_schema_never_advertises_the_422_the_service_never_sends(tiny_parser):
    app = create_app(tiny_settings(docs=True), parser=tiny_parser)
    schema = app.openapi()
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_schema_describes_the_streamed_request_body(tiny_parser):
    operation, _ = parse_operation(create_app(tiny_settings(docs=True), parser=tiny_parser))
    content = operation["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "image/jpeg", "image/png"}
    assert content["multipart/form-data"]["schema"]["required"] == ["image"]
    assert {p["name"] for p in operation["parameters"]} == {
        "classes", "alpha", "visualize", "masks", "agnostic", "label_set", "person", "crop",
        "invert", "dilate", "feather", "keep", "grey", "encoding",
    }  # fmt: skip


async def test_accept_that_matches_no_answer_is_406_before_the_body_is_read(tiny_parser):
    pulled = []

    async def body():
        pulled.append(1)
        yield png_bytes()

    app = create_app(tiny_settings(), parser=tiny_parser)
    async with app_client(app) as client:
        response = await client.post(
            "/api/v1/parse",
            content=body(),
            headers={"content-type": "image/png", "accept": "image/gif"},
        )
    assert response.status_code == 406
    body_json = response.json()
    assert body_json["error"] == "not_acceptable"
    assert "gif" not in body_json["message"]
    assert pulled == []
