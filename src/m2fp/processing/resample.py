"""Bilinear mask upsampling restricted to a window of the output.

ModelScope resizes mask logits with ``F.interpolate(mode="bilinear", align_corners=False)``:
first to the padded input, then (after cropping the padding) to the original photo. A mask is
positive only near its positive low-resolution pixels, so post-processing needs the upsampled
logits inside a small window only. ``MaskResampler`` computes exactly those output pixels with
the source indices and weights ``F.interpolate`` uses, in the same order (width, then height),
so a window equals the same window of the full resize up to float rounding.

numpy on the CPU, float32 like ``F.interpolate``: both engines' outputs come here as arrays,
so the slim runtime (no PyTorch) and the torch engine share this one implementation.

Frames: low resolution (mask logits, H/4xW/4 of the padded input) -> padded input -> resized
input (padding cropped) -> original photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Taps:
    """Per output index along one axis: the two source indices and their weights."""

    first: np.ndarray  # int64
    second: np.ndarray  # int64
    first_weight: np.ndarray  # float32
    second_weight: np.ndarray  # float32

    @classmethod
    def bilinear(cls, in_size: int, out_size: int) -> Taps:
        """What ``F.interpolate(..., mode="bilinear", align_corners=False)`` uses."""
        index = np.arange(out_size, dtype=np.int64)
        if in_size == out_size:
            ones = np.ones(out_size, dtype=np.float32)
            return cls(index, index, ones, np.zeros(out_size, dtype=np.float32))
        # float32 throughout, as PyTorch computes the source coordinates
        scale = np.float32(in_size) / np.float32(out_size)
        real = np.maximum(scale * (index.astype(np.float32) + np.float32(0.5)) - np.float32(0.5), 0)
        first = real.astype(np.int64)
        second = first + (first < in_size - 1)
        second_weight = np.clip(real - first.astype(np.float32), 0, 1)
        return cls(first, second, np.float32(1) - second_weight, second_weight)

    def window(self, start: int, stop: int, offset: int = 0) -> Taps:
        """Taps of outputs ``start:stop`` with source indices shifted by ``-offset``."""
        return Taps(
            self.first[start:stop] - offset,
            self.second[start:stop] - offset,
            self.first_weight[start:stop],
            self.second_weight[start:stop],
        )


def _apply(x: np.ndarray, rows: Taps, cols: Taps) -> np.ndarray:
    """NxHxW float32 -> Nx|rows|x|cols| float32: the width taps, then the height taps."""
    # only the source rows the height taps read
    first_row = int(rows.first[0])
    x = x[:, first_row : int(rows.second[-1]) + 1]
    wide = np.take(x, cols.first, axis=2) * cols.first_weight
    wide += np.take(x, cols.second, axis=2) * cols.second_weight
    top = np.take(wide, rows.first - first_row, axis=1) * rows.first_weight[:, None]
    top += np.take(wide, rows.second - first_row, axis=1) * rows.second_weight[:, None]
    return top


class MaskResampler:
    """Upsamples low-resolution mask logits to windows of the original photo.

    Args:
        low_size: (h, w) of the mask logits.
        padded_size: (H, W) of the padded network input.
        input_size: (h, w) of the resized photo inside the padding.
        output_size: (H, W) of the original photo.
    """

    def __init__(
        self,
        *,
        low_size: tuple[int, int],
        padded_size: tuple[int, int],
        input_size: tuple[int, int],
        output_size: tuple[int, int],
    ) -> None:
        self.output_size = output_size
        self.two_steps = tuple(input_size) != tuple(output_size)
        self.step1 = [
            Taps.bilinear(low, pad) for low, pad in zip(low_size, padded_size, strict=True)
        ]
        self.step2 = [Taps.bilinear(i, o) for i, o in zip(input_size, output_size, strict=True)]
        # lowest and highest low-resolution index each output pixel reads, per axis
        self.reach = []
        for axis in range(2):
            if self.two_steps:
                low = self.step1[axis].first[self.step2[axis].first]
                high = self.step1[axis].second[self.step2[axis].second]
            else:
                low, high = self.step1[axis].first, self.step1[axis].second
            self.reach.append((np.ascontiguousarray(low), np.ascontiguousarray(high)))

    def support(self, low_start: int, low_stop: int, axis: int) -> tuple[int, int]:
        """Output range along ``axis`` that reads any low-resolution index in the range."""
        low, high = self.reach[axis]
        start = int(np.searchsorted(high, low_start))
        stop = int(np.searchsorted(low, low_stop))
        return start, stop

    def window(
        self, logits: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]
    ) -> np.ndarray:
        """NxhXw float32 logits -> Nx(rows)x(cols) upsampled logits at the original size."""
        if not self.two_steps:
            return _apply(logits, self.step1[0].window(*rows), self.step1[1].window(*cols))
        row_taps, col_taps = self.step2[0].window(*rows), self.step2[1].window(*cols)
        # the part of the padded-size resize that this window reads
        mid_rows = (int(row_taps.first.min()), int(row_taps.second.max()) + 1)
        mid_cols = (int(col_taps.first.min()), int(col_taps.second.max()) + 1)
        middle = _apply(logits, self.step1[0].window(*mid_rows), self.step1[1].window(*mid_cols))
        return _apply(
            middle,
            self.step2[0].window(*rows, offset=mid_rows[0]),
            self.step2[1].window(*cols, offset=mid_cols[0]),
        )


class BandResizer:
    """``F.interpolate(mode="bilinear", align_corners=False)`` of a CxhXw map to CxHxW,
    computed a band of output rows at a time, so the full-size result never has to exist.

    Args:
        in_size: (h, w) of the maps to resize.
        out_size: (H, W) of the result.
    """

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int]) -> None:
        self.out_size = out_size
        self.rows = Taps.bilinear(in_size[0], out_size[0])
        self.cols = Taps.bilinear(in_size[1], out_size[1])

    def band(self, maps: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Output rows ``start:stop`` of the resized ``maps``: Cx(stop - start)xW."""
        return _apply(maps, self.rows.window(start, stop), self.cols)
