"""How a mask leaves the process: a PNG without metadata (1-bit for a binary mask, 8-bit
greyscale for a feathered or grey one) or COCO RLE (binary masks only)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from m2fp.imaging.decoder import encode_png
from m2fp.outputs import coco_rle
from m2fp.outputs.errors import OutputRequestError


def mask_png(mask: np.ndarray) -> bytes:
    """A bool mask as a 1-bit PNG, a uint8 one (feathered, grey) as an 8-bit greyscale PNG."""
    if mask.dtype == bool:
        return encode_png(Image.fromarray(mask))
    return encode_png(Image.fromarray(mask.astype(np.uint8)))


def mask_rle(mask: np.ndarray) -> coco_rle.Rle:
    """A bool mask in COCO RLE.

    Raises:
        OutputRequestError: the mask is not binary (feathered or grey): RLE cannot hold it.
    """
    if mask.dtype != bool:
        raise OutputRequestError("RLE holds binary masks only: no feather or grey with it")
    return coco_rle.encode(mask)


def check_encoding(encoding: Literal["png", "rle"], *, feather: int, grey: bool) -> None:
    """Refuse option combinations RLE cannot carry, before any work is done.

    Raises:
        OutputRequestError: feathered or grey masks asked for as RLE, or an unknown encoding.
    """
    if encoding not in ("png", "rle"):
        raise OutputRequestError("the mask encoding is png or rle")
    if encoding == "rle" and (feather or grey):
        raise OutputRequestError("RLE holds binary masks only: no feather or grey with it")
