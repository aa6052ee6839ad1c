"""A newcomer's first hour with the WebUI, in real headless Chromium against a real server:
no lockout without warning, a page that fits a phone, focus that follows the result, one Tab
stop for the persons, masks that say when they are empty or invalid, swatches visible in both
themes, limits stated before they are hit, and zero axe-core violations in every state."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.server.conftest import running_server
from tests.server.routes.conftest import CHROMIUM
from tests.server.routes.test_webui import open_page
from tests.server.routes.test_webui_masks import drawn_answer, upload_and_wait

AXE = Path(__file__).parents[1] / "browser" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 320, "height": 640}
DESKTOP = {"width": 1280, "height": 900}
WAIT = 10.0

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)

HEIC_HEAD = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
WEBP_HEAD = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(64)


def a_file(name: str, content: bytes, mime: str = "image/jpeg") -> dict:
    return {"name": name, "mimeType": mime, "buffer": content}


def png_photo(width: int = 64, height: int = 48) -> bytes:
    pixels = np.random.default_rng(5).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def poll(page, script: str, expected, *, arg=None) -> None:
    """Wait (generously) until ``script`` evaluates to ``expected`` in the page."""
    deadline = time.monotonic() + WAIT
    while (value := page.evaluate(script, arg)) != expected:
        if time.monotonic() > deadline:
            pytest.fail(f"{script} is {value!r}, not {expected!r}")
        page.wait_for_timeout(50)


def axe_violations(page) -> list[str]:
    """axe-core's violations of any impact in the page as it is now. axe is injected through
    the DevTools protocol (``evaluate``), which the page's CSP does not apply to; the page itself
    never loads it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => `${v.impact} ${v.id}: ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)"
    )
    return results


@pytest.fixture(scope="module")
def strict_server_url(
    visible_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real server with the default strike rule (3 rejected uploads pause for an hour)."""
    log_path = tmp_path_factory.mktemp("webui_strict") / "server.log"
    env = {"M2FP_RATE_LIMIT": "1000/minute", "M2FP_BAN_AFTER": "3", "M2FP_BAN_SECONDS": "3600"}
    with running_server(visible_model_dir, log_path, env=env) as server:
        yield server.url


def error_text(page) -> str:
    page.wait_for_selector("#error:not([hidden])")
    return page.inner_text("#error-text")


# ---------------------------------------------------------------- item 1: no lockout


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("notes.jpg", b"just some text, renamed\n" * 4, "not a JPEG or PNG photo"),
        ("IMG_0001.jpg", HEIC_HEAD, "HEIC photo (the iPhone format)"),
        ("sticker.png", WEBP_HEAD, "WebP image"),
        ("anim.jpg", b"GIF89a" + bytes(64), "GIF image"),
    ],
)
def test_a_renamed_non_photo_is_named_and_never_sent(browser, server_url, name, content, says):
    context, page, watch = open_page(browser, server_url)
    try:
        page.click("#accept")
        page.set_input_files("#file", a_file(name, content))
        assert says in error_text(page)
        assert "nothing was sent" in error_text(page).lower()
        assert watch.parse_calls() == 0
    finally:
        context.close()


def test_a_photo_with_the_other_extension_is_caught_before_sending(browser, server_url):
    context, page, watch = open_page(browser, server_url)
    try:
        page.click("#accept")
        page.set_input_files("#file", a_file("photo.jpg", png_photo()))
        assert "a PNG image but its name does not say so" in error_text(page)
        assert watch.parse_calls() == 0
    finally:
        context.close()


def test_a_counted_rejection_warns_before_uploads_pause(browser, strict_server_url):
    # starts with a real PNG header, so the page sends it, and the server finds it corrupt
    corrupt = png_photo()[:60]
    context, page, watch = open_page(browser, strict_server_url)
    try:
        page.click("#accept")
        page.set_input_files("#file", a_file("broken.png", corrupt, "image/png"))
        poll(
            page,
            "document.getElementById('error-text').textContent.includes('2 more like this')",
            True,
        )
        assert "paused for 60 min" in page.inner_text("#error-text")
        assert watch.parse_calls() == 1
        page.click("button[data-lang='zh-CN']")
        assert "再有 2 次这样的上传" in page.inner_text("#error-text")
    finally:
        context.close()


# ---------------------------------------------------------------- item 9: limits stated


def test_the_rate_limit_is_stated_and_the_retry_time_counts_down(browser, server_url):
    context, page, _ = open_page(browser, server_url)
    try:
        # the module's server allows 1000 photos a minute
        poll(
            page,
            "document.getElementById('upload-hint').textContent",
            ("JPEG or PNG, up to 10 MB. One photo at a time. At most 1000 photos a minute."),
        )
        page.route(
            "**/api/v1/parse?**",
            lambda route: route.fulfill(
                status=429,
                headers={"Retry-After": "3", "Cache-Control": "no-store"},
                content_type="application/json",
                body=json.dumps({"error": "rate_limited", "message": "x", "request_id": None}),
            ),
        )
        page.click("#accept")
        page.set_input_files("#file", a_file("photo.png", png_photo(), "image/png"))
        assert "Try again in 3 s." in error_text(page)
        poll(page, "document.getElementById('error-text').textContent.includes('2 s')", True)
        poll(
            page,
            "document.getElementById('error-text').textContent.endsWith('try again now.')",
            True,
        )
        page.click("button[data-lang='zh-CN']")
        text = page.inner_text("#error-text")
        # no stray space between the sentences
        assert text == "短时间内上传的照片过多。现在可以重试了。"
    finally:
        context.close()


# ---------------------------------------------------------------- item 2: the phone


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("viewport", [SMALL_PHONE, PHONE])
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_phone_never_scrolls_sideways(
    browser, server_url, golden_image_path, viewport, language
):
    context = browser.new_context(viewport=viewport, locale=language)
    page = context.new_page()
    try:
        page.goto(server_url + "/", wait_until="networkidle")
        assert no_sideways_scroll(page)
        page.click("#accept")
        upload_and_wait(page, str(golden_image_path))
        assert no_sideways_scroll(page)
        # the longest mask names, the agnostic kind (more controls), the notice opened again
        for value in [
            o
            for o in page.eval_on_selector_all(
                "#mask-kind option", "options => options.map(o => o.value)"
            )
        ]:
            page.select_option("#mask-kind", value)
            assert no_sideways_scroll(page), value
        page.click("#show-notice")
        assert no_sideways_scroll(page)
    finally:
        context.close()


# ---------------------------------------------------------------- item 3: focus and fold


def test_the_result_is_focused_in_view_and_the_notice_is_one_line(
    browser, server_url, golden_image_path
):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        page.goto(server_url + "/", wait_until="networkidle")
        full = page.locator("#privacy").bounding_box()["height"]
        page.click("#accept")
        notice = page.locator("#privacy").bounding_box()["height"]
        assert notice < 80 < full  # one line, not the full text
        assert page.locator("#privacy-text").is_hidden()
        upload_and_wait(page, str(golden_image_path))
        poll(page, "document.activeElement.id", "results-title")
        # the result's heading and its photos are on screen, not only "Done in ..."
        top = page.evaluate("document.getElementById('results-title').getBoundingClientRect().top")
        assert 0 <= top < 100
        page.click("#show-notice")
        assert page.locator("#privacy-text").is_visible()
        assert page.get_attribute("#show-notice", "aria-expanded") == "true"
    finally:
        context.close()


# ---------------------------------------------------------------- item 7: one Tab stop


def many_persons_answer(count: int) -> dict:
    answer, _, person_map = drawn_answer()
    height, width = person_map.shape
    answer["persons"] = [
        {"score": 0.9, "bbox": [0, 0, width, height], "area": 1, "parts": []} for _ in range(count)
    ]
    return answer


def show_drawn_answer(page, answer: dict) -> None:
    """Accept the notice and upload a blank photo of the answer's size, the parse route
    answering with ``answer``: the page shows a result the test drew, not one the model made."""
    page.route(
        "**/api/v1/parse?**",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(answer)
        ),
    )
    page.click("#accept")
    upload_and_wait(
        page, a_file("drawn.png", png_photo(answer["width"], answer["height"]), "image/png")
    )


def test_the_persons_list_is_one_tab_stop_with_arrow_keys(browser, server_url):
    answer = many_persons_answer(21)
    context, page, _ = open_page(browser, server_url)
    try:
        show_drawn_answer(page, answer)
        stops = page.eval_on_selector_all(
            "#persons button.person", "bs => bs.filter(b => b.tabIndex === 0).length"
        )
        assert stops == 1
        assert "21 persons" in page.inner_text("#persons-keys")
        assert page.locator("#persons-keys").is_visible()
        page.focus("button.person[data-person='1']")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.dataset.person") == "3"
        page.keyboard.press("End")
        assert page.evaluate("document.activeElement.dataset.person") == "21"
        page.keyboard.press("Enter")
        assert page.get_attribute("button.person[data-person='21']", "aria-pressed") == "true"
        # one Tab leaves the list for the masks panel
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.closest('#persons') === null")
        assert focused
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.activeElement.dataset.person") == "21"
    finally:
        context.close()


# ---------------------------------------------------------------- item 5: masks feedback


def test_an_empty_mask_says_so_and_a_bad_dilation_is_refused(browser, server_url):
    answer, _, _ = drawn_answer()
    context, page, _ = open_page(browser, server_url)
    try:
        show_drawn_answer(page, answer)
        # the second, smaller person of the drawn photo wears no shoes: the mask is empty
        page.select_option("#mask-kind", "group:shoes")
        page.select_option("#mask-person", "1")
        assert page.inner_text("#mask-status") == (
            "Person 2 has no Shoes in this photo: nothing to download."
        )
        assert page.locator("#download-mask").is_disabled()
        page.select_option("#mask-person", "")
        page.select_option("#mask-kind", "group:hair")
        assert page.inner_text("#mask-status") == ""
        assert page.locator("#download-mask").is_enabled()
        for bad in ("500", "-5", "2.5"):
            page.fill("#mask-dilate", bad)
            assert page.inner_text("#mask-status") == (
                "Dilation must be a whole number of pixels from 0 to 128."
            ), bad
            assert page.get_attribute("#mask-dilate", "aria-invalid") == "true"
            assert page.locator("#download-mask").is_disabled()
        page.fill("#mask-dilate", "128")
        assert page.inner_text("#mask-status") == ""
        assert page.locator("#download-mask").is_enabled()
    finally:
        context.close()


# ---------------------------------------------------------------- item 8: swatches


def contrast(a: list[float], b: list[float]) -> float:
    def luminance(rgb: list[float]) -> float:
        c = [v / 255 for v in rgb[:3]]
        c = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


RGB_OF = """(selector) => {
  const parse = (text) => text.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const swatch = document.querySelector(selector);
  const card = swatch.closest('.card');
  return [parse(getComputedStyle(swatch).borderTopColor),
          parse(getComputedStyle(card).backgroundColor)];
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_swatch_edges_contrast_with_the_card_in_both_themes(
    browser, server_url, golden_image_path, scheme
):
    context = browser.new_context(color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(server_url + "/", wait_until="networkidle")
        page.click("#accept")
        upload_and_wait(page, str(golden_image_path))
        edge, card = page.evaluate(RGB_OF, "#legend .swatch")
        assert contrast(edge, card) >= 3.0
    finally:
        context.close()


# ---------------------------------------------------------------- item 4: axe-core


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed (see .ci/run)")
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_in_any_state(browser, server_url, golden_image_path, viewport, scheme):
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(server_url + "/", wait_until="networkidle")
        found = {"initial": axe_violations(page)}
        page.click("#accept")
        page.set_input_files("#file", a_file("notes.jpg", b"text " * 20))
        page.wait_for_selector("#error:not([hidden])")
        found["error"] = axe_violations(page)
        upload_and_wait(page, str(golden_image_path))
        found["result"] = axe_violations(page)
        page.select_option("#mask-kind", "agnostic:upper_body")
        page.fill("#mask-dilate", "500")
        found["masks"] = axe_violations(page)
        page.click("button[data-lang='zh-CN']")
        found["zh-CN"] = axe_violations(page)
        assert found == {state: [] for state in found}
    finally:
        context.close()
