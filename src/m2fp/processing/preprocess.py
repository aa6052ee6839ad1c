"""Resize, normalise and pad an RGB image the way ModelScope's M2FP pipeline does.

numpy, PIL: the size rules here are checked by ``ParserOptions`` and the server's settings,
and ``to_input_array`` builds every engine's input, all of which must run where torch is not
installed (the slim OpenVINO runtime); torch is imported only by ``to_input_tensor``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch


def target_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """(new_h, new_w): short side ``min_size``, long side at most ``max_size``, rounded half up.

    Sides never round down to zero: a 1x3000 strip becomes 1 pixel high, not an empty image.
    """
    scale = min_size / min(height, width)
    if height < width:
        new_h, new_w = float(min_size), scale * width
    else:
        new_h, new_w = scale * height, float(min_size)
    if max(new_h, new_w) > max_size:
        shrink = max_size / max(new_h, new_w)
        new_h, new_w = new_h * shrink, new_w * shrink
    return max(1, int(new_h + 0.5)), max(1, int(new_w + 0.5))


def resize(image: Image.Image, min_size: int, max_size: int) -> Image.Image:
    """Resize with PIL bilinear (antialiased when shrinking), as torchvision's Resize does."""
    new_h, new_w = target_size(image.height, image.width, min_size, max_size)
    return image.resize((new_w, new_h), Image.Resampling.BILINEAR)


def to_input_array(
    image: Image.Image,
    pixel_mean: Sequence[float],
    pixel_std: Sequence[float],
    size_divisibility: int,
) -> np.ndarray:
    """A resized RGB HxW image as the network's normalised 1x3xHpxWp float32 input,
    zero-padded at the bottom and right to multiples of ``size_divisibility``.

    The one implementation for every engine: the OpenVINO engine takes it as it is, the
    torch engine as ``to_input_tensor``. Padding comes after normalisation, so padded pixels
    are 0 in the normalised frame.

    Args:
        pixel_mean, pixel_std: per-channel (RGB) normalisation in 0-255
            (``m2fp.model_config.PIXEL_MEAN``/``PIXEL_STD``).
    """
    pixels = np.asarray(image, dtype=np.uint8)
    height, width = pixels.shape[:2]
    mean = np.asarray(pixel_mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(pixel_std, dtype=np.float32).reshape(3, 1, 1)
    padded = np.zeros(
        (1, 3, height + -height % size_divisibility, width + -width % size_divisibility),
        dtype=np.float32,
    )
    padded[0, :, :height, :width] = (pixels.transpose(2, 0, 1).astype(np.float32) - mean) / std
    return padded


def to_input_tensor(
    image: Image.Image,
    pixel_mean: torch.Tensor,
    pixel_std: torch.Tensor,
    size_divisibility: int,
) -> torch.Tensor:
    """``to_input_array`` as a tensor on the device of ``pixel_mean`` (the network's
    normalisation buffers, 3x1x1)."""
    import torch

    array = to_input_array(
        image, pixel_mean.flatten().tolist(), pixel_std.flatten().tolist(), size_divisibility
    )
    return torch.from_numpy(array).to(pixel_mean.device)
