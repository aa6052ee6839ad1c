"""The one image decoder shared by the CLI, the Python API and the server.

Only JPEG and PNG are accepted; the magic bytes, the declared format and a complete decode must
all agree. The pixel count is checked from the header before any pixel is decoded.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageOps, UnidentifiedImageError

from m2fp.defaults import DEFAULT_MAX_PIXELS
from m2fp.errors import ImageError

MAGIC_NUMBERS = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
# how the accepted formats are named in file names and media types (the server's uploads)
EXTENSION_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}


def sniff_format(data: bytes) -> str | None:
    """``"JPEG"``/``"PNG"`` from the leading bytes, or None."""
    for magic, name in MAGIC_NUMBERS.items():
        if data.startswith(magic):
            return name
    return None


def _unsupported() -> ImageError:
    return ImageError("unsupported_format", "only JPEG and PNG images are accepted")


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None
) -> Image.Image:
    """Decode JPEG/PNG bytes into an upright RGB image without metadata.

    Args:
        data: the encoded file.
        max_pixels: refuse images whose header declares more pixels (decompression bombs).
        max_side: if set, a longer side is scaled down to it (JPEG decodes at a reduced scale
            first, which costs a fraction of a full decode).

    Raises:
        ImageError: ``empty``, ``unsupported_format``, ``too_large`` or ``corrupt``.
    """
    if not data:
        raise ImageError("empty", "the image is empty")
    expected = sniff_format(data)
    if expected is None:
        raise _unsupported()
    try:
        image = Image.open(io.BytesIO(data), formats=[expected])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("too_large", "the image has too many pixels") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("corrupt", "the image could not be decoded") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError("corrupt", "the image could not be decoded") from exc
    if image.format != expected:
        raise _unsupported()
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError("corrupt", "the image could not be decoded")
    if width * height > max_pixels:
        raise ImageError("too_large", "the image has too many pixels")
    if max_side is not None and expected == "JPEG" and max(width, height) > max_side:
        scale = max_side / max(width, height)
        image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
        rgb = upright.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("too_large", "the image has too many pixels") from exc
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError) as exc:
        # Pillow reports truncated and malformed data through these
        raise ImageError("corrupt", "the image could not be decoded") from exc
    finally:
        image.close()
    return _limit_side(_strip(rgb), max_side)


def prepare_image(image: Image.Image) -> Image.Image:
    """An in-memory PIL image made upright, RGB and metadata-free."""
    return _strip(ImageOps.exif_transpose(image).convert("RGB"))


def _strip(image: Image.Image) -> Image.Image:
    """A copy without EXIF, ICC or text chunks: nothing of the upload travels further."""
    if image.info:
        image = image.copy()
        image.info.clear()
    return image


def _limit_side(image: Image.Image, max_side: int | None) -> Image.Image:
    if max_side is None or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def encode_png(image: Image.Image, *, compress_level: int = 6) -> bytes:
    """PNG bytes with no metadata chunks.

    Args:
        compress_level: zlib level; photo-like images hardly shrink past 1 but take several
            times longer at 6, flat label maps shrink well at 6 and are fast anyway.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=compress_level)
    return buffer.getvalue()
