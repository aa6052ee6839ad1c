"""Deliberately weakened copies of the service, for proving that ``m2fp scan`` catches each
weakness: the real app (tiny model) wrapped in one plain-ASGI fault and served by uvicorn on a
free loopback port in a thread of the test process."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.utils.ports import free_port

Weakness = Callable[[ASGIApp], ASGIApp]


def on_response_start(app: ASGIApp, change: Callable[[MutableHeaders], None]) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def patched(message: Message) -> None:
            if message["type"] == "http.response.start":
                change(MutableHeaders(scope=message))
            await send(message)

        await app(scope, receive, patched)

    return wrapped


def drop_nosniff(app: ASGIApp) -> ASGIApp:
    return on_response_start(app, lambda headers: headers.__delitem__("x-content-type-options"))


def open_cors(app: ASGIApp) -> ASGIApp:
    """``Access-Control-Allow-Origin: *`` on everything, preflights accepted."""
    opened = on_response_start(
        app, lambda headers: headers.update({"Access-Control-Allow-Origin": "*"})
    )

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"access-control-allow-origin", b"*")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await opened(scope, receive, send)

    return wrapped


def allow_cross_site(app: ASGIApp) -> ASGIApp:
    """Strips Origin and Sec-Fetch-Site before the app sees them (a lost CSRF check)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = dict(scope)
            scope["headers"] = [
                (k, v) for k, v in scope["headers"] if k not in (b"origin", b"sec-fetch-site")
            ]
        await app(scope, receive, send)

    return wrapped


def last_boundary_wins(app: ASGIApp) -> ASGIApp:
    """Keeps only the last ``boundary=`` of a multipart Content-Type before the app sees it,
    as a lenient parser would (so a proxy keeping the first sees another upload)."""

    def last_only(value: bytes) -> bytes:
        boundaries = re.findall(rb";\s*boundary=([^;]*)", value)
        if len(boundaries) < 2:
            return value
        return re.sub(rb";\s*boundary=[^;]*", b"", value) + b"; boundary=" + boundaries[-1]

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = dict(scope)
            scope["headers"] = [
                (k, last_only(v) if k == b"content-type" else v) for k, v in scope["headers"]
            ]
        await app(scope, receive, send)

    return wrapped


def echo_filename(app: ASGIApp) -> ASGIApp:
    """Error answers quote the uploaded file's name (as FastAPI's 422 quotes input)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        seen = bytearray()

        async def recording() -> Message:
            message = await receive()
            seen.extend(message.get("body", b""))
            return message

        status = 200

        async def quoting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    (k, v) for k, v in message["headers"] if k != b"content-length"
                ]
            elif message["type"] == "http.response.body" and status >= 400:
                name = re.search(rb'filename="([^"]*)"', bytes(seen))
                if name:
                    body = json.loads(message["body"])
                    body["message"] += f" ({name.group(1).decode()})"
                    message["body"] = json.dumps(body).encode()
            await send(message)

        await app(scope, recording, quoting)

    return wrapped


def leak_versions(app: ASGIApp) -> ASGIApp:
    return on_response_start(
        app, lambda headers: headers.update({"Server": "uvicorn/0.30 Python/3.11"})
    )


def redirect_slashes(app: ASGIApp) -> ASGIApp:
    """Starlette's default: a trailing slash redirects to a URL built from Host."""
    app.router.redirect_slashes = True  # type: ignore[attr-defined]
    return app


@contextmanager
def weakened_server(app: ASGIApp, weakness: Weakness) -> Iterator[str]:
    """Serve ``weakness(app)`` on 127.0.0.1 until the block ends; yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        weakness(app),
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="on",
        server_header=False,  # as m2fp serve runs it
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
