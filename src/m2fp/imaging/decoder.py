"""The one image decoder shared by the CLI, the Python API and the server.

Only JPEG and PNG are accepted; the magic bytes, the declared format and a complete decode must
all agree. The pixel count, and a JPEG's scans and data size, are checked before any pixel is
decoded; this bounds the decode's time in-process. The server also runs it in a killable,
resource-limited worker process (``decode_pool``).
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageOps, UnidentifiedImageError

from m2fp.defaults import DEFAULT_MAX_PIXELS
from m2fp.errors import ImageError
from m2fp.imaging.jpeg_structure import check_jpeg_structure

MAGIC_NUMBERS = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
# how the accepted formats are named in file names and media types (the server's uploads)
EXTENSION_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
# modes resized as they are when no whole-factor reduction is due (a CMYK JPEG is already at
# libjpeg's scale); every other mode is converted (and box-reduced) a strip at a time: a
# palette cannot be averaged, and Pillow would make full-size copies of the rest (RGBA is
# premultiplied into a new image before resizing, 16-bit converted whole)
DIRECT_MODES = {"L", "RGB", "CMYK", "YCbCr"}
# modes converted to 8-bit grey (values above 255 clip, as in RGB)
GREY_MODES = {"1", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
# rows converted at a time (a multiple of the reduce factor is taken): ~7 MB of RGB at 7071
STRIP_ROWS = 256
ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that makes the picture upright (EXIF 2.3, 4.6.4)
EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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

    The cost is bounded before any pixel is decoded: the header's pixel count, and for a JPEG
    its marker structure (``jpeg_structure``: scans capped, data too short for the declared
    size refused). Then at most one full-size buffer exists at a time: a JPEG decodes straight
    at the scale ``max_side`` needs (libjpeg's DCT scaling, 1/2 to 1/8), and the picture is
    shrunk before its mode is converted and its EXIF orientation applied.

    Args:
        data: the encoded file.
        max_pixels: refuse images whose header declares more pixels (decompression bombs).
        max_side: if set, a longer side is scaled down to it.

    Raises:
        ImageError: ``empty``, ``unsupported_format``, ``too_large``, ``too_many_scans`` or
            ``corrupt``.
    """
    if not data:
        raise ImageError("empty", "the image is empty")
    expected = sniff_format(data)
    if expected is None:
        raise _unsupported()
    if expected == "JPEG":
        check_jpeg_structure(data)
    try:
        image = Image.open(io.BytesIO(data), formats=[expected])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("too_large", "the image has too many pixels") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("corrupt", "the image could not be decoded") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError("corrupt", "the image could not be decoded") from exc
    try:
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
        image.load()
        # after load: a PNG's eXIf chunk may follow its pixel data
        orientation = image.getexif().get(ORIENTATION_TAG)
        picture = _upright_rgb(image, max_side=max_side, orientation=orientation)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("too_large", "the image has too many pixels") from exc
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError) as exc:
        # Pillow reports truncated and malformed data through these
        raise ImageError("corrupt", "the image could not be decoded") from exc
    finally:
        image.close()
    picture.info.clear()  # nothing of the upload (EXIF, ICC, text chunks) travels further
    return picture


def _upright_rgb(image: Image.Image, *, max_side: int | None, orientation: object) -> Image.Image:
    """``image`` (loaded) shrunk to ``max_side``, then RGB, then upright: each step makes a
    new image no larger than the one before, and none of them is a full-size converted copy
    when the picture is shrunk. Never ``image`` itself, which its file owns."""
    picture = image
    factor = _reduce_factor(image.size, max_side)
    if picture.mode not in DIRECT_MODES or factor > 1:
        picture = _reduced_in_strips(picture, factor)
    picture = _limit_side(picture, max_side)
    if picture.mode != "RGB":
        picture = picture.convert("RGB")
    method = EXIF_TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    if method is not None:
        picture = picture.transpose(method)
    return picture.copy() if picture is image else picture


def _reduce_factor(size: tuple[int, int], max_side: int | None) -> int:
    """The largest whole factor that keeps the longer side at least ``max_side`` (libjpeg's
    DCT scaling follows the same rule); 1 without a ``max_side``."""
    return max(1, max(size) // max_side) if max_side else 1


def _reduced_in_strips(image: Image.Image, factor: int) -> Image.Image:
    """``image`` as 8-bit grey (``GREY_MODES``) or RGB, box-reduced by ``factor``,
    ``STRIP_ROWS`` rows at a time: the only full-size buffer is the decoded ``image`` (resizing
    it whole holds a full-height intermediate, converting it whole a full-size copy). The
    final resize to ``max_side`` is ``_limit_side``'s.

    Args:
        image: a loaded image, HxW, in any mode Pillow decodes from JPEG or PNG.
        factor: the box size, 1 for a conversion only.

    Returns:
        A new L or RGB image of ``ceil(H / factor)`` x ``ceil(W / factor)``.
    """
    mode = "L" if image.mode in GREY_MODES | {"L"} else "RGB"
    width, height = image.size
    out = Image.new(mode, (math.ceil(width / factor), math.ceil(height / factor)))
    rows = factor * max(1, STRIP_ROWS // factor)
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(height, top + rows))).convert(mode)
        out.paste(strip.reduce(factor) if factor > 1 else strip, (0, top // factor))
    return out


def prepare_image(image: Image.Image) -> Image.Image:
    """An in-memory PIL image made upright, RGB and metadata-free (a new image: the caller's
    is left as it was)."""
    picture = ImageOps.exif_transpose(image).convert("RGB")
    if picture is image:
        picture = picture.copy()
    picture.info.clear()
    return picture


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
