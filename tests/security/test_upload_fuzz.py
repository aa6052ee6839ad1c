"""Mutation fuzz of the upload path with hypothesis, against a live ``m2fp serve``: valid
JPEG/PNG files with flipped bits, cut short or spliced, under mutated file names, content types
and multipart boundaries. Whatever arrives: never a 5xx, every refusal the error contract, and
nothing of the request (the marked file name) comes back."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m2fp.server.errors import REASONS
from tests.utils.images import jpeg_bytes, png_bytes

MARKER = "fuzzmarker7x"
PARSE = "/api/v1/parse"
SEEDS = {"png": png_bytes(48, 32), "jpeg": jpeg_bytes(48, 32)}
CONTENT_TYPES = ["image/png", "image/jpeg", "image/gif", "application/octet-stream", "text/html"]
SUFFIXES = [".png", ".jpg", ".jpeg", ".PNG", ".gif", ".png.exe", "", ".svg"]


@st.composite
def mutated_image(draw) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] ^= 1 << draw(st.integers(0, 7))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(max_size=64))
    return bytes(data)


@st.composite
def upload(draw) -> tuple[bytes, dict[str, str]]:
    """A request body and its headers: multipart (possibly broken framing) or raw."""
    image = draw(mutated_image())
    if draw(st.booleans()):
        return image, {"content-type": draw(st.sampled_from(CONTENT_TYPES))}
    boundary = draw(st.text("abcdefXYZ0123456789-_", min_size=1, max_size=80))
    declared = boundary if draw(st.integers(0, 4)) else draw(st.text("xyz-", max_size=10))
    name = draw(st.text(st.characters(codec="utf-8", exclude_characters='"\r\n'), max_size=20))
    filename = f"{MARKER}{name}{draw(st.sampled_from(SUFFIXES))}"
    field = draw(st.sampled_from(["image", "image", "file", ""]))
    part_type = draw(st.sampled_from(CONTENT_TYPES))
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"'
        f"\r\nContent-Type: {part_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode() if draw(st.integers(0, 5)) else b""
    return head + image + tail, {"content-type": f"multipart/form-data; boundary={declared}"}


def test_mutated_uploads_never_break_the_contract(docs_server):
    client = httpx.Client(base_url=docs_server.url, timeout=60)

    @settings(
        max_examples=150,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(upload(), st.sampled_from(["", "?classes=Face,Hair", "?visualize=false"]))
    def one(case: tuple[bytes, dict[str, str]], query: str) -> None:
        body, headers = case
        answer = client.post(PARSE + query, content=body, headers=headers)
        assert answer.status_code < 500, answer.text
        assert MARKER not in answer.text
        if answer.status_code != 200:
            error = answer.json()
            strike = {"strikes_left", "ban_seconds"}  # on uploads counted as a strike
            assert set(error) - strike == {"error", "message", "request_id"}
            assert set(error) & strike in (set(), strike)
            assert REASONS[error["error"]][0] == answer.status_code
            assert error["request_id"] == answer.headers["x-request-id"]

    with client:
        one()
