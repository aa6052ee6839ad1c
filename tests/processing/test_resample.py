"""Windowed bilinear resampling equals the same window of F.interpolate's full resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from m2fp.processing.resample import MaskResampler, Taps


def full_resize(logits, padded, input_size, output):
    """ModelScope's two steps: to the padded input, crop the padding, to the photo."""
    up = F.interpolate(logits[None], size=padded, mode="bilinear", align_corners=False)
    up = up[:, :, : input_size[0], : input_size[1]]
    if tuple(input_size) != tuple(output):
        up = F.interpolate(up, size=output, mode="bilinear", align_corners=False)
    return up[0]


@pytest.mark.parametrize(("in_size", "out_size"), [(8, 32), (32, 8), (7, 7), (5, 13), (1, 4)])
def test_taps_reproduce_interpolate_along_one_axis(in_size, out_size):
    x = torch.randn(1, 1, in_size)
    expected = F.interpolate(x, size=out_size, mode="linear", align_corners=False)[0, 0]
    taps = Taps.bilinear(in_size, out_size)
    row = x[0, 0].numpy()
    got = row[taps.first] * taps.first_weight + row[taps.second] * taps.second_weight
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("padded", "input_size", "output"),
    [
        ((64, 96), (64, 96), (64, 96)),  # one step: the photo is the network input
        ((64, 96), (60, 90), (100, 150)),  # padding cropped, then upscaled
        ((128, 128), (128, 100), (77, 60)),  # downscaled
    ],
)
def test_windows_equal_the_full_resize(padded, input_size, output):
    generator = torch.Generator().manual_seed(0)
    low = (padded[0] // 4, padded[1] // 4)
    logits = torch.randn(3, *low, generator=generator)
    resampler = MaskResampler(
        low_size=low, padded_size=padded, input_size=input_size, output_size=output
    )
    full = full_resize(logits, padded, input_size, output)
    for rows, cols in [((0, output[0]), (0, output[1])), ((5, 17), (3, 29)), ((10, 11), (0, 1))]:
        window = resampler.window(logits.numpy(), rows, cols)
        expected = full[:, rows[0] : rows[1], cols[0] : cols[1]].numpy()
        np.testing.assert_allclose(window, expected, atol=1e-5)


def test_support_covers_every_positive_output_pixel():
    padded, input_size, output = (64, 96), (60, 90), (100, 150)
    low = (16, 24)
    logits = torch.full((1, *low), -5.0)
    logits[0, 6:9, 10:12] = 5.0  # one positive blob
    resampler = MaskResampler(
        low_size=low, padded_size=padded, input_size=input_size, output_size=output
    )
    top, bottom = resampler.support(6, 9, axis=0)
    left, right = resampler.support(10, 12, axis=1)
    full = full_resize(logits, padded, input_size, output)[0]
    inside = torch.zeros_like(full, dtype=torch.bool)
    inside[top:bottom, left:right] = True
    assert (full > 0).any() and not ((full > 0) & ~inside).any()
