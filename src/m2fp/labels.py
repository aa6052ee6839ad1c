"""CIHP class names (ModelScope order) and the fixed colour palette."""

from __future__ import annotations

CIHP_CLASSES: tuple[str, ...] = (
    "Background",
    "Hat",
    "Hair",
    "Glove",
    "Sunglasses",
    "UpperClothes",
    "Dress",
    "Coat",
    "Socks",
    "Pants",
    "Torso-skin",
    "Scarf",
    "Skirt",
    "Face",
    "Left-arm",
    "Right-arm",
    "Left-leg",
    "Right-leg",
    "Left-shoe",
    "Right-shoe",
    "Human",
)

# The usual CIHP/LIP palette: index i is the RGB colour of class i in the label map.
CIHP_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (128, 0, 0),
    (255, 0, 0),
    (0, 85, 0),
    (170, 0, 51),
    (255, 85, 0),
    (0, 0, 85),
    (0, 119, 221),
    (85, 85, 0),
    (0, 85, 85),
    (85, 51, 0),
    (52, 86, 128),
    (0, 128, 0),
    (0, 0, 255),
    (51, 170, 221),
    (0, 255, 255),
    (85, 255, 170),
    (170, 255, 85),
    (255, 255, 0),
    (255, 170, 0),
)


def palette_bytes() -> bytes:
    """The palette as 768 bytes for ``PIL.Image.putpalette`` (unused entries black)."""
    flat = bytes(c for rgb in CIHP_PALETTE for c in rgb)
    return flat + bytes(768 - len(flat))
