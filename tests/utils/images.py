"""Small images built in memory (seeded noise: nothing here is a real photo)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def png_bytes(width: int = 96, height: int = 64, seed: int = 0, **save_options) -> bytes:
    """A small RGB noise image as PNG (extra ``save_options`` e.g. ``pnginfo``)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **save_options)
    return buffer.getvalue()


def jpeg_bytes(width: int = 96, height: int = 64, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
