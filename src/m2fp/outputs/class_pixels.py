"""Which pixels of a label map hold some classes: a 256-entry lookup table indexed by the
label map, several times faster than ``np.isin`` on a photo-sized uint8 map."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def in_classes(labels: np.ndarray, ids: Iterable[int]) -> np.ndarray:
    """HxW bool: where ``labels`` (HxW uint8) is one of ``ids``."""
    table = np.zeros(256, dtype=bool)
    table[list(ids)] = True
    return table[labels]
