"""The shared decoder: one test per refused kind, plus orientation and downscaling."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from m2fp.errors import ImageError
from m2fp.imaging.decoder import decode_image, encode_png


def encoded(fmt: str, size=(40, 30), mode="RGB", **save) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 10, 10) if mode == "RGB" else 0).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares a huge image: a decompression bomb's calling card."""
    import struct

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_accepts_jpeg_and_png(fmt):
    image = decode_image(encoded(fmt))
    assert image.mode == "RGB" and image.size == (40, 30)
    assert not image.info


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "empty"),
        (encoded("GIF"), "unsupported_format"),
        (encoded("WEBP"), "unsupported_format"),
        (encoded("BMP"), "unsupported_format"),
        (encoded("TIFF"), "unsupported_format"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "unsupported_format"),
        (b"%PDF-1.7\n", "unsupported_format"),
        (b"<html><script>alert(1)</script></html>", "unsupported_format"),
        (b"MZ\x90\x00" + b"\x00" * 60, "unsupported_format"),
        (b"\x7fELF" + b"\x00" * 60, "unsupported_format"),
        (encoded("PNG")[:-30], "corrupt"),
        (encoded("JPEG")[:200], "corrupt"),
        (b"\xff\xd8\xff" + b"garbage" * 10, "corrupt"),
        (png_header_only(20000, 20000), "too_large"),
    ],
)
def test_refused_kinds(data, kind):
    with pytest.raises(ImageError) as info:
        decode_image(data, max_pixels=50_000_000)
    assert info.value.kind == kind


def test_png_renamed_as_jpeg_is_judged_by_content():
    # content decides; the extension check is the server's job
    assert decode_image(encoded("PNG")).size == (40, 30)


def test_pixel_limit_is_checked_before_decoding():
    with pytest.raises(ImageError) as info:
        decode_image(encoded("PNG", size=(100, 100)), max_pixels=9_999)
    assert info.value.kind == "too_large"


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    upright = decode_image(buffer.getvalue())
    assert upright.size == (20, 40)
    assert not upright.info


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_long_side_is_limited(fmt):
    image = decode_image(encoded(fmt, size=(1000, 500)), max_side=300)
    assert image.size == (300, 150)


def test_modes_become_rgb():
    for mode in ("L", "RGBA", "P", "LA"):
        assert decode_image(encoded("PNG", mode=mode)).mode == "RGB"


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "I;16", "L", "RGB"])
def test_shrinking_in_strips_matches_a_whole_image_resize(mode):
    """Strip-wise conversion and box reduction (what keeps a huge palette or RGBA PNG under
    the memory goal) gives the picture a whole-image convert-and-resize gives, within a few
    grey levels; the picture spans several strips and an odd last one."""
    gradient = Image.linear_gradient("L").resize((1300, 1100))
    mirrored = gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    rgb = Image.merge("RGB", (gradient, mirrored, gradient))
    source = {
        "P": rgb.quantize(64),
        "RGBA": rgb.convert("RGBA"),
        "LA": gradient.convert("LA"),
        "I;16": gradient.convert("I").convert("I;16"),
        "L": gradient,
        "RGB": rgb,
    }[mode]
    data = io.BytesIO()
    source.save(data, format="PNG")
    decoded = decode_image(data.getvalue(), max_side=300)
    expected = source.convert("L" if mode == "I;16" else "RGB").convert("RGB")
    expected = expected.resize(decoded.size, Image.Resampling.BILINEAR)
    assert decoded.size == (300, 254)
    difference = np.abs(np.asarray(decoded, np.int16) - np.asarray(expected, np.int16))
    assert difference.mean() < 1.5 and np.percentile(difference, 99) <= 6


def test_encode_png_has_no_metadata():
    data = encode_png(Image.new("RGB", (4, 4)))
    assert b"tEXt" not in data and b"eXIf" not in data and b"iTXt" not in data
