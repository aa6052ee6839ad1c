"""The hostile uploads the scan sends, built in memory, and what each must be refused with.

Nothing here is a photo: a flat grey image (the one good upload, which clears the strikes the
others earn), files that are not what they claim or cost far more to decode than their size
(``hostile_images``), and multipart framing that names a parameter or a part header twice.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image

from m2fp.scan.hostile_images import scan_bomb, short_data_jpeg

MIB = 1024 * 1024
# declared by the oversize probe, which sends its headers only
OVERSIZE_BYTES = 64 * MIB


def good_png(width: int = 64, height: int = 48) -> bytes:
    """A small valid PNG (flat grey)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def decompression_bomb(side: int = 100_000) -> bytes:
    """A PNG whose header declares ``side`` x ``side`` pixels, in a few hundred bytes."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + _png_chunk(b"IEND", b"")
    )


def gif_script_polyglot() -> bytes:
    """A GIF header that is also a script (the classic GIF/JavaScript polyglot)."""
    return b"GIF89a/*\x01\x00\x01\x00\x00\xff\x00,*/=1;alert(document.domain)//<script>x</script>"


@dataclass(frozen=True)
class HostileUpload:
    """One probe: a file sent as multipart ``image`` and the refusal it must get.

    ``framing`` is how the multipart body is built: ``"plain"`` by the HTTP client, or one of
    ``FRAMINGS`` (``framed_body``), which give a parameter or a part header twice.
    """

    name: str
    filename_suffix: str
    content: bytes
    status: int
    reason: str
    framing: str = "plain"


BOUNDARY = "m2fpscanboundary"
FRAMINGS = {
    # the client's parser may take the first boundary, the service's the second
    "duplicate_boundary": f"multipart/form-data; boundary=decoy; boundary={BOUNDARY}",
    "duplicate_disposition": f"multipart/form-data; boundary={BOUNDARY}",
}


def framed_body(framing: str, content: bytes, filename: str) -> tuple[str, bytes]:
    """The ``Content-Type`` and multipart body of ``content`` framed as ``framing`` says (one
    of ``FRAMINGS``)."""
    disposition = f'Content-Disposition: form-data; name="image"; filename="{filename}"\r\n'
    if framing == "duplicate_disposition":
        disposition += 'Content-Disposition: form-data; name="other"; filename="other.png"\r\n'
    head = f"--{BOUNDARY}\r\n{disposition}Content-Type: image/png\r\n\r\n".encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return FRAMINGS[framing], head + content + tail


def hostile_uploads() -> list[HostileUpload]:
    """The corpus, in the order it is sent (``upload_oversize`` is separate: headers only)."""
    png = good_png()
    return [
        HostileUpload("upload_wrong_magic", ".jpg", png, 415, "bad_extension"),
        HostileUpload(
            "upload_polyglot", ".png", gif_script_polyglot(), 415, "unsupported_media_type"
        ),
        HostileUpload("upload_bomb", ".png", decompression_bomb(), 413, "too_many_pixels"),
        HostileUpload("upload_truncated", ".png", png[: len(png) // 2], 400, "corrupt_image"),
        # ~180 KB, 1,000 progressive scans over 7000x7000: refused before any decode
        HostileUpload("upload_scan_bomb", ".jpg", scan_bomb(), 400, "too_many_scans"),
        # 7000x7000 declared, a 16x16 image's data: refused, not filled with grey
        HostileUpload("upload_short_data", ".jpg", short_data_jpeg(), 400, "corrupt_image"),
        HostileUpload(
            "upload_duplicate_boundary", ".png", png, 400, "bad_request", "duplicate_boundary"
        ),
        HostileUpload(
            "upload_duplicate_disposition", ".png", png, 400, "bad_request", "duplicate_disposition"
        ),
    ]
