"""Reads an upload's bytes off the request, entirely in memory, within a deadline.

Starlette's ``request.form()`` (like python-multipart's high-level parser) spools parts over
1 MB to a temporary file, on Linux an unnamed ``O_TMPFILE``. Here the body is streamed into a
capped ``bytearray`` and the single multipart part is cut out with python-multipart's
low-level, callback-based ``MultipartParser``, so no byte of an image can reach a disk.

This module owns the framing (size cap, content type, one part named ``image``) and the
arrival (the whole body within ``timeout`` seconds: 408 ``upload_timeout``, the connection
closed; a client that goes away mid-upload is ``client_abort``, recorded with status 499 and
never a 5xx); what the bytes must be is ``upload_validator``'s. A refusal is decided as soon as
the bytes that decide it are in (a bad file name at its part's headers, wrong magic bytes at
the first ``SNIFF_BYTES``), so a bad upload is refused without reading the rest, and an
aborted one that was already bad is counted as the bad upload it is. Each refusal is an
``ApiError`` (``UploadRejected`` for the upload's own faults) with a reason from the error
contract.
"""

from __future__ import annotations

from email.message import Message

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from m2fp.server.errors import ApiError, UploadRejected
from m2fp.server.parse.upload_validator import (
    SNIFF_BYTES,
    Upload,
    check_magic,
    check_upload,
    format_for_filename,
    format_for_media_type,
)

FIELD_NAME = b"image"
MAX_BOUNDARY = 70  # RFC 2046
MAX_PART_HEADERS = 8
MAX_PART_HEADER_BYTES = 1024
# Beyond these an upload deadline is a typo: a second cannot carry a photo over a slow
# link, and past 10 minutes a connection is held for nothing.
MIN_UPLOAD_TIMEOUT = 1.0
MAX_UPLOAD_TIMEOUT = 600.0


def check_upload_timeout(seconds: float) -> float:
    """``seconds`` if it can be the deadline for receiving a whole upload, else ValueError."""
    if not MIN_UPLOAD_TIMEOUT <= seconds <= MAX_UPLOAD_TIMEOUT:
        raise ValueError(
            f"must be between {MIN_UPLOAD_TIMEOUT:.0f} and {MAX_UPLOAD_TIMEOUT:.0f} seconds"
        )
    return seconds


def _options(header: bytes | str | None) -> tuple[bytes, dict[bytes, bytes]]:
    """``parse_options_header``, refusing a parameter given twice (400 ``bad_request``).

    python-multipart keeps the last of two ``boundary=`` (or ``name=``, ``filename=``)
    parameters; a WAF or proxy in front may keep the first, and then each sees another
    upload. Names are compared as the parsers compare them: case-folded, an RFC 2231
    ``filename*=`` the same name as ``filename=``.
    """
    text = header.decode("latin-1") if isinstance(header, bytes) else header or ""
    holder = Message()
    holder["h"] = text
    names = [name for name, _ in holder.get_params(header="h", unquote=False)[1:] if name]
    if len(names) != len(set(names)):
        raise UploadRejected("bad_request", message="A header parameter is given twice.")
    return parse_options_header(text)


class _RawBody:
    """A raw ``image/jpeg`` or ``image/png`` body, its magic bytes checked once they are in."""

    def __init__(self, expected: str) -> None:
        self.data = bytearray()
        self.expected = expected

    def write(self, chunk: bytes) -> None:
        sniffed = len(self.data) >= SNIFF_BYTES
        self.data.extend(chunk)
        if not sniffed and len(self.data) >= SNIFF_BYTES:
            check_magic(self.data, expected=self.expected, reason="unsupported_media_type")

    def finish(self) -> Upload:
        data = bytes(self.data)
        self.data = bytearray()
        return check_upload(data, expected=self.expected, reason="unsupported_media_type")


class _SinglePart:
    """Collects the one ``image`` part of a multipart body; refuses anything else early."""

    def __init__(self, boundary: bytes) -> None:
        self.data = bytearray()
        self.expected: str | None = None
        self.parts = 0
        self.complete = False
        self._headers: dict[bytes, bytes] = {}
        self._field = bytearray()
        self._value = bytearray()
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
                "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_end": self._on_end,
            },
            max_header_count=MAX_PART_HEADERS,
            max_header_size=MAX_PART_HEADER_BYTES,
        )

    def _on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > 1:
            raise UploadRejected("bad_request", message="Send exactly one file field 'image'.")
        self._headers.clear()

    def _on_header_end(self) -> None:
        field = bytes(self._field).strip().lower()
        if field in self._headers:
            # two Content-Disposition (or Content-Type) headers: which one counts is up to
            # each parser on the way, so none is taken
            raise UploadRejected("bad_request", message="A part header is given twice.")
        self._headers[field] = bytes(self._value).strip()
        self._field.clear()
        self._value.clear()

    def _on_headers_finished(self) -> None:
        disposition, options = _options(self._headers.get(b"content-disposition"))
        if disposition != b"form-data" or options.get(b"name") != FIELD_NAME:
            raise UploadRejected("bad_request", message="Send exactly one file field 'image'.")
        self.expected = format_for_filename(options.get(b"filename"))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        sniffed = len(self.data) >= SNIFF_BYTES
        self.data.extend(data[start:end])
        if not sniffed and len(self.data) >= SNIFF_BYTES:
            assert self.expected is not None, "part data follows its headers"  # nosec B101 # narrows the type; the parser's order
            check_magic(self.data, expected=self.expected, reason="bad_extension")

    def _on_end(self) -> None:
        self.complete = True

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except MultipartParseError:
            raise UploadRejected(
                "bad_request", message="The multipart body is malformed."
            ) from None

    def finish(self) -> Upload:
        if self.parts == 0 or not self.complete or self.expected is None:
            raise UploadRejected("bad_request", message="Send exactly one file field 'image'.")
        data = bytes(self.data)
        self.data = bytearray()
        return check_upload(data, expected=self.expected, reason="bad_extension")


async def read_upload(request: Request, *, max_bytes: int, timeout: float) -> Upload:
    """Stream the request body into memory and return the one image it carries.

    The body is refused (413 ``payload_too_large``) as soon as ``Content-Length`` or the bytes
    received so far exceed ``max_bytes``; the rest is never read.

    Args:
        request: the parse request, its body not read yet.
        max_bytes: the most body bytes accepted.
        timeout: seconds for the whole body to arrive (``check_upload_timeout``).

    Raises:
        UploadRejected: with the contract's reason for the first problem found.
        ApiError: ``upload_timeout`` (408, with ``Connection: close``), ``client_abort``.
    """
    content_type, options = _options(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise UploadRejected("payload_too_large")
    raw_format = format_for_media_type(content_type)
    body: _RawBody | _SinglePart
    if raw_format is not None:
        body = _RawBody(raw_format)
    elif content_type == b"multipart/form-data":
        boundary = options.get(b"boundary", b"")
        if not 0 < len(boundary) <= MAX_BOUNDARY:
            raise UploadRejected("bad_request", message="The multipart boundary is missing.")
        body = _SinglePart(boundary)
    else:
        raise UploadRejected(
            "unsupported_media_type",
            message="Send multipart/form-data with a field 'image', or an image/jpeg or "
            "image/png body.",
        )
    received = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes:
                    raise UploadRejected("payload_too_large")
                body.write(chunk)
    except TimeoutError:
        # the rest of a slow body is not worth waiting for: close rather than drain it
        raise ApiError("upload_timeout", headers={"Connection": "close"}) from None
    except ClientDisconnect:
        raise ApiError("client_abort") from None
    return body.finish()
