"""Exported engines refuse inputs outside the contract with one clear ValueError each."""

from __future__ import annotations

import pytest
import torch

from m2fp.engines.network_input import SIDE_MAX, SIDE_MIN, check_network_input


def test_accepts_the_contract():
    assert check_network_input(torch.zeros(1, 3, 64, 96)) == (64, 96)


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (torch.zeros(1, 3, 64, 64, dtype=torch.float64), "float32"),
        (torch.zeros(2, 3, 64, 64), "1x3xHxW"),
        (torch.zeros(1, 1, 64, 64), "1x3xHxW"),
        (torch.zeros(3, 64, 64), "1x3xHxW"),
        (torch.zeros(1, 3, 64, 80), "multiples of 32"),
        (torch.zeros(1, 3, 32, 640), "torch engine"),
        (torch.zeros(1, 3, 64, SIDE_MAX + 32), "torch engine"),
    ],
)
def test_refuses(tensor, message):
    with pytest.raises(ValueError, match=message):
        check_network_input(tensor)


def test_bounds_are_whole_cells():
    assert SIDE_MIN % 32 == 0 and SIDE_MAX % 32 == 0 and SIDE_MIN == 64
