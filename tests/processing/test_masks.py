"""Masks kept as their bounding-box crop: the same pixels as the full mask."""

from __future__ import annotations

import numpy as np
import pytest

from m2fp.processing.masks import CroppedMask


def full_mask() -> np.ndarray:
    mask = np.zeros((20, 30), dtype=bool)
    mask[4:9, 10:25] = True
    mask[12, 3] = True
    return mask


def test_from_full_round_trips():
    mask = full_mask()
    cropped = CroppedMask.from_full(mask)
    assert cropped.bbox == (3, 4, 25, 13)
    assert cropped.crop.shape == (9, 22)
    assert cropped.area == int(mask.sum())
    assert np.array_equal(cropped.full(), mask)


def test_from_projections_of_a_window_equals_from_full():
    mask = full_mask()
    window = mask[2:18, 1:28]
    cropped = CroppedMask.from_projections(
        window, window.any(1), window.any(0), origin=(2, 1), size=mask.shape
    )
    reference = CroppedMask.from_full(mask)
    assert cropped.bbox == reference.bbox and cropped.size == reference.size
    assert np.array_equal(cropped.crop, reference.crop)


def test_empty_mask_is_refused():
    with pytest.raises(ValueError, match="empty"):
        CroppedMask.from_full(np.zeros((4, 4), dtype=bool))


def test_paint_and_intersection():
    a = CroppedMask.from_full(full_mask())
    other = np.zeros((20, 30), dtype=bool)
    other[6:15, 0:12] = True
    b = CroppedMask.from_full(other)
    assert a.intersection(b) == int((full_mask() & other).sum()) == b.intersection(a)
    canvas = np.zeros((20, 30), dtype=np.uint8)
    a.paint(canvas, 7)
    assert np.array_equal(canvas == 7, full_mask())


def test_disjoint_boxes_do_not_intersect():
    left = np.zeros((10, 10), dtype=bool)
    left[:, :3] = True
    right = np.zeros((10, 10), dtype=bool)
    right[:, 6:] = True
    assert CroppedMask.from_full(left).intersection(CroppedMask.from_full(right)) == 0
