"""The service with whichever model it loads: the classes route, class masks by the model's
names and the flip setting, in process and through a real ``m2fp serve`` of the LIP model."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from m2fp import HumanParser, ParserOptions
from m2fp.server.app import create_app, load_parser
from m2fp.server.settings import SettingsError, load_settings
from tests.conftest import LIP_GOLDEN
from tests.server.conftest import GENEROUS_LIMITS, app_client, running_server, tiny_settings
from tests.utils.same_parse import assert_maps_agree, assert_same_persons

PARSE = "/api/v1/parse"
PNG = {"content-type": "image/png"}
IMAGE = (LIP_GOLDEN / "image.png").read_bytes()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "label_set", "task", "tenth"),
    [
        ("tiny_parser", "cihp", "multi-person", "Torso-skin"),
        ("lip_parser", "lip", "single-person", "Jumpsuits"),
    ],
)
async def test_classes_are_the_loaded_models(request, model, label_set, task, tenth):
    parser = request.getfixturevalue(model)
    async with app_client(create_app(tiny_settings(), parser=parser)) as client:
        body = (await client.get("/api/v1/classes")).json()
    assert (body["label_set"], body["task"]) == (label_set, task)
    assert [c["id"] for c in body["classes"]] == list(range(20))
    assert body["classes"][10]["name"] == tenth
    assert body["classes"][10]["color"] == [85, 51, 0]
    assert [c["name"] for c in body["classes"]] == list(parser.label_set.names)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "classes", "status"),
    [
        ("lip_parser", "Jumpsuits,Skirt", 200),
        ("lip_parser", "Torso-skin", 400),
        ("lip_parser", "Human", 400),
        ("tiny_parser", "Torso-skin", 200),
        ("tiny_parser", "Jumpsuits", 400),
        ("tiny_parser", "Human", 400),
    ],
)
async def test_class_masks_take_the_models_names(request, model, classes, status):
    parser = request.getfixturevalue(model)
    async with app_client(create_app(tiny_settings(), parser=parser)) as client:
        response = await client.post(f"{PARSE}?classes={classes}", content=IMAGE, headers=PNG)
    assert response.status_code == status, response.text
    body = response.json()
    if status == 400:
        assert body["error"] == "bad_request"
        assert body["message"] == "Invalid value for query parameter classes."
        assert classes not in response.text
        return
    assert list(body["class_masks"]) == classes.split(",")
    expected = parser(IMAGE)
    for name, png in body["class_masks"].items():
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))))
        np.testing.assert_array_equal(mask.astype(bool), expected.class_mask(name))


def test_flip_setting(monkeypatch, lip_model_dir):
    for name in ("M2FP_FLIP", "M2FP_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert load_settings().flip is False
    monkeypatch.setenv("M2FP_FLIP", "true")
    settings = load_settings(model=str(lip_model_dir))
    assert settings.flip is True
    assert load_parser(settings).options.flip is True
    monkeypatch.setenv("M2FP_FLIP", "perhaps")
    with pytest.raises(SettingsError, match="M2FP_FLIP"):
        load_settings()


@pytest.fixture(scope="module")
def lip_server(lip_model_dir, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("lip_server") / "server.log"
    env = {**GENEROUS_LIMITS, "M2FP_FLIP": "true"}
    with running_server(lip_model_dir, log_path, env=env) as server:
        yield server


def test_a_real_lip_server_answers_as_the_library_with_flip(lip_server, lip_model_dir):
    expected = HumanParser.from_pretrained(lip_model_dir, options=ParserOptions(flip=True))(IMAGE)
    response = httpx.post(
        f"{lip_server.url}{PARSE}?classes=Skirt,Jumpsuits",
        files={"image": ("person.png", IMAGE, "image/png")},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["persons"] == [] and body["person_map_png"]
    assert_same_persons(body["unassigned_parts"], expected.to_dict()["unassigned_parts"])
    assert body["classes_present"] == expected.classes_present()
    label_map = Image.open(io.BytesIO(base64.b64decode(body["label_map_png"])))
    assert_maps_agree(np.asarray(label_map), expected.label_map)  # another process
    jumpsuits = Image.open(io.BytesIO(base64.b64decode(body["class_masks"]["Jumpsuits"])))
    assert not np.asarray(jumpsuits).any()  # a class the photo lacks: an empty mask
    classes = httpx.get(f"{lip_server.url}/api/v1/classes").json()
    assert classes["label_set"] == "lip" and classes["classes"][10]["name"] == "Jumpsuits"
    refused = httpx.post(f"{lip_server.url}{PARSE}?classes=Torso-skin", content=IMAGE, headers=PNG)
    assert refused.status_code == 400 and refused.json()["error"] == "bad_request"
