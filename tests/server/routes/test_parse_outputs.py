"""``POST /api/v1/parse`` with downstream outputs (masks, agnostic, label_set, person, encoding)
in process, over a drawn result whose pixels are known, and every kind of refused value."""

from __future__ import annotations

import base64
import io

import numpy as np
import pycocotools.mask as coco
import pytest
from PIL import Image

from m2fp.outputs.label_sets import ATR_LABELS
from m2fp.server.app import create_app
from m2fp.server.parse.response import ParseAnswer
from tests.server.conftest import app_client, tiny_settings
from tests.utils.drawn_parser import DrawnParser
from tests.utils.images import png_bytes
from tests.utils.label_maps import FIGURE, chars, result_from

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
PARSE = "/api/v1/parse"
PNG_HEADERS = {"content-type": "image/png"}
# two persons: the FIGURE on the left (person 0, the larger), a small one on the right
TWO_LABELS = "\n".join(row + ("..hh" if y < 2 else "....") for y, row in enumerate(FIGURE.split()))
TWO_PERSONS = "\n".join(["1" * 14 + ".222"] * 2 + ["1" * 14 + "...."] * 12)


@pytest.fixture
def figure():
    return result_from(TWO_LABELS, TWO_PERSONS)


def png_of(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


async def post(result, query: str, parser=None):
    parser = parser or DrawnParser(result)
    async with app_client(create_app(tiny_settings(docs=True), parser=parser)) as client:
        return await client.post(f"{PARSE}?{query}", content=png_bytes(), headers=PNG_HEADERS)


async def test_grouped_masks_for_the_main_person_cropped(figure):
    response = await post(figure, "masks=hair,head%2BScarf&person=main&crop=true")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    ParseAnswer.model_validate(body)
    assert list(body["masks"]) == ["hair", "head+Scarf"]
    assert body["mask_scope"] == {"person": 0, "box": [0, 0, 14, 14]}
    hair = png_of(body["masks"]["hair"])
    assert hair.mode == "1" and hair.size == (14, 14)
    assert (np.asarray(hair) == chars(FIGURE, "h")).all()  # not the other person's hair
    assert (np.asarray(png_of(body["masks"]["head+Scarf"])) == chars(FIGURE, "hF")).all()


async def test_agnostic_masks_binary_and_grey(figure):
    query = "agnostic=upper_body,overall&dilate=0&keep=face,hair,feet&person=0"
    body = (await post(figure, query)).json()
    assert list(body["agnostic_masks"]) == ["upper_body", "overall"]
    expected = figure.agnostic_mask("upper_body", person=0, dilate=0, keep_hands=False)
    upper = np.asarray(png_of(body["agnostic_masks"]["upper_body"]))
    assert upper.shape == (14, 18) and (upper == expected).all()
    assert upper[9, 2] and upper[8, 11]  # the glove and the left hand are masked
    grey = (await post(figure, "agnostic=upper_body&grey=true")).json()
    picture = png_of(grey["agnostic_masks"]["upper_body"])
    assert picture.mode == "L"
    expected = figure.agnostic_mask("upper_body", grey=True)
    assert (np.asarray(picture) == expected).all() and expected.max() == 127


async def test_rle_encoding_agrees_with_pycocotools(figure):
    body = (await post(figure, "masks=upper_clothes&agnostic=lower_body&encoding=rle")).json()
    ParseAnswer.model_validate(body)
    for rle, mask in (
        (body["masks"]["upper_clothes"], figure.mask("upper_clothes")),
        (body["agnostic_masks"]["lower_body"], figure.agnostic_mask("lower_body")),
    ):
        assert rle["size"] == [14, 18]
        decoded = coco.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert (decoded.astype(bool) == mask).all()


async def test_class_masks_follow_the_encoding(figure):
    body = (await post(figure, "classes=Hair&encoding=rle")).json()
    rle = body["class_masks"]["Hair"]
    # everyone's hair: 6 pixels of the figure's, 4 of the small person's
    assert int(coco.area({"size": rle["size"], "counts": rle["counts"].encode()})) == 10


async def test_feathered_masks_are_8_bit(figure):
    body = (await post(figure, "masks=upper_clothes&feather=2")).json()
    soft = png_of(body["masks"]["upper_clothes"])
    assert soft.mode == "L" and 0 < np.asarray(soft).max() <= 255


async def test_label_set_atr(figure):
    body = (await post(figure, "label_set=atr&visualize=false")).json()
    assert body["label_set"] == "atr" and body["classes"] == list(ATR_LABELS.names)
    labels = png_of(body["label_map_png"])
    assert labels.mode == "P"
    assert (np.asarray(labels) == figure.label_map_as("atr")).all()
    assert "masks" not in body and "mask_scope" not in body
    native = (await post(figure, "visualize=false")).json()
    assert native["label_set"] == "cihp" and native["classes"][10] == "Torso-skin"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("masks=tail", "masks"),
        ("masks=hair%2B", "masks"),
        ("masks=Human", "masks"),
        ("agnostic=shirt", "agnostic"),
        ("label_set=pascal", "label_set"),
        ("person=first", "person"),
        ("person=-1", "person"),
        ("encoding=jpeg", "encoding"),
        ("keep=toes", "keep"),
        ("dilate=999", "dilate"),
        ("dilate=-1", "dilate"),
        ("feather=x", "feather"),
        ("crop=true&masks=hair", "crop"),
        ("masks=hair&feather=2&encoding=rle", "encoding"),
        ("agnostic=upper_body&grey=true&encoding=rle", "encoding"),
    ],
)
async def test_unknown_values_are_400_naming_only_the_parameter(figure, query, parameter):
    parser = DrawnParser(figure)
    response = await post(figure, query, parser)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request"
    assert body["message"] == f"Invalid value for query parameter {parameter}."
    assert parser.calls == 0


async def test_what_the_models_label_set_cannot_make_is_refused_before_parsing(figure):
    lip = DrawnParser(result_from("hJF", lip=True))
    cihp = DrawnParser(figure)
    for parser, query in ((cihp, "masks=Jumpsuits"), (lip, "masks=skin"), (lip, "masks=hair")):
        response = await post(None, query, parser)
        ok = query == "masks=hair"
        assert response.status_code == (200 if ok else 400), query
    refused = await post(None, "label_set=atr", lip)
    assert refused.status_code == 400 and "label_set" in refused.json()["message"]
    assert (await post(None, "label_set=viton", lip)).json()["label_set"] == "viton"
    assert cihp.calls == 0 and lip.calls == 2


async def test_a_person_not_in_the_photo_is_no_person(figure):
    response = await post(figure, "masks=hair&person=2")
    assert response.status_code == 400
    assert response.json()["error"] == "no_person"
    nobody = result_from("hh\nFF")
    response = await post(nobody, "agnostic=upper_body&person=main")
    assert response.json()["error"] == "no_person"


def test_the_schema_describes_the_parameters(figure):
    schema = create_app(tiny_settings(docs=True), parser=DrawnParser(figure)).openapi()
    operation = schema["paths"][PARSE]["post"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert "upper_clothes" in parameters["masks"]["description"]
    assert "upper_body" in parameters["agnostic"]["description"]
    label_sets = parameters["label_set"]["schema"]["enum"]  # a query cannot send null
    assert set(label_sets) == {"cihp", "lip", "atr", "viton"}
    assert parameters["encoding"]["schema"]["enum"] == ["png", "rle"]
    assert "no_person" in operation["responses"]["400"]["description"]
    answer = schema["components"]["schemas"]["ParseAnswer"]["properties"]
    assert {"masks", "agnostic_masks", "mask_scope", "label_set", "classes"} <= set(answer)
