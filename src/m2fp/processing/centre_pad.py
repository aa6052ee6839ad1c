"""The single-person model's input: the photo shrunk to fit a fixed target and centred on grey.

ModelScope's ``center_to_target_size_test`` (``parsing_utils.py``) does, for a target of
``W x H`` (``input_single_human.sizes[0]``, width first):

- a photo larger than the target on some side is shrunk, keeping its aspect ratio, with the
  truncating integer arithmetic reproduced by ``fit_size``; one that fits already is only
  padded (never enlarged);
- the result is padded centred to ``W x H`` with grey 128, the odd pixel of a split going to
  the right and bottom, and the ``crop_box`` ``[x0, y0, x1, y1)`` of the photo inside the
  target is remembered (the post-processing cuts it out again);
- quirk kept for parity: when the left and the top padding are both 0 (the photo fills the
  target up to at most one pixel per side), nothing is padded at all, so the network input is
  the shrunk photo itself (``size_divisibility`` then pads it with zeros after normalising).

Where ModelScope fails, this goes on: a square photo larger than the target on both sides
gets a 0x0 size there (no branch of its code sets one; PIL refuses to resize to it), and a
thin strip can shrink to 0 pixels across. Here a square shrinks to fit like any other shape,
and no side is ever less than 1 pixel.

Frames: original photo (``H0 x W0``) -> fitted (``new_h x new_w``) -> target (``H x W``, the
fitted photo at ``crop_box``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

PAD_VALUE = 128


def _scaled(side: int, numerator: int, denominator: int) -> int:
    """``int(side * numerator / denominator)`` as ModelScope writes it: exact truncation
    (the float quotient is never within an ulp of the next integer for image sizes), and at
    least 1 so that a thin strip keeps a pixel."""
    return max(1, side * numerator // denominator)


def fit_size(height: int, width: int, target_w: int, target_h: int) -> tuple[int, int]:
    """(new_h, new_w) of a ``height x width`` photo shrunk to fit ``target_w x target_h``.

    The branches are ModelScope's: larger on both sides -> the longer side takes its target,
    the other follows, and if it still overflows it takes its own target instead; larger in
    height only -> height takes its target; larger in width only -> width does; neither ->
    unchanged.
    """
    if height > target_h and width > target_w:
        if height >= width:  # ModelScope has ``>``: a square got no size at all
            new_h, new_w = target_h, _scaled(target_h, width, height)
            if new_w > target_w:
                new_w = target_w
                new_h = _scaled(target_w, height, width)
        else:
            new_w, new_h = target_w, _scaled(target_w, height, width)
            if new_h > target_h:
                new_h = target_h
                new_w = _scaled(target_h, width, height)
        return new_h, new_w
    if height > target_h:
        return target_h, _scaled(target_h, width, height)
    if width > target_w:
        return _scaled(target_w, height, width), target_w
    return height, width


@dataclass(frozen=True)
class CentredInput:
    """A photo prepared for the single-person network.

    Attributes:
        image: the network input before normalisation, RGB: the target size, or the fitted
            photo itself when ModelScope's padding shortcut applies.
        crop_box: ``(x0, y0, x1, y1)``, ends exclusive: where the fitted photo lies in it.
    """

    image: Image.Image
    crop_box: tuple[int, int, int, int]


def centre_pad(picture: Image.Image, target_w: int, target_h: int) -> CentredInput:
    """Shrink ``picture`` (upright RGB) to fit the target and pad it centred with grey."""
    new_h, new_w = fit_size(picture.height, picture.width, target_w, target_h)
    fitted = picture
    if (new_h, new_w) != (picture.height, picture.width):
        # PIL bilinear, antialiased when shrinking: what ModelScope's ResizeTransform calls
        fitted = picture.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (target_w - new_w) // 2, (target_h - new_h) // 2
    crop_box = (left, top, left + new_w, top + new_h)
    if left == 0 and top == 0:
        return CentredInput(image=fitted, crop_box=crop_box)
    canvas = np.full((target_h, target_w, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = np.asarray(fitted)
    return CentredInput(image=Image.fromarray(canvas, mode="RGB"), crop_box=crop_box)
