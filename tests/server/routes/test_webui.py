"""The WebUI in real headless Chromium (Debian's chromium driven by Playwright) against a real
``m2fp serve`` on 127.0.0.1, under the service's own CSP."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from m2fp.labels import CIHP_PALETTE
from tests.server.routes.conftest import CHROMIUM
from tests.utils.images import png_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DIM = 0.3  # brightness the page keeps outside a highlighted person
PIXEL_TOLERANCE = 2  # canvas rounding

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)

# Calls the page is allowed to make: nothing else, in particular no CDN.
ALLOWED_PATHS = {
    "/",
    "/static/app.css",
    "/static/app.js",
    "/static/api.js",
    "/static/i18n.js",
    "/static/overlay.js",
    "/static/mask_panel.js",
    "/static/masks.js",
    "/static/png.js",
    "/static/favicon.svg",
    "/api/v1/classes",
    "/api/v1/mask-rules",
    "/api/v1/limits",
    "/static/file_kind.js",
    "/static/file_names.js",
    "/api/v1/parse",
}


class PageWatch:
    """What the page logged, violated and requested while a test drove it."""

    def __init__(self, page) -> None:
        self.page = page
        self.console_errors: list[str] = []
        self.requests: list[str] = []
        page.on(
            "console",
            lambda message: message.type == "error" and self.console_errors.append(message.text),
        )
        page.on("pageerror", lambda error: self.console_errors.append(f"pageerror: {error}"))
        page.on("request", lambda request: self.requests.append(request.url))
        # injected through the DevTools protocol, which the page's CSP does not apply to
        page.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation', e =>"
            " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__csp")

    def parse_calls(self) -> int:
        return sum("/api/v1/parse" in url for url in self.requests)

    def assert_clean(self, server_url: str, *, allowed_errors: tuple[str, ...] = ()) -> None:
        errors = [e for e in self.console_errors if not any(a in e for a in allowed_errors)]
        assert errors == []
        assert self.csp_violations() == []
        for url in self.requests:
            if url.startswith(f"blob:{server_url}/"):
                continue  # the page's own object URLs (the photo, downloads)
            assert url.startswith(server_url + "/"), url
            assert httpx.URL(url).path in ALLOWED_PATHS, url


def open_page(browser, server_url: str, *, locale: str = "en-US"):
    context = browser.new_context(locale=locale, accept_downloads=True)
    page = context.new_page()
    watch = PageWatch(page)
    page.goto(server_url + "/", wait_until="networkidle")
    return context, page, watch


def canvas_pixel(page, x: int, y: int) -> np.ndarray:
    return np.asarray(
        page.evaluate(
            "([x, y]) => Array.from(document.getElementById('overlay').getContext('2d')"
            ".getImageData(x, y, 1, 1).data.slice(0, 3))",
            [x, y],
        )
    )


def wait_for_pixel(page, x: int, y: int, expected: np.ndarray) -> None:
    """Repaints are scheduled on the next animation frame: poll until the pixel matches."""
    deadline = time.monotonic() + 5
    while np.abs(canvas_pixel(page, x, y) - expected).max() > PIXEL_TOLERANCE:
        if time.monotonic() > deadline:
            pytest.fail(f"overlay pixel {(x, y)} is {canvas_pixel(page, x, y)}, not {expected}")
        page.wait_for_timeout(20)


def decode_png(base64_png: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(base64_png))))


def test_upload_is_impossible_until_the_notice_is_accepted(browser, server_url):
    context, page, watch = open_page(browser, server_url)
    try:
        assert page.locator("#privacy").is_visible()
        assert "memory" in page.inner_text("#privacy")
        assert "CC BY-NC 4.0" in page.inner_text("#privacy")
        assert page.locator("#choose").is_disabled()
        assert page.locator("#file").is_disabled()
        assert page.get_attribute("#dropzone", "aria-disabled") == "true"
        # a photo dropped anyway is refused without any request
        page.evaluate(
            """() => {
                const data = new DataTransfer();
                data.items.add(new File([new Uint8Array([137, 80, 78, 71])], "a.png",
                                        {type: "image/png"}));
                document.getElementById("dropzone").dispatchEvent(
                    new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
            }"""
        )
        assert page.inner_text("#error") == "Accept the privacy notice first."
        assert watch.parse_calls() == 0
        assert page.locator("#results").is_hidden()

        # acceptance lasts for the tab session (survives a reload) and can be withdrawn
        page.click("#accept")
        page.reload(wait_until="networkidle")
        assert page.locator("#choose").is_enabled()
        page.click("#withdraw")
        assert page.locator("#choose").is_disabled()
        assert page.evaluate("sessionStorage.getItem('m2fp.privacy-accepted')") is None
        assert page.evaluate("localStorage.length") == 0
        watch.assert_clean(server_url)
    finally:
        context.close()


def test_language_follows_the_browser_and_the_switch(browser, server_url):
    context, page, watch = open_page(browser, server_url, locale="zh-CN")
    try:
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert page.inner_text("h1") == "人体解析"
        assert "只在内存中处理" in page.inner_text("#privacy")
        page.click("button[data-lang='en']")
        assert page.get_attribute("html", "lang") == "en"
        assert page.inner_text("h1") == "Human parsing"
        assert page.get_attribute("button[data-lang='en']", "aria-pressed") == "true"
        watch.assert_clean(server_url)
    finally:
        context.close()


def test_parse_overlay_legend_persons_highlight_language_and_downloads(
    browser, server_url, golden_image_path
):
    context, page, watch = open_page(browser, server_url)
    try:
        # the notice can be accepted with the keyboard; focus moves on to the picker
        page.focus("#accept")
        page.keyboard.press("Enter")
        assert page.locator("#choose").is_enabled()
        assert page.evaluate("document.activeElement.id") == "choose"
        assert page.evaluate("sessionStorage.getItem('m2fp.privacy-accepted')") == "1"

        with page.expect_response("**/api/v1/parse?**") as response_info:
            page.set_input_files("#file", str(golden_image_path))
        response = response_info.value
        assert response.status == 200
        data = response.json()
        page.wait_for_selector("#results:not([hidden])")
        assert "visualization_png" not in data  # the page paints its own overlay

        # original and overlay side by side, at the parsed size
        photo = np.asarray(Image.open(golden_image_path).convert("RGB")).astype(int)
        height, width = photo.shape[:2]
        assert page.evaluate("document.getElementById('original').naturalWidth") == width
        assert page.evaluate("document.getElementById('original').src").startswith("blob:")
        size = (
            "[document.getElementById('overlay').width, document.getElementById('overlay').height]"
        )
        assert page.evaluate(size) == [width, height]
        original_box = page.locator("#original").bounding_box()
        overlay_box = page.locator("#overlay").bounding_box()
        assert original_box["x"] + original_box["width"] <= overlay_box["x"]
        assert abs(original_box["y"] - overlay_box["y"]) < 1

        labels = decode_png(data["label_map_png"])
        persons_map = decode_png(data["person_map_png"])
        assert labels.shape == persons_map.shape == (height, width)

        def painted(y: int, x: int, alpha: float) -> np.ndarray:
            if labels[y, x] == 0:
                return photo[y, x]
            return photo[y, x] + (np.asarray(CIHP_PALETTE[labels[y, x]]) - photo[y, x]) * alpha

        # overlay colours (60 % by default) where a class is present, the photo where none is
        ys, xs = np.nonzero(labels)
        assert len(ys) > 0
        y, x = int(ys[0]), int(xs[0])
        wait_for_pixel(page, x, y, painted(y, x, 0.6))
        ys0, xs0 = np.nonzero(labels == 0)
        y0, x0 = int(ys0[0]), int(xs0[0])
        wait_for_pixel(page, x0, y0, photo[y0, x0])

        # the opacity slider repaints without a new request, and works from the keyboard
        page.focus("#opacity")
        page.keyboard.press("Home")
        assert page.inner_text("#opacity-value") == "0%"
        wait_for_pixel(page, x, y, photo[y, x])
        page.keyboard.press("End")
        assert page.inner_text("#opacity-value") == "100%"
        wait_for_pixel(page, x, y, painted(y, x, 1.0))

        # legend: exactly the classes present, with swatches
        present = data["classes_present"]
        assert present, "the pinned model must produce visible classes"
        legend = page.locator("#legend li")
        assert legend.evaluate_all("items => items.map(item => item.dataset.class)") == present
        english = {"Hair": "Hair", "UpperClothes": "Upper clothes", "Face": "Face"}
        assert legend.all_inner_texts() == [english[name] for name in present]
        assert page.locator("#legend .swatch").count() == len(present)

        # persons list, then highlight one: everything outside it is dimmed
        persons = data["persons"]
        assert len(persons) > 0
        assert page.locator("#persons button.person").count() == len(persons)
        first = page.locator("#persons button.person").first
        assert "Person 1" in first.inner_text()
        assert f"{persons[0]['score']:.2f}" in first.inner_text()
        assert page.locator("#show-all").is_disabled()
        first.click()
        assert first.get_attribute("aria-pressed") == "true"
        assert page.locator("#show-all").is_enabled()
        assert "person 1 highlighted" in page.get_attribute("#overlay", "aria-label")
        ys1, xs1 = np.nonzero(persons_map != 1)
        yo, xo = int(ys1[len(ys1) // 2]), int(xs1[len(xs1) // 2])
        wait_for_pixel(page, xo, yo, photo[yo, xo] * DIM)
        x0, y0, x1, y1 = persons[0]["bbox"]
        inside = np.zeros_like(labels, dtype=bool)
        inside[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3] = True  # clear of the outline of its box
        ys2, xs2 = np.nonzero((persons_map == 1) & (labels != 0) & inside)
        yi, xi = int(ys2[0]), int(xs2[0])
        wait_for_pixel(page, xi, yi, painted(yi, xi, 1.0))
        page.click("#show-all")
        assert first.get_attribute("aria-pressed") == "false"
        wait_for_pixel(page, xo, yo, painted(yo, xo, 1.0))
        first.press("Enter")  # keyboard again
        assert first.get_attribute("aria-pressed") == "true"

        # Simplified Chinese: page texts, class names and person labels
        page.click("button[data-lang='zh-CN']")
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert page.inner_text("#results-title") == "结果"
        chinese = {"Hair": "头发", "UpperClothes": "上衣", "Face": "脸部"}
        assert legend.all_inner_texts() == [chinese[name] for name in present]
        assert "人物 1" in first.inner_text()
        assert first.get_attribute("aria-pressed") == "true"  # the highlight survives
        part_labels = {part["label"] for person in persons for part in person["parts"]}
        persons_text = page.inner_text("#persons")
        for label in part_labels:
            assert chinese[label] in persons_text

        # downloads: the overlay as shown and the JSON answer
        with page.expect_download() as download_info:
            page.click("#download-png")
        download = download_info.value
        # opacity 100 %, person 1 highlighted: both in the name (m2fp.outputs.file_names)
        assert download.suggested_filename == "image_vis_alpha100_person1.png"
        with Image.open(download.path()) as overlay_png:
            assert overlay_png.format == "PNG"
            assert overlay_png.size == (width, height)
            pixels = np.asarray(overlay_png.convert("RGB")).astype(int)
            assert np.abs(pixels[yo, xo] - photo[yo, xo] * DIM).max() <= PIXEL_TOLERANCE
            assert np.abs(pixels[yi, xi] - painted(yi, xi, 1.0)).max() <= PIXEL_TOLERANCE
        with page.expect_download() as download_info:
            page.click("#download-json")
        download = download_info.value
        assert download.suggested_filename == "image.json"
        saved = json.loads(Path(download.path()).read_text())
        assert saved == data

        assert watch.parse_calls() == 1  # slider, highlight and language needed no request
        watch.assert_clean(server_url)
    finally:
        context.close()


def test_errors_are_localised(browser, server_url):
    context, page, watch = open_page(browser, server_url)
    try:
        page.click("#accept")
        # refused in the page: a text file, whatever its name; nothing is sent
        page.set_input_files(
            "#file", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}
        )
        # the page reads the file's first bytes asynchronously: wait for the message
        expect(page.locator("#error-text")).to_have_text(
            "This file is not a JPEG or PNG photo, whatever its name says. Nothing was sent."
        )
        # a photo under a name the server refuses
        page.set_input_files("#file", {"name": "photo.gif", "mimeType": "", "buffer": png_bytes()})
        expect(page.locator("#error-text")).to_have_text(
            "Only JPEG and PNG photos are accepted (.jpg, .jpeg, .png)."
        )
        assert watch.parse_calls() == 0

        # refused by the server: a PNG signature with nothing readable after it
        with page.expect_response("**/api/v1/parse?**") as response_info:
            page.set_input_files(
                "#file",
                {"name": "notes.png", "mimeType": "image/png", "buffer": PNG_SIGNATURE + b"junk"},
            )
        response = response_info.value
        body = response.json()
        assert response.status == 400
        assert body["error"] == "corrupt_image"
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error-text").startswith(
            "The image is damaged or incomplete and could not be read."
        )
        assert body["request_id"] in page.inner_text("#error-ref")
        assert page.locator("#results").is_hidden()
        assert page.locator("#choose").is_enabled()  # ready for another try

        page.click("button[data-lang='zh-CN']")
        assert page.inner_text("#error-text").startswith("图像已损坏或不完整，无法读取。")
        assert page.inner_text("#error-ref").startswith("参考编号：")

        # the browser itself logs the 400 response as a failed resource load
        watch.assert_clean(server_url, allowed_errors=("status of 400",))
    finally:
        context.close()


def test_a_dropped_photo_is_parsed(browser, server_url, golden_image_path):
    context, page, watch = open_page(browser, server_url)
    try:
        page.click("#accept")
        with page.expect_response("**/api/v1/parse?**") as response_info:
            page.evaluate(
                """(base64) => {
                    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
                    const data = new DataTransfer();
                    data.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
                    const zone = document.getElementById("dropzone");
                    zone.dispatchEvent(new DragEvent("dragover",
                        {dataTransfer: data, bubbles: true, cancelable: true}));
                    zone.dispatchEvent(new DragEvent("drop",
                        {dataTransfer: data, bubbles: true, cancelable: true}));
                }""",
                base64.b64encode(golden_image_path.read_bytes()).decode(),
            )
        data = response_info.value.json()
        page.wait_for_selector("#results:not([hidden])")
        assert page.locator("#persons button.person").count() == len(data["persons"])
        assert page.inner_text("#persons-count") == f"({len(data['persons'])})"
        assert page.inner_text("#status").startswith("Done in ")
        assert page.locator("#error").is_hidden()
        watch.assert_clean(server_url)
    finally:
        context.close()


def test_a_parse_in_flight_can_be_cancelled(browser, server_url, golden_image_path):
    context, page, watch = open_page(browser, server_url)
    held = []
    try:
        page.route("**/api/v1/parse?**", lambda route: held.append(route))  # keep it pending
        page.click("#accept")
        page.set_input_files("#file", str(golden_image_path))
        page.wait_for_selector("#busy:not([hidden])")
        assert page.inner_text("#status") == "Analysing the photo…"
        assert page.locator("#choose").is_disabled()  # one photo at a time
        page.click("#cancel")
        page.wait_for_selector("#busy", state="hidden")
        assert page.inner_text("#status") == "Cancelled."
        assert page.locator("#choose").is_enabled()
        assert page.locator("#error").is_hidden()
        assert page.locator("#results").is_hidden()
        assert len(held) == 1
        watch.assert_clean(server_url)
    finally:
        page.unroute_all(behavior="ignoreErrors")
        context.close()
