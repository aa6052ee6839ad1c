"""Resizing, normalising and padding as ModelScope's pipeline does it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from m2fp.defaults import DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE
from m2fp.processing.preprocess import resize, target_size, to_input_tensor


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (480, 640, (640, 853)),  # short side to 640, 853.33 rounds down
        (640, 480, (853, 640)),
        (100, 2000, (67, 1333)),  # the long side bound wins: 1333 / 2000 * 100 = 66.65
        (640, 640, (640, 640)),
        (1, 3000, (1, 1333)),  # never rounds down to an empty side
        (3, 2, (960, 640)),  # upscaling a tiny image
    ],
)
def test_target_size(height, width, expected):
    assert target_size(height, width, DEFAULT_MIN_SIZE, DEFAULT_MAX_SIZE) == expected


def test_rounding_is_half_up():
    # 641 * 640 / 480 = 854.666.. -> 855; 150 * 128 / 100 = 192.0 exactly
    assert target_size(480, 641, 640, 1333) == (640, 855)
    assert target_size(100, 150, 128, 256) == (128, 192)


def test_resize_gives_the_target_size():
    image = Image.new("RGB", (150, 100))
    assert resize(image, 128, 256).size == (192, 128)


def test_input_tensor_is_normalised_then_zero_padded():
    pixels = np.full((30, 40, 3), 200, dtype=np.uint8)
    mean = torch.tensor([100.0, 110.0, 120.0]).view(-1, 1, 1)
    std = torch.tensor([10.0, 20.0, 40.0]).view(-1, 1, 1)
    batch = to_input_tensor(Image.fromarray(pixels), mean, std, 32)
    assert batch.shape == (1, 3, 32, 64)
    inside = batch[0, :, :30, :40]
    assert torch.allclose(inside[:, 0, 0], torch.tensor([10.0, 4.5, 2.0]))
    assert (batch[0, :, 30:, :] == 0).all() and (batch[0, :, :, 40:] == 0).all()


def test_no_padding_when_already_divisible():
    image = Image.new("RGB", (64, 32))
    mean, std = torch.zeros(3, 1, 1), torch.ones(3, 1, 1)
    assert to_input_tensor(image, mean, std, 32).shape == (1, 3, 32, 64)
