"""Browser fixtures of the WebUI tests: Debian's chromium driven by Playwright (never
``playwright install``), and the real server of the visible model they drive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server_url(visible_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``m2fp serve`` of the visible model on a free loopback port, always stopped."""
    log_path = tmp_path_factory.mktemp("webui_server") / "server.log"
    # the UI tests upload a few photos in a row; the abuse limits have their own tests
    env = {"M2FP_RATE_LIMIT": "1000/minute", "M2FP_BAN_AFTER": "1000"}
    with running_server(visible_model_dir, log_path, env=env) as server:
        yield server.url
