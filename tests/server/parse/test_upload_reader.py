"""The streamed upload reader on its own: multipart framing split at every possible place."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from m2fp.server.errors import UploadRejected
from m2fp.server.parse.upload_reader import read_upload
from m2fp.server.parse.upload_validator import Upload
from tests.utils.images import jpeg_bytes, png_bytes

pytestmark = pytest.mark.anyio
BOUNDARY = "----m2fpBoundary7MA4YWxk"
TIMEOUT = 30.0


def multipart(*parts: tuple[str, str | None, bytes], preamble: bytes = b"") -> bytes:
    body = preamble
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += (
            f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        body += content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def request(body: bytes, content_type: str, *, chunk: int = 65536, length: bool = True) -> Request:
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(chunks) - 1}
        for i, part in enumerate(chunks)
    ]
    delivered = []

    async def receive():
        message = messages[len(delivered)]
        delivered.append(message)
        return message

    headers = [(b"content-type", content_type.encode())]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    found = Request(scope, receive)
    found.delivered = delivered  # type: ignore[attr-defined]
    return found


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
async def test_multipart_split_anywhere_gives_the_same_bytes(chunk):
    content = png_bytes(40, 30)
    upload = await read_upload(
        request(
            multipart(("image", "photo.png", content)),
            MULTIPART,
            chunk=chunk,
        ),
        max_bytes=1 << 20,
        timeout=TIMEOUT,
    )
    assert upload == Upload(data=content, format="PNG")


@pytest.mark.parametrize(
    "filename", ["C:\\Users\\alice\\Photo.JPG", "../../etc/x.jpeg", "holiday.2024.jpg"]
)
async def test_client_paths_and_case_in_filenames(filename):
    content = jpeg_bytes()
    upload = await read_upload(
        request(multipart(("image", filename, content)), MULTIPART),
        max_bytes=1 << 20,
        timeout=TIMEOUT,
    )
    assert upload.format == "JPEG"
    assert upload.data == content


async def test_oversize_stream_stops_reading_early():
    body = multipart(("image", "photo.png", png_bytes(200, 200)))
    incoming = request(body, MULTIPART, chunk=1024, length=False)
    with pytest.raises(UploadRejected) as caught:
        await read_upload(incoming, max_bytes=4096, timeout=TIMEOUT)
    assert caught.value.reason == "payload_too_large"
    assert len(incoming.delivered) == 5  # 5 KB received of the much larger body
    assert len(body) > 50_000


async def test_declared_oversize_is_refused_before_reading():
    incoming = request(png_bytes(200, 200), "image/png")
    with pytest.raises(UploadRejected) as caught:
        await read_upload(incoming, max_bytes=4096, timeout=TIMEOUT)
    assert caught.value.reason == "payload_too_large"
    assert incoming.delivered == []


async def test_second_part_is_refused_as_soon_as_it_starts():
    body = multipart(("image", "a.png", png_bytes()), ("image", "b.png", png_bytes(400, 400)))
    incoming = request(body, MULTIPART, chunk=4096)
    with pytest.raises(UploadRejected) as caught:
        await read_upload(incoming, max_bytes=1 << 22, timeout=TIMEOUT)
    assert caught.value.reason == "bad_request"
    assert len(incoming.delivered) < len(body) // 4096


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (multipart(("image", "a.png", png_bytes()))[:-20], MULTIPART, "bad_request"),
        (b"no boundary at all", MULTIPART, "bad_request"),
        (
            multipart(("image", "a.png", png_bytes()), preamble=b"preamble\r\n"),
            MULTIPART,
            "bad_request",
        ),
        (b"", MULTIPART, "bad_request"),
        (png_bytes(), "multipart/form-data; boundary=" + "x" * 71, "bad_request"),
        (multipart(("image", None, png_bytes())), MULTIPART, "bad_extension"),
        (multipart(("photo", "a.png", png_bytes())), MULTIPART, "bad_request"),
        (multipart(("image", "a.png", b"")), MULTIPART, "empty_body"),
        (b"", "image/jpeg", "empty_body"),
        (png_bytes(), "image/jpeg", "unsupported_media_type"),
        (png_bytes(), "image/webp", "unsupported_media_type"),
        (png_bytes(), "application/x-www-form-urlencoded", "unsupported_media_type"),
    ],
)
async def test_malformed_uploads(body, content_type, reason):
    with pytest.raises(UploadRejected) as caught:
        await read_upload(request(body, content_type), max_bytes=1 << 20, timeout=TIMEOUT)
    assert caught.value.reason == reason


def _part(headers: list[str], content: bytes) -> bytes:
    head = "".join(f"{line}\r\n" for line in headers)
    return f"--{BOUNDARY}\r\n{head}\r\n".encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize(
    ("headers", "content_type"),
    [
        # the boundary given twice: python-multipart takes the last, a proxy may take the first
        (
            ['Content-Disposition: form-data; name="image"; filename="a.png"'],
            MULTIPART + "; boundary=other",
        ),
        (
            ['Content-Disposition: form-data; name="image"; filename="a.png"'],
            MULTIPART + '; BOUNDARY="other"',
        ),
        (
            [
                'Content-Disposition: form-data; name="image"; filename="a.png"',
                'Content-Disposition: form-data; name="other"; filename="b.png"',
            ],
            MULTIPART,
        ),
        (
            ['Content-Disposition: form-data; name="other"; name="image"; filename="a.png"'],
            MULTIPART,
        ),
        (
            ['Content-Disposition: form-data; name="image"; filename="a.exe"; filename="a.png"'],
            MULTIPART,
        ),
        (
            [
                'Content-Disposition: form-data; name="image"; filename="a.png"; '
                "filename*=UTF-8''a.exe"
            ],
            MULTIPART,
        ),
        (
            [
                'Content-Disposition: form-data; name="image"; filename="a.png"',
                "Content-Type: image/png",
                "content-type: image/jpeg",
            ],
            MULTIPART,
        ),
    ],
)
async def test_duplicate_multipart_parameters_and_headers_are_refused(headers, content_type):
    body = _part(headers, png_bytes())
    with pytest.raises(UploadRejected) as caught:
        await read_upload(request(body, content_type), max_bytes=1 << 20, timeout=TIMEOUT)
    assert caught.value.reason == "bad_request"
    assert "twice" in str(caught.value.message)


async def test_quoted_semicolons_are_not_parameters():
    content = png_bytes()
    body = _part(
        ['Content-Disposition: form-data; name="image"; filename="a;filename=b.png"'], content
    )
    upload = await read_upload(request(body, MULTIPART), max_bytes=1 << 20, timeout=TIMEOUT)
    assert upload == Upload(data=content, format="PNG")
