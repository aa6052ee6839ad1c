"""Resize, normalise and pad an RGB image the way ModelScope's M2FP pipeline does.

torch is imported only by ``to_input_tensor``: the size rules here are checked by
``ParserOptions`` and the server's settings, which must load where torch is not installed
(the slim OpenVINO runtime).
"""

from __future__ import annotations

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


def to_input_tensor(
    image: Image.Image,
    pixel_mean: torch.Tensor,
    pixel_std: torch.Tensor,
    size_divisibility: int,
) -> torch.Tensor:
    """A resized RGB image as a normalised 1x3xHpxWp tensor, zero-padded to the divisibility,
    on the device of ``pixel_mean``.

    Padding comes after normalisation, so padded pixels are 0 in the normalised frame. The
    image crosses to the device as uint8 (a quarter of the float32 bytes) and is normalised
    there.
    """
    import torch
    import torch.nn.functional as F

    array = np.array(image, dtype=np.uint8)
    uint8 = torch.from_numpy(array).to(pixel_mean.device)
    tensor = uint8.permute(2, 0, 1).float()
    tensor = (tensor - pixel_mean) / pixel_std
    height, width = tensor.shape[-2:]
    pad_h = -height % size_divisibility
    pad_w = -width % size_divisibility
    if pad_h or pad_w:
        tensor = F.pad(tensor, (0, pad_w, 0, pad_h), value=0.0)
    return tensor.unsqueeze(0)
