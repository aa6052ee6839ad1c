"""Colour overlay of a label map on its photo, with a legend strip."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from m2fp.labels import CIHP_PALETTE

LEGEND_ROW = 18
LEGEND_SWATCH = 12
LEGEND_COLUMN = 120


# the opacities an overlay can have
MIN_ALPHA, MAX_ALPHA = 0.0, 1.0


def check_alpha(alpha: float) -> float:
    """``alpha`` if it is an opacity in [0, 1], else ValueError."""
    if not MIN_ALPHA <= alpha <= MAX_ALPHA:
        raise ValueError("alpha must be between 0 and 1")
    return alpha


Palette = Sequence[tuple[int, int, int]]


def colorize(label_map: np.ndarray, palette: Palette = CIHP_PALETTE) -> np.ndarray:
    """HxW class indices -> HxWx3 uint8 colours of ``palette`` (a label set's)."""
    lookup = np.zeros((256, 3), dtype=np.uint8)
    lookup[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    return lookup[label_map]


def render_overlay(
    image: Image.Image,
    label_map: np.ndarray,
    *,
    alpha: float,
    legend: Sequence[str] | None,
    class_names: Sequence[str],
    palette: Palette = CIHP_PALETTE,
) -> Image.Image:
    """Blend the colours over the photo where a class other than background is present.

    Args:
        image: RGB photo, same size as ``label_map``.
        label_map: HxW uint8.
        alpha: colour weight in [0, 1].
        legend: class names to list under the image, or None for no legend.
        class_names: all class names, index = label id.
        palette: the colour of each class, index = label id.
    """
    check_alpha(alpha)
    colours = Image.fromarray(colorize(label_map, palette), mode="RGB")
    foreground = Image.fromarray((label_map != 0).astype(np.uint8) * 255, mode="L")
    overlay = Image.composite(Image.blend(image, colours, alpha), image, foreground)
    if not legend:
        return overlay
    return _with_legend(overlay, legend, class_names, palette)


def _with_legend(
    overlay: Image.Image, legend: Sequence[str], class_names: Sequence[str], palette: Palette
) -> Image.Image:
    per_row = max(1, overlay.width // LEGEND_COLUMN)
    rows = (len(legend) + per_row - 1) // per_row
    canvas = Image.new("RGB", (overlay.width, overlay.height + rows * LEGEND_ROW + 4), "white")
    canvas.paste(overlay, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, name in enumerate(legend):
        x = (i % per_row) * LEGEND_COLUMN + 4
        y = overlay.height + (i // per_row) * LEGEND_ROW + 4
        colour = palette[class_names.index(name)]
        draw.rectangle((x, y, x + LEGEND_SWATCH, y + LEGEND_SWATCH), fill=colour, outline="black")
        draw.text((x + LEGEND_SWATCH + 4, y), name, fill="black", font=font)
    return canvas
