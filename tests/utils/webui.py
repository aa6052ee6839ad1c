"""Driving the WebUI in real Chromium: what a page may request, and a watch on what it logs,
violates and requests while a test drives it."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

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


def decode_png(base64_png: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(base64_png))))
