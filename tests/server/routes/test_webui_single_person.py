"""The WebUI with the single-person (LIP) model in real headless Chromium: the legend, the
palette and the class names follow the loaded model (Jumpsuits: 连体衣), and parts are listed
where the multi-person model lists persons."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from m2fp.labels import LIP_LABELS
from tests.conftest import LIP_GOLDEN, golden_state_dict, write_model_dir
from tests.server.conftest import running_server
from tests.server.routes.conftest import CHROMIUM
from tests.server.routes.test_webui import decode_png, open_page, wait_for_pixel
from tests.utils.visible_model import pinned_head

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)
IMAGE = LIP_GOLDEN / "image.png"


@pytest.fixture(scope="module")
def lip_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``m2fp serve`` of the golden LIP model, pinned to say Hair and Jumpsuits."""
    state = pinned_head(
        golden_state_dict(LIP_GOLDEN), {2: 8.0, 10: 8.0, 13: 8.0, 14: 8.0}, weighted=(10, 13)
    )
    directory = write_model_dir(
        tmp_path_factory.mktemp("lip_visible"), LIP_GOLDEN / "configuration.json", state
    )
    log_path = tmp_path_factory.mktemp("webui_lip_server") / "server.log"
    env = {"M2FP_RATE_LIMIT": "1000/minute", "M2FP_BAN_AFTER": "1000"}
    with running_server(directory, log_path, env=env) as server:
        yield server.url


def test_lip_legend_parts_and_chinese_class_names(browser, lip_server_url: str):
    context, page, watch = open_page(browser, lip_server_url, locale="zh-CN")
    try:
        page.click("#accept")
        with page.expect_response("**/api/v1/parse?**") as response_info:
            page.set_input_files("#file", str(IMAGE))
        data = response_info.value.json()
        page.wait_for_selector("#results:not([hidden])")
        assert data["classes_present"] == ["Hair", "Jumpsuits"] and data["persons"] == []

        # the legend in Chinese, Jumpsuits included; parts where persons would be
        legend = page.locator("#legend li")
        assert legend.all_inner_texts() == ["头发", "连体衣"]
        assert page.inner_text("#persons-title").startswith("部位")
        assert page.locator("#persons-hint").is_hidden()
        assert page.locator("#show-all").is_hidden()
        assert page.locator("#persons-empty").is_hidden()
        parts_text = page.inner_text("#unassigned")
        assert "头发" in parts_text and "连体衣" in parts_text
        assert page.inner_text("#status").startswith("完成，用时")
        assert "人数" not in page.inner_text("#status")

        # painted with the palette the server sent for the LIP classes
        photo = np.asarray(Image.open(IMAGE).convert("RGB")).astype(int)
        labels = decode_png(data["label_map_png"])
        ys, xs = np.nonzero(labels == 10)
        y, x = int(ys[0]), int(xs[0])
        colour = np.asarray(LIP_LABELS.palette[10])
        wait_for_pixel(page, x, y, photo[y, x] + (colour - photo[y, x]) * 0.6)

        page.click("button[data-lang='en']")
        assert legend.all_inner_texts() == ["Hair", "Jumpsuit"]
        assert page.inner_text("#persons-title").startswith("Parts")
        assert "Jumpsuit" in page.inner_text("#unassigned")
        assert watch.parse_calls() == 1
        watch.assert_clean(lip_server_url)
    finally:
        context.close()
