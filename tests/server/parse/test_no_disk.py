"""Proof that an upload never touches a disk: trace every file-creating system call of a real
server while it handles a 5 MB upload.

Listing TMPDIR is not enough: Python's ``tempfile.TemporaryFile`` (behind Starlette's
``request.form()`` spooling) opens an unnamed ``O_TMPFILE`` that never appears in a
directory. strace sees it. The control case runs a plain Starlette app using
``request.form()`` through the same tracer and must be caught.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.server.conftest import running_process, running_server
from tests.utils.ports import free_port

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt)")

# every call taking a file name (portable across architectures), plus anonymous memory files
TRACED_CALLS = "%file,memfd_create"
# a call that can create or write a file (read-only opens are fine: libraries, /proc, ...)
WRITE_FLAGS = re.compile(r"O_CREAT|O_TMPFILE|O_WRONLY|O_RDWR|O_TRUNC|O_APPEND")
ALWAYS_WRITES = re.compile(r"^(creat|memfd_create|mknod|mknodat|rename\w*|link\w*|symlink\w*)\(")
LINE = re.compile(r"^\d+\s+(?P<time>\d+\.\d+)\s+(?P<call>.*)$")
NOTES = ("+++", "---")
UPLOAD_BYTES = 5_000_000

CONTROL_APP = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def healthz(request):
    return JSONResponse({"status": "ok"})

async def upload(request):
    form = await request.form()
    size = len(await form["image"].read())
    await form.close()
    return JSONResponse({"size": size})

routes = [Route("/healthz", healthz), Route("/api/v1/parse", upload, methods=["POST"])]
uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=int(sys.argv[1]), log_level="error")
"""


@pytest.fixture(scope="module")
def five_megabyte_png() -> bytes:
    side = 1300  # noise does not compress: 1300x1300x3 is just over 5 MB
    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    assert len(data) > UPLOAD_BYTES
    return data


def strace(trace_path: Path) -> list[str]:
    return ["strace", "-f", "-ttt", "-e", f"trace={TRACED_CALLS}", "-o", str(trace_path)]


def traced_window(trace_path: Path, start: float, end: float) -> list[str]:
    """Traced calls between ``start`` and ``end`` (epoch seconds); strace's own notes (a
    process exiting ``+++``, a signal ``---``) are no calls."""
    calls = []
    for line in trace_path.read_text(errors="replace").splitlines():
        match = LINE.match(line)
        if match and start <= float(match["time"]) <= end and match["call"][:3] not in NOTES:
            calls.append(match["call"])
    return calls


def file_writes(calls: list[str]) -> list[str]:
    """The ``calls`` that create or write files."""
    return [
        call
        for call in calls
        if ALWAYS_WRITES.search(call) or (call.startswith("open") and WRITE_FLAGS.search(call))
    ]


def traced_upload(server, content: bytes) -> tuple[httpx.Response, float, float]:
    """POST ``content`` once to warm up, then again inside the observed window, returned as
    ``(response, start, end)``: the trace is read once the traced process has exited (strace
    has then written every line)."""
    files = {"image": ("photo.png", content, "image/png")}
    warm = httpx.post(server.url + "/api/v1/parse", files=files, timeout=120)
    assert warm.status_code == 200, warm.text
    start = time.time()
    response = httpx.post(server.url + "/api/v1/parse", files=files, timeout=120)
    end = time.time()
    return response, start, end


def test_five_megabyte_upload_makes_no_file_creating_syscall(
    tiny_model_dir, tmp_path, five_megabyte_png
):
    trace_path = tmp_path / "serve.strace"
    content = five_megabyte_png
    with running_server(
        tiny_model_dir, tmp_path / "serve.log", wrapper=strace(trace_path)
    ) as server:
        response, start, end = traced_upload(server, content)
    assert response.status_code == 200, response.text
    assert response.json()["width"] == 1300
    calls = traced_window(trace_path, start, end)
    assert calls, "the tracer saw no call while the upload was handled: it proves nothing"
    assert file_writes(calls) == []


def test_control_starlette_form_spooling_is_detected(tmp_path, five_megabyte_png):
    trace_path = tmp_path / "control.strace"
    port = free_port()
    command = [*strace(trace_path), sys.executable, "-c", CONTROL_APP, str(port)]
    with running_process(command, port, tmp_path / "control.log", env={}) as server:
        response, start, end = traced_upload(server, five_megabyte_png)
    assert response.json() == {"size": len(five_megabyte_png)}
    writes = file_writes(traced_window(trace_path, start, end))
    assert any("O_TMPFILE" in call or "O_CREAT" in call for call in writes), writes
