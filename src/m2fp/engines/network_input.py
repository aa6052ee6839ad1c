"""The one check of a network input that every exported engine applies before it runs.

numpy, no torch: the exported engines run on the slim runtime without PyTorch.
"""

from __future__ import annotations

import numpy as np

# M2FP.size_divisibility (m2fp.modeling.m2fp.SIZE_DIVISIBILITY), repeated because modeling
# imports torch and this check must not; tests/engines/test_network_input.py holds them equal
SIZE_DIVISIBILITY = 32

# One image per call: the exported graphs have a fixed batch of 1 (what HumanParser feeds the
# network).
BATCH = 1
# Input sides the exported graphs accept. 4096 covers every size HumanParser's resize makes
# with max_size up to 4064. At least two 1/32 cells: torch.export assumes symbolic sizes are not
# 1 (a size-1 map broadcasts differently), and a graph converted under that assumption gives
# wrong results for a 32-pixel side (measured with OpenVINO); such inputs (aspect ratios beyond
# about 40:1 at the default sizes) need the torch engine.
SIDE_MIN, SIDE_MAX = 2 * SIZE_DIVISIBILITY, 4096


def fits_exported(height: int, width: int) -> bool:
    """Whether an input of this padded size is one the exported graphs compute correctly."""
    return SIDE_MIN <= height <= SIDE_MAX and SIDE_MIN <= width <= SIDE_MAX


def check_network_input(images: np.ndarray) -> tuple[int, int]:
    """Return (H, W) of a valid exported-engine input.

    Raises:
        ValueError: ``images`` is not a 1x3xHxW float32 array with H and W multiples of 32
            within [SIDE_MIN, SIDE_MAX].
    """
    if images.dtype != np.float32:
        raise ValueError(f"network input must be float32, not {images.dtype}")
    if images.ndim != 4 or images.shape[0] != BATCH or images.shape[1] != 3:
        raise ValueError(f"network input must be {BATCH}x3xHxW, not {tuple(images.shape)}")
    height, width = int(images.shape[2]), int(images.shape[3])
    if height % SIZE_DIVISIBILITY or width % SIZE_DIVISIBILITY:
        raise ValueError(f"network input sides must be multiples of {SIZE_DIVISIBILITY}")
    if not fits_exported(height, width):
        raise ValueError(
            f"network input sides must be within {SIDE_MIN}-{SIDE_MAX} for this engine, "
            f"not {height}x{width}; use the torch engine"
        )
    return height, width
