"""Structure fuzz of JPEG uploads with hypothesis, against a live ``m2fp serve``: a valid
progressive JPEG taken apart into its marker segments, then scans (SOS and their data), Huffman
tables (DHT) and frames (SOF) repeated, dropped, resized or given other declared sizes and
sampling factors. Whatever arrives: never a 5xx, every refusal the error contract, each request
answered within the time bound, and no decode worker past the memory bound (pen test 2, the
scanner and CI part of issue 21).
"""

from __future__ import annotations

import io
import re
import struct
import time
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from m2fp.server.errors import REASONS

PARSE = "/api/v1/parse"
# the goal is 2 CPU-seconds per upload; a decode is stopped after 10 s of wall time whatever
# its CPU (decode_pool.DECODE_WALL_SECONDS), and a tiny-model parse takes well under a second
MAX_SECONDS_PER_REQUEST = 15.0
# 300 MB per decode above the worker's idle ~30 MB
MAX_WORKER_PEAK_BYTES = 330 * 1024 * 1024
SOF_MARKERS = {0xC0, 0xC1, 0xC2}
NEXT_MARKER = re.compile(rb"\xff+[^\x00\xff\xd0-\xd7]")


def _seed() -> bytes:
    gradient = Image.linear_gradient("L").resize((96, 64))
    image = Image.merge(
        "RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_TOP_BOTTOM), gradient)
    )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", progressive=True, quality=80)
    return buffer.getvalue()


def segments(data: bytes) -> list[tuple[int, bytes]]:
    """``(marker, bytes)`` for each segment after SOI up to EOI; a scan's entropy-coded data
    travels with its SOS segment."""
    out, at = [], 2
    while at + 4 <= len(data):
        marker = data[at + 1]
        if marker == 0xD9:
            break
        (length,) = struct.unpack_from(">H", data, at + 2)
        end = at + 2 + length
        if marker == 0xDA:
            found = NEXT_MARKER.search(data, end)
            end = found.start() if found else len(data)
        out.append((marker, data[at:end]))
        at = end
    return out


SEED = segments(_seed())


@st.composite
def mutated_jpeg(draw) -> bytes:
    parts = list(SEED)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from([0xDA, 0xC4, 0xDB]))
        picks = [i for i, (marker, _) in enumerate(parts) if marker == kind]
        if not picks:
            continue
        index = draw(st.sampled_from(picks))
        action = draw(st.sampled_from(["repeat", "drop", "cut", "grow"]))
        marker, body = parts[index]
        if action == "repeat":  # up to well past the scan cap
            parts[index + 1 : index + 1] = [(marker, body)] * draw(st.integers(1, 120))
        elif action == "drop":
            del parts[index]
        elif action == "cut":
            parts[index] = (marker, body[: draw(st.integers(0, len(body)))])
        else:
            parts[index] = (marker, body + draw(st.binary(min_size=1, max_size=64)))
    sof = next((i for i, (marker, _) in enumerate(parts) if marker in SOF_MARKERS), None)
    if sof is not None and draw(st.booleans()):
        frame = bytearray(parts[sof][1])
        side = st.sampled_from([0, 1, 8, 96, 1000, 4096, 7000, 9000, 65535])
        struct.pack_into(">HH", frame, 5, draw(side), draw(side))
        if draw(st.booleans()) and len(frame) >= 12:
            frame[11] = draw(st.sampled_from([0x11, 0x22, 0x44, 0x41, 0x00, 0xFF]))
        parts[sof] = (parts[sof][0], bytes(frame))
    tail = b"\xff\xd9" if draw(st.integers(0, 4)) else b""
    return b"\xff\xd8" + b"".join(body for _, body in parts) + tail


def _decode_workers(pid: int) -> list[int]:
    """The server's decode worker processes (children of any of its threads)."""
    pids = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        pids += [int(child) for child in children.read_text(encoding="ascii").split()]
    workers = []
    for child in pids:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"decode_worker" in cmdline.read():
                    workers.append(child)
        except FileNotFoundError:
            continue
    return workers


def _peak_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def test_mutated_jpeg_structure_never_breaks_the_bounds(docs_server):
    client = httpx.Client(base_url=docs_server.url, timeout=60)
    slowest = [0.0]

    @settings(
        max_examples=60,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(mutated_jpeg())
    def one(data: bytes) -> None:
        started = time.monotonic()
        answer = client.post(PARSE, files={"image": ("fuzz.jpg", data, "image/jpeg")})
        took = time.monotonic() - started
        slowest[0] = max(slowest[0], took)
        assert answer.status_code < 500, answer.text
        assert took < MAX_SECONDS_PER_REQUEST, f"{took:.1f} s"
        if answer.status_code != 200:
            error = answer.json()
            assert REASONS[error["error"]][0] == answer.status_code

    with client:
        one()
    workers = _decode_workers(docs_server.process.pid)
    assert workers, "no decode worker found under the server"
    for worker in workers:
        assert _peak_bytes(worker) <= MAX_WORKER_PEAK_BYTES, worker
    print(f"slowest request {slowest[0]:.2f} s")
