"""Reads an upload's bytes off the request, entirely in memory.

Starlette's ``request.form()`` (like python-multipart's high-level parser) spools parts over
1 MB to a temporary file, on Linux an unnamed ``O_TMPFILE``. Here the body is streamed into a
capped ``bytearray`` and the single multipart part is cut out with python-multipart's
low-level, callback-based ``MultipartParser``, so no byte of an image can reach a disk.

This module owns the framing (size cap, content type, one part named ``image``); what the
bytes must be is ``upload_validator``'s. Each refusal is an ``UploadRejected`` with a reason
from the error contract.
"""

from __future__ import annotations

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from m2fp.server.errors import UploadRejected
from m2fp.server.parse.upload_validator import (
    Upload,
    check_upload,
    format_for_filename,
    format_for_media_type,
)

FIELD_NAME = b"image"
MAX_BOUNDARY = 70  # RFC 2046
MAX_PART_HEADERS = 8
MAX_PART_HEADER_BYTES = 1024


class _SinglePart:
    """Collects the one ``image`` part of a multipart body; refuses anything else early."""

    def __init__(self, boundary: bytes) -> None:
        self.data = bytearray()
        self.filename: bytes | None = None
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
                "on_part_data": lambda d, s, e: self.data.extend(d[s:e]),
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
        self._headers[bytes(self._field).strip().lower()] = bytes(self._value).strip()
        self._field.clear()
        self._value.clear()

    def _on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition"))
        if disposition != b"form-data" or options.get(b"name") != FIELD_NAME:
            raise UploadRejected("bad_request", message="Send exactly one file field 'image'.")
        self.filename = options.get(b"filename")

    def _on_end(self) -> None:
        self.complete = True

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except MultipartParseError:
            raise UploadRejected(
                "bad_request", message="The multipart body is malformed."
            ) from None


async def read_upload(request: Request, *, max_bytes: int) -> Upload:
    """Stream the request body into memory and return the one image it carries.

    The body is refused (413 ``payload_too_large``) as soon as ``Content-Length`` or the bytes
    received so far exceed ``max_bytes``; the rest is never read.

    Raises:
        UploadRejected: with the contract's reason for the first problem found.
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise UploadRejected("payload_too_large")
    raw_format = format_for_media_type(content_type)
    if raw_format is not None:
        multipart = None
        raw = bytearray()
    elif content_type == b"multipart/form-data":
        boundary = options.get(b"boundary", b"")
        if not 0 < len(boundary) <= MAX_BOUNDARY:
            raise UploadRejected("bad_request", message="The multipart boundary is missing.")
        multipart = _SinglePart(boundary)
    else:
        raise UploadRejected(
            "unsupported_media_type",
            message="Send multipart/form-data with a field 'image', or an image/jpeg or "
            "image/png body.",
        )
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise UploadRejected("payload_too_large")
        if multipart is None:
            raw.extend(chunk)
        else:
            multipart.write(chunk)

    if multipart is None:
        assert raw_format is not None
        data = bytes(raw)
        del raw
        return check_upload(data, expected=raw_format, reason="unsupported_media_type")
    if multipart.parts == 0 or not multipart.complete:
        raise UploadRejected("bad_request", message="Send exactly one file field 'image'.")
    expected = format_for_filename(multipart.filename)
    data = bytes(multipart.data)
    del multipart
    return check_upload(data, expected=expected, reason="bad_extension")
