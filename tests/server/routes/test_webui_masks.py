"""The WebUI's masks panel in real headless Chromium: every mask and label map the page makes
from an answer is what m2fp.outputs makes from the same answer, pixel for pixel; the page
shows it over the photo, downloads it as a PNG, and never uploads the photo again."""

from __future__ import annotations

import base64
import io
import itertools
import json

import numpy as np
import pytest
from PIL import Image

from m2fp.labels import CIHP_LABELS, LIP_LABELS
from m2fp.outputs.agnostic import agnostic_mask
from m2fp.outputs.file_names import label_map_name
from m2fp.outputs.grouped_masks import grouped_mask
from m2fp.outputs.label_sets import ATR_LABELS, OUTPUT_LABEL_SETS, remap_rule
from m2fp.outputs.mask_rules import AGNOSTIC_KINDS, GROUPS, AgnosticOptions, MaskOptions
from m2fp.outputs.person_scope import implicit_person
from m2fp.outputs.remap import remap_label_map
from tests.server.routes.conftest import CHROMIUM
from tests.server.routes.test_webui import PageWatch, decode_png, open_page
from tests.utils.label_maps import FIGURE, BoxedPerson, draw, draw_persons

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)


def persons_of(answer: dict) -> list[BoxedPerson]:
    return [BoxedPerson(tuple(p["bbox"]), p["area"]) for p in answer["persons"]]


def expected_mask(
    answer,
    labels,
    person_map,
    kind,
    name,
    *,
    person,
    dilation,
    crop=False,
    invert=False,
    keep=("face", "hair", "hands", "feet"),
    grey=False,
):
    persons = persons_of(answer)
    if kind == "agnostic":
        options = AgnosticOptions(person=person, keep=keep, dilate=dilation, crop=crop, grey=grey)
        return agnostic_mask(
            labels, CIHP_LABELS, name, options, person_map=person_map, persons=persons
        )
    options = MaskOptions(person=person, invert=invert, dilate=dilation or 0, crop=crop)
    return grouped_mask(
        labels, CIHP_LABELS, [name], options, person_map=person_map, persons=persons
    )


def downloaded(page, button: str) -> tuple[str, Image.Image]:
    with page.expect_download() as info:
        page.click(button)
    download = info.value
    with Image.open(download.path()) as image:
        image.load()
        return download.suggested_filename, image.copy()


def upload_and_wait(page, path_or_file) -> dict:
    with page.expect_response("**/api/v1/parse?**") as response_info:
        page.set_input_files("#file", path_or_file)
    page.wait_for_selector("#masks:not([hidden])")
    page.wait_for_function("document.getElementById('mask-kind').options.length > 0")
    return response_info.value.json()


def test_the_panel_downloads_what_the_api_rules_make(browser, server_url, golden_image_path):
    context, page, watch = open_page(browser, server_url)
    try:
        page.click("#accept")
        answer = upload_and_wait(page, str(golden_image_path))
        labels = decode_png(answer["label_map_png"])
        person_map = decode_png(answer["person_map_png"])
        assert answer["label_set"] == "cihp"

        # a group for everyone, shown over the photo and downloaded as a 1-bit PNG
        page.select_option("#mask-kind", "group:hair")
        name, image = downloaded(page, "#download-mask")
        assert name == "image_mask_hair.png" and image.mode == "1"
        hair = expected_mask(
            answer, labels, person_map, "group", "hair", person=None, dilation=None
        )
        assert hair.any() and (np.asarray(image) == hair).all()
        ys, xs = np.nonzero(hair)
        shown = page.evaluate(
            "([x, y]) => Array.from(document.getElementById('mask-view').getContext('2d')"
            ".getImageData(x, y, 1, 1).data.slice(0, 3))",
            [int(xs[0]), int(ys[0])],
        )
        photo = np.asarray(Image.open(golden_image_path).convert("RGB")).astype(float)
        tinted = photo[ys[0], xs[0]] + (np.array([255, 0, 170]) - photo[ys[0], xs[0]]) * 0.55
        assert np.abs(np.asarray(shown) - tinted).max() <= 2

        # the main person, cropped and dilated; then an agnostic mask, grey, keeping nothing
        page.select_option("#mask-kind", "group:head")
        page.select_option("#mask-person", "main")
        page.check("#mask-crop")
        page.fill("#mask-dilate", "3")
        name, image = downloaded(page, "#download-mask")
        assert name == "image_mask_head_main_crop_dilate3.png"
        upper = expected_mask(
            answer,
            labels,
            person_map,
            "group",
            "head",
            person="main",
            dilation=3,
            crop=True,
        )
        assert upper.any()  # an empty mask is not offered for download
        assert (np.asarray(image) == upper).all()
        main = [p["area"] for p in answer["persons"]].index(
            max(p["area"] for p in answer["persons"])
        )
        assert image.size == tuple(
            np.subtract(answer["persons"][main]["bbox"][2:], answer["persons"][main]["bbox"][:2])
        )

        page.select_option("#mask-kind", "agnostic:upper_body")
        page.select_option("#mask-person", "")
        page.fill("#mask-dilate", "")
        for part in ("face", "hair", "hands", "feet"):
            page.uncheck(f"#mask-keep input[value={part}]")
        page.check("#mask-grey")
        assert page.locator("#mask-invert").is_hidden()
        name, image = downloaded(page, "#download-mask")
        assert name == "image_agnostic_upper_body_keep-none_grey.png" and image.mode == "L"
        agnostic = expected_mask(
            answer,
            labels,
            person_map,
            "agnostic",
            "upper_body",
            person=None,
            dilation=None,
            keep=(),
            grey=True,
        )
        assert agnostic.max() == 127 and (np.asarray(image) == agnostic).all()

        # the label map in every label set the answer's can be written in
        options = page.locator("#label-set option").evaluate_all("o => o.map(x => x.value)")
        assert options == ["cihp", "lip", "atr", "viton"]
        boxes = [p.bbox for p in persons_of(answer)]
        for target in options:
            page.select_option("#label-set", target)
            name, image = downloaded(page, "#download-labels")
            own = target == answer["label_set"]  # the model's own set: the plain name
            assert name == label_map_name("image", label_set=None if own else target)
            assert image.mode == "P"
            expected = remap_label_map(
                labels, remap_rule(CIHP_LABELS, target), person_map=person_map, boxes=boxes
            )
            assert (np.asarray(image) == expected).all()
            palette = OUTPUT_LABEL_SETS[target].palette
            assert image.getpalette()[: 3 * len(palette)] == [c for rgb in palette for c in rgb]

        # both languages
        assert page.inner_text("#masks-title") == "Masks"
        page.click("button[data-lang='zh-CN']")
        assert page.inner_text("#masks-title") == "蒙版"
        texts = page.locator("#mask-kind option").all_inner_texts()
        assert "头发" in texts and "上身" in texts
        assert page.get_attribute("#mask-agnostic", "label") == "虚拟试衣（agnostic 蒙版）"
        assert page.locator("#mask-kind").input_value() == "agnostic:upper_body"  # kept

        assert watch.parse_calls() == 1  # every mask came from the one answer
        watch.assert_clean(server_url)
    finally:
        context.close()


# FIGURE beside a second, smaller person with gloves and socks on both sides of their centre
DRAWN_LABELS = "\n".join(
    row + extra
    for row, extra in zip(
        FIGURE.split(),
        # the glove at the end of row 1 and the socks at the start of row 2 belong to no
        # person: their side is measured from the image's centre line
        ["..hhh.", ".gFFgg", "kkUUk.", "..PP..", *["......"] * 10],
        strict=True,
    )
)
DRAWN_PERSONS = "\n".join(["1" * 14 + ".2222."] * 4 + ["1" * 14 + "......"] * 10)


def drawn_answer() -> tuple[dict, np.ndarray, np.ndarray]:
    labels = draw(DRAWN_LABELS)
    person_map = draw_persons(DRAWN_PERSONS)
    height, width = labels.shape

    def png(image: Image.Image) -> str:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode()

    label_image = Image.frombytes("P", (width, height), labels.tobytes())
    label_image.putpalette(CIHP_LABELS.palette_bytes())
    persons = []
    for value in (1, 2):
        ys, xs = np.nonzero(person_map == value)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        persons.append({"score": 0.9, "bbox": bbox, "area": len(ys), "parts": []})
    answer = {
        "request_id": "0" * 32,
        "width": width,
        "height": height,
        "classes_present": [],
        "persons": persons,
        "unassigned_parts": [],
        "label_set": "cihp",
        "classes": list(CIHP_LABELS.names),
        "label_map_png": png(label_image),
        "person_map_png": png(Image.fromarray(person_map)),
    }
    return answer, labels, person_map


def photo_of(width: int, height: int) -> dict:
    pixels = np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return {"name": "drawn.png", "mimeType": "image/png", "buffer": buffer.getvalue()}


def answer_with(page, answer: dict) -> None:
    """Accept the notice and upload a photo of the answer's size; the page gets ``answer``."""
    page.route(
        "**/api/v1/parse?**",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(answer)
        ),
    )
    page.click("#accept")
    upload_and_wait(page, photo_of(answer["width"], answer["height"]))


COMPUTE_ALL = """
async ([cases]) => {
  const masks = await import("/static/masks.js");
  const rules = await (await fetch("/api/v1/mask-rules")).json();
  const answer = window.__answer;
  const layers = window.__layers;
  const out = [];
  for (const c of cases) {
    const scope = masks.scopeOf(answer, layers.persons, c.person);
    let mask;
    if (c.kind === "agnostic") {
      mask = masks.agnosticMask(answer, layers, rules, c.name,
        {scope, dilation: c.dilation, keep: c.keep, grey: false});
    } else if (c.kind === "group") {
      mask = masks.groupedMask(answer, layers, rules, c.name,
        {scope, dilation: c.dilation ?? 0, invert: c.invert});
    } else {
      mask = masks.remapLabels(answer, layers, rules, c.name);
    }
    if (c.crop) mask = masks.crop(mask, answer.width, scope.box).mask;
    out.push(Array.from(mask));
  }
  return out;
}
"""


def test_the_page_computes_every_rule_like_python_on_a_drawn_answer(browser, server_url):
    answer, labels, person_map = drawn_answer()
    context, page, watch = open_page(browser, server_url)
    try:
        answer_with(page, answer)
        # the page decoded these from the answer's PNGs: hand them to the direct calls
        page.evaluate(
            "([answer, labels, persons]) => { window.__answer = answer;"
            " window.__layers = {labels: Uint8Array.from(labels),"
            " persons: Uint8Array.from(persons)}; }",
            [answer, labels.ravel().tolist(), person_map.ravel().tolist()],
        )
        cases = []
        for name, person, dilation, invert in itertools.product(
            GROUPS, [None, "main", 1], [None, 2], [False, True]
        ):
            crop = person is not None
            case = {"name": name, "person": person, "dilation": dilation, "crop": crop}
            cases.append({"kind": "group", "invert": invert, **case})
        keeps = [["face", "hair", "hands", "feet"], [], ["hands"], ["face", "feet"]]
        for name, person, dilation, keep in itertools.product(
            AGNOSTIC_KINDS, [None, "main", 1], [None, 0, 3], keeps
        ):
            case = {"name": name, "person": person, "dilation": dilation, "crop": person == 1}
            cases.append({"kind": "agnostic", "keep": keep, **case})
        for target in ("cihp", "lip", "atr", "viton"):
            cases.append({"kind": "remap", "name": target, "person": None, "crop": False})
        results = page.evaluate(COMPUTE_ALL, [cases])
        boxes = [tuple(p["bbox"]) for p in answer["persons"]]
        for case, got in zip(cases, results, strict=True):
            if case["kind"] == "remap":
                rule = remap_rule(CIHP_LABELS, case["name"])
                expected = remap_label_map(labels, rule, person_map=person_map, boxes=boxes)
            else:
                expected = expected_mask(
                    answer,
                    labels,
                    person_map,
                    case["kind"],
                    case["name"],
                    person=case["person"],
                    dilation=case["dilation"],
                    crop=case["crop"],
                    invert=case.get("invert", False),
                    keep=tuple(case.get("keep", ())),
                )
            assert got == expected.astype(np.uint8).ravel().tolist(), case
        # the drawn answer's gloves and socks really were sided
        atr = results[-2]
        assert len({atr[1 * 20 + 15], atr[1 * 20 + 18]}) == 2
        # outside every person, right of the image's centre: the person's left, as in Python
        assert person_map[1, 19] == person_map[2, 14] == 0
        left_arm, left_leg = (ATR_LABELS.names.index(n) for n in ("Left-arm", "Left-leg"))
        assert (atr[1 * 20 + 19], atr[2 * 20 + 14]) == (left_arm, left_leg)

        # and one round trip through the controls: a cropped agnostic mask of person 2
        page.select_option("#mask-kind", "agnostic:overall")
        page.select_option("#mask-person", "1")
        page.check("#mask-crop")
        page.fill("#mask-dilate", "1")
        name, image = downloaded(page, "#download-mask")
        assert name == "drawn_agnostic_overall_person2_crop_dilate1.png"
        expected = expected_mask(
            answer, labels, person_map, "agnostic", "overall", person=1, dilation=1, crop=True
        )
        assert (np.asarray(image) == expected).all()
        page.select_option("#mask-person", "main")
        assert page.inner_text("#mask-status") == ""
        watch.assert_clean(server_url)
    finally:
        page.unroute_all(behavior="ignoreErrors")
        context.close()


def test_a_person_that_is_not_there_disables_the_download(browser, server_url):
    answer, _, _ = drawn_answer()
    answer = {**answer, "persons": []}
    context, page, watch = open_page(browser, server_url)
    try:
        answer_with(page, answer)
        persons = page.locator("#mask-person option").evaluate_all("o => o.map(x => x.value)")
        assert persons == [""]  # everyone only: no main person without persons
        assert page.locator("#download-mask").is_enabled()
        assert page.locator("#mask-crop").is_disabled()
        watch.assert_clean(server_url)
    finally:
        page.unroute_all(behavior="ignoreErrors")
        context.close()


LIP_FIGURE = FIGURE.replace("U", "J").replace("n", ".")


def test_the_single_person_model_has_one_implicit_person(browser, server_url):
    """With a LIP model (no persons listed) "main" is the whole figure, as in Python."""
    labels = draw(LIP_FIGURE, LIP_LABELS)
    height, width = labels.shape
    label_image = Image.frombytes("P", (width, height), labels.tobytes())
    label_image.putpalette(LIP_LABELS.palette_bytes())
    buffer = io.BytesIO()
    label_image.save(buffer, format="PNG")
    answer = {
        **drawn_answer()[0],
        "width": width,
        "height": height,
        "persons": [],
        "label_set": "lip",
        "classes": list(LIP_LABELS.names),
        "label_map_png": base64.b64encode(buffer.getvalue()).decode(),
        "person_map_png": base64.b64encode(png_of_zeros(width, height)).decode(),
    }
    classes = {
        "label_set": "lip",
        "task": "single-person",
        "classes": [
            {"id": i, "name": name, "color": list(colour)}
            for i, (name, colour) in enumerate(
                zip(LIP_LABELS.names, LIP_LABELS.palette, strict=True)
            )
        ],
    }
    context = browser.new_context(locale="en-US", accept_downloads=True)
    page = context.new_page()
    watch = PageWatch(page)
    try:
        page.route(
            "**/api/v1/classes",
            lambda route: route.fulfill(
                status=200, content_type="application/json", body=json.dumps(classes)
            ),
        )
        page.goto(server_url + "/", wait_until="networkidle")
        answer_with(page, answer)
        persons = page.locator("#mask-person option").evaluate_all("o => o.map(x => x.value)")
        assert persons == ["", "main", "0"]
        kinds = page.locator("#mask-kind option").evaluate_all("o => o.map(x => x.value)")
        assert "group:skin" not in kinds  # LIP cannot make it
        assert page.locator("#label-set option").evaluate_all("o => o.map(x => x.value)") == [
            "lip",
            "viton",
        ]
        figure_persons, figure_map = implicit_person(labels)
        page.select_option("#mask-kind", "agnostic:upper_body")
        page.select_option("#mask-person", "main")
        page.check("#mask-crop")
        page.fill("#mask-dilate", "2")
        _, image = downloaded(page, "#download-mask")
        options = AgnosticOptions(person="main", dilate=2, crop=True)
        expected = agnostic_mask(
            labels, LIP_LABELS, "upper_body", options, person_map=figure_map, persons=figure_persons
        )
        x0, y0, x1, y1 = figure_persons[0].bbox
        assert image.size == (x1 - x0, y1 - y0) == (10, 14) and expected.any()
        assert (np.asarray(image) == expected).all()
        watch.assert_clean(server_url)
    finally:
        page.unroute_all(behavior="ignoreErrors")
        context.close()


def png_of_zeros(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()
