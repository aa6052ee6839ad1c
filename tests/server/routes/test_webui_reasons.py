"""Every reason the parse route can refuse with (``PARSE_REFUSALS``) has its own sentence in
both languages of the WebUI (``static/i18n.js``, run in node): none falls back to "could not
process the photo (code)" or to English on the Chinese page. And the newest one,
``device_out_of_memory`` (503), shown in real Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import m2fp.server
from m2fp.server.errors import REASONS
from m2fp.server.routes.parse import PARSE_REFUSALS
from tests.server.routes.conftest import CHROMIUM
from tests.server.routes.test_webui import open_page
from tests.server.routes.test_webui_first_hour import a_file, error_text, png_photo

I18N = Path(m2fp.server.__file__).parent / "static" / "i18n.js"
NODE = shutil.which("node")


def translations(keys: list[str]) -> dict[str, dict[str, str]]:
    """language -> key -> the translator's text for it."""
    script = (
        f"import {{ translator }} from {json.dumps(I18N.as_uri())};\n"
        "const keys = JSON.parse(process.argv[1]);\n"
        "const out = {};\n"
        "for (const lang of ['en', 'zh-CN']) {\n"
        "  const tr = translator(lang);\n"
        "  out[lang] = Object.fromEntries(keys.map((k) => [k, tr.has(k) ? tr.t(k) : null]));\n"
        "}\n"
        "console.log(JSON.stringify(out));\n"
    )
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script, json.dumps(keys)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


@pytest.mark.skipif(NODE is None, reason="node is not installed (apt-get install nodejs)")
def test_every_parse_refusal_has_its_sentence_in_both_languages():
    keys = [f"error.{reason}" for reason in PARSE_REFUSALS]
    texts = translations(keys)
    for key in keys:
        english, chinese = texts["en"][key], texts["zh-CN"][key]
        assert english is not None, f"{key} has no English text"
        assert chinese is not None and chinese != english, f"{key} has no Chinese text"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_device_out_of_memory_is_explained_in_both_languages(browser, server_url):
    context, page, _ = open_page(browser, server_url)
    try:
        status = REASONS["device_out_of_memory"][0]
        page.route(
            "**/api/v1/parse?**",
            lambda route: route.fulfill(
                status=status,
                headers={"Retry-After": "30", "Cache-Control": "no-store"},
                content_type="application/json",
                body=json.dumps(
                    {"error": "device_out_of_memory", "message": "x", "request_id": "r-1"}
                ),
            ),
        )
        page.click("#accept")
        page.set_input_files("#file", a_file("photo.png", png_photo(), "image/png"))
        text = error_text(page)
        assert text.startswith("The server has no memory free for this photo right now.")
        assert "could not process" not in text
        page.click("button[data-lang='zh-CN']")
        assert page.inner_text("#error-text").startswith("服务器暂时没有足够的内存处理这张照片。")
    finally:
        context.close()
