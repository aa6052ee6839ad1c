"""Binary instance masks stored as their bounding-box crop, so many of them fit in memory at
the original photo size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CroppedMask:
    """A boolean HxW mask kept as its tight bounding box crop.

    Attributes:
        bbox: (x0, y0, x1, y1) in pixels, ends exclusive.
        crop: boolean array of shape (y1 - y0, x1 - x0).
        size: (height, width) of the full mask.
    """

    bbox: tuple[int, int, int, int]
    crop: np.ndarray
    size: tuple[int, int]

    @classmethod
    def from_projections(
        cls,
        mask: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        *,
        origin: tuple[int, int] = (0, 0),
        size: tuple[int, int] | None = None,
    ) -> CroppedMask:
        """Crop a non-empty boolean array given its row and column ``any`` projections.

        Args:
            mask: the mask, or a window of it whose top-left pixel is at ``origin`` (y, x).
            rows, cols: ``mask.any(1)`` and ``mask.any(0)``.
            size: (height, width) of the full mask; defaults to the shape of ``mask``.
        """
        row_idx = np.flatnonzero(rows)
        col_idx = np.flatnonzero(cols)
        y0, y1 = int(row_idx[0]), int(row_idx[-1]) + 1
        x0, x1 = int(col_idx[0]), int(col_idx[-1]) + 1
        crop = mask[y0:y1, x0:x1].copy()
        top, left = origin
        full = size if size is not None else (int(mask.shape[0]), int(mask.shape[1]))
        return cls(
            bbox=(x0 + left, y0 + top, x1 + left, y1 + top), crop=crop, size=(full[0], full[1])
        )

    @classmethod
    def from_full(cls, mask: np.ndarray) -> CroppedMask:
        """Crop a full HxW boolean mask that has at least one pixel set."""
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            raise ValueError("empty mask")
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        crop = np.ascontiguousarray(mask[y0:y1, x0:x1])
        return cls(bbox=(x0, y0, x1, y1), crop=crop, size=(mask.shape[0], mask.shape[1]))

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.crop))

    def full(self) -> np.ndarray:
        """The HxW boolean mask."""
        out = np.zeros(self.size, dtype=bool)
        x0, y0, x1, y1 = self.bbox
        out[y0:y1, x0:x1] = self.crop
        return out

    def paint(self, canvas: np.ndarray, value: int) -> None:
        """Set ``canvas`` (HxW) to ``value`` where the mask is set."""
        x0, y0, x1, y1 = self.bbox
        canvas[y0:y1, x0:x1][self.crop] = value

    def intersection(self, other: CroppedMask) -> int:
        """Number of pixels set in both masks."""
        ax0, ay0, ax1, ay1 = self.bbox
        bx0, by0, bx1, by1 = other.bbox
        x0, y0, x1, y1 = max(ax0, bx0), max(ay0, by0), min(ax1, bx1), min(ay1, by1)
        if x0 >= x1 or y0 >= y1:
            return 0
        a = self.crop[y0 - ay0 : y1 - ay0, x0 - ax0 : x1 - ax0]
        b = other.crop[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]
        return int(np.count_nonzero(a & b))

    def mirrored(self) -> CroppedMask:
        """The mask of the horizontally mirrored image (same size)."""
        x0, y0, x1, y1 = self.bbox
        width = self.size[1]
        crop = np.ascontiguousarray(self.crop[:, ::-1])
        return CroppedMask(bbox=(width - x1, y0, width - x0, y1), crop=crop, size=self.size)

    def union(self, other: CroppedMask) -> CroppedMask:
        """Pixels set in either mask (both of the same size)."""
        ax0, ay0, ax1, ay1 = self.bbox
        bx0, by0, bx1, by1 = other.bbox
        x0, y0, x1, y1 = min(ax0, bx0), min(ay0, by0), max(ax1, bx1), max(ay1, by1)
        crop = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        crop[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0] |= self.crop
        crop[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] |= other.crop
        return CroppedMask(bbox=(x0, y0, x1, y1), crop=crop, size=self.size)
