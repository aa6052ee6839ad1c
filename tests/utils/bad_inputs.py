"""Files the service must refuse, built in memory (nothing here is a real photo)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from m2fp.scan import corpus as scan_corpus
from tests.utils.images import jpeg_bytes, png_bytes


def _pillow(format_name: str, **options) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format_name, **options)
    return buffer.getvalue()


def decompression_bomb() -> bytes:
    """A PNG whose header declares 100000x100000 pixels, in a few hundred bytes (the one the
    scanner sends too)."""
    return scan_corpus.decompression_bomb()


def renamed_files() -> dict[str, bytes]:
    """Non-JPEG/PNG content that a client might send as ``photo.png``."""
    return {
        "gif": _pillow("GIF"),
        "webp": _pillow("WEBP"),
        "bmp": _pillow("BMP"),
        "tiff": _pillow("TIFF"),
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
        "html": b"<!doctype html><html><body><script>alert(1)</script></body></html>",
        "elf": Path(sys.executable).resolve().read_bytes()[:4096],
    }


def corrupt_files() -> dict[str, bytes]:
    """JPEG/PNG magic bytes followed by something that does not decode."""
    jpeg = jpeg_bytes()
    png = png_bytes()
    return {
        "truncated_png": png[: len(png) // 2],
        "truncated_jpeg": jpeg[: len(jpeg) // 2],
        "garbage_jpeg": jpeg[:3] + bytes(range(256)) * 4,
    }
