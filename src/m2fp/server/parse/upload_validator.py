"""What makes an upload acceptable: the rules every upload goes through, on bytes in memory.

Two phases. ``check_upload`` runs on the event loop as soon as the body is in (magic bytes
that must say JPEG or PNG, and the same as the declared content type or file extension);
``decode_upload`` runs in a worker thread (the pixel count from the header and a JPEG's marker
structure, then the decode by the one safe decoder, ``m2fp.imaging.decoder``, in a killable
worker process of ``m2fp.imaging.decode_pool`` bounded in CPU, memory and time). The
accepted formats, extensions and media types are ``m2fp.imaging.decoder``'s. Each refusal is
an ``UploadRejected`` with a reason from the error contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from PIL import Image

from m2fp.errors import ImageError
from m2fp.imaging.decode_pool import DecodePool
from m2fp.imaging.decoder import EXTENSION_FORMATS, MAGIC_NUMBERS, MEDIA_TYPES, sniff_format
from m2fp.server.errors import UploadRejected

# media type of a raw body -> the format its bytes must have
MEDIA_TYPE_FORMATS = {media_type.encode(): name for name, media_type in MEDIA_TYPES.items()}
# bytes that decide the format: the longest magic number
SNIFF_BYTES = max(len(magic) for magic in MAGIC_NUMBERS)
IMAGE_ERROR_REASONS = {
    "empty": "empty_body",
    "unsupported_format": "unsupported_media_type",
    "too_large": "too_many_pixels",
    "corrupt": "corrupt_image",
    "too_many_scans": "too_many_scans",
    "too_costly": "image_too_costly",
}


@dataclass(frozen=True)
class Upload:
    """An accepted upload, before decoding.

    Attributes:
        data: the encoded image file.
        format: ``JPEG`` or ``PNG``, from its magic bytes.
    """

    data: bytes
    format: str


def format_for_media_type(media_type: bytes) -> str | None:
    """The format a raw body of ``media_type`` must have, None if it is not an accepted one."""
    return MEDIA_TYPE_FORMATS.get(media_type)


def format_for_filename(filename: bytes | None) -> str:
    """The format a multipart file named ``filename`` must have.

    The name may carry a client path (``C:\\Users\\...``); only its lower-case suffix counts.

    Raises:
        UploadRejected: ``bad_extension``: no name, or not ``.jpg``, ``.jpeg`` or ``.png``.
    """
    extension = ""
    if filename:
        name = filename.decode("latin-1").replace("\\", "/")
        extension = PurePosixPath(name).suffix.lower()
    if extension not in EXTENSION_FORMATS:
        raise UploadRejected("bad_extension")
    return EXTENSION_FORMATS[extension]


def check_magic(data: bytes | bytearray, *, expected: str, reason: str) -> str:
    """The format the magic bytes say, if it is JPEG or PNG and the declared one.

    Works on the whole upload or on its first ``SNIFF_BYTES`` (which already decide), so that
    a body can be refused as soon as its start is in.

    Args:
        data: the upload, or its beginning.
        expected: the format declared by the content type or the file extension.
        reason: the refusal when the bytes are an accepted format but not the declared one.

    Raises:
        UploadRejected: ``empty_body``, ``unsupported_media_type`` or ``reason``.
    """
    if not data:
        raise UploadRejected("empty_body")
    actual = sniff_format(bytes(data[:SNIFF_BYTES]))
    if actual is None:
        raise UploadRejected("unsupported_media_type")
    if actual != expected:
        raise UploadRejected(reason)
    return actual


def check_upload(data: bytes, *, expected: str, reason: str) -> Upload:
    """The whole upload accepted by ``check_magic``, before decoding.

    Raises:
        UploadRejected: as ``check_magic``.
    """
    return Upload(data=data, format=check_magic(data, expected=expected, reason=reason))


def decode_upload(
    upload: Upload,
    *,
    decoder: DecodePool,
    max_pixels: int,
    max_side: int,
    deadline_seconds: float | None = None,
) -> Image.Image:
    """Decode an accepted upload in a worker process (blocking: call from a worker thread).

    Args:
        decoder: the worker processes.
        deadline_seconds: the decode is stopped after this (the request's time left).

    Returns:
        The upright RGB image, metadata dropped, its longer side at most ``max_side``.

    Raises:
        UploadRejected: ``too_many_pixels`` (from the header, before decoding),
            ``too_many_scans`` (a progressive JPEG's scans, before decoding),
            ``corrupt_image`` (truncated or malformed), ``unsupported_media_type``,
            ``image_too_costly`` (the decode passed its CPU, memory or time limit).
    """
    try:
        decoded = decoder.decode(
            upload.data,
            max_pixels=max_pixels,
            max_side=max_side,
            deadline_seconds=deadline_seconds,
        )
        return decoded.image
    except ImageError as exc:
        raise UploadRejected(IMAGE_ERROR_REASONS.get(exc.kind, "corrupt_image")) from None
