"""Pixel operations on HxW boolean masks: disk dilation, feathering and geodesic distance.

numpy and Pillow only (no scipy or OpenCV). The WebUI's ``static/masks.js`` computes the same
dilation and distances, pixel for pixel (the Chromium tests compare them).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter


def _window(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The mask's bounding box grown by ``margin`` and clipped to the image, or None."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape
    return (
        slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, height)),
        slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, width)),
    )


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow ``mask`` by a disk: a pixel is set if a set pixel lies within ``radius`` of it
    (offsets with dx² + dy² <= radius²).

    The disk is cut into rows: row dy of the disk is a horizontal run of half-width
    ``isqrt(r² - dy²)``. Going from dy = ±r towards 0 the half-width only grows, so the
    horizontal dilation is widened one pixel at a time and each row offset ORs it in once:
    about 4r whole-window ORs, on the mask's bounding box grown by r.

    Args:
        mask: HxW bool.
        radius: pixels, >= 0.

    Returns:
        A new HxW bool array.
    """
    out = mask.astype(bool, copy=True)
    if radius <= 0:
        return out
    window = _window(out, radius)
    if window is None:
        return out
    source = out[window]
    height, width = source.shape
    grown = np.zeros_like(source)
    wide = source.copy()  # the horizontal dilation by ``half`` pixels
    half = 0
    for dy in range(radius, -1, -1):
        target = math.isqrt(radius * radius - dy * dy)
        while half < target:
            half += 1
            if half < width:
                wide[:, half:] |= source[:, :-half]
                wide[:, :-half] |= source[:, half:]
        for shift in {dy, -dy}:
            if shift >= height:
                continue
            if shift >= 0:
                grown[shift:] |= wide[: height - shift]
            elif -shift < height:
                grown[:shift] |= wide[-shift:]
    out[window] = grown
    return out


def grow4(mask: np.ndarray) -> np.ndarray:
    """``mask`` plus its 4-neighbours (one step of a 4-connected dilation)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def geodesic_distance(region: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Steps from the nearest seed to each pixel of ``region``, moving between 4-neighbours
    inside ``region`` (a breadth-first search, one whole frontier per step).

    Each step only looks at the last frontier's box grown by one pixel: along an arm the
    frontier is a thin band, so a step costs its width, not the arm's box.

    Args:
        region: HxW bool, where paths may go.
        seeds: HxW bool; only seeds inside ``region`` count.

    Returns:
        HxW int32: the distance, -1 where no path reaches (and outside ``region``).
    """
    distance = np.full(region.shape, -1, dtype=np.int32)
    frontier = seeds & region
    visited = frontier.copy()
    distance[frontier] = 0
    box = _window(frontier, 0)
    height, width = region.shape
    step = 0
    while box is not None:
        step += 1
        rows = slice(max(box[0].start - 1, 0), min(box[0].stop + 1, height))
        cols = slice(max(box[1].start - 1, 0), min(box[1].stop + 1, width))
        grown = grow4(frontier[rows, cols]) & region[rows, cols] & ~visited[rows, cols]
        frontier[box] = False  # the whole last frontier lies in its box
        frontier[rows, cols] = grown
        visited[rows, cols] |= grown
        distance[rows, cols][grown] = step
        found = _window(grown, 0)
        box = None
        if found is not None:
            box = (
                slice(found[0].start + rows.start, found[0].stop + rows.start),
                slice(found[1].start + cols.start, found[1].stop + cols.start),
            )
    return distance


def feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """A soft edge: the mask as 0/255 blurred by Pillow's Gaussian of ``radius`` pixels.

    Returns:
        HxW uint8 (255 well inside, 0 well outside, about 128 on a straight edge).
    """
    image = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
    if radius > 0:
        image = image.filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(image, dtype=np.uint8).copy()
