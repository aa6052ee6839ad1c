"""Exported engines refuse inputs outside the contract with one clear ValueError each."""

from __future__ import annotations

import numpy as np
import pytest

from m2fp.engines.network_input import SIDE_MAX, SIDE_MIN, check_network_input


def test_accepts_the_contract():
    assert check_network_input(np.zeros((1, 3, 64, 96), np.float32)) == (64, 96)


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (np.zeros((1, 3, 64, 64), np.float64), "float32"),
        (np.zeros((2, 3, 64, 64), np.float32), "1x3xHxW"),
        (np.zeros((1, 1, 64, 64), np.float32), "1x3xHxW"),
        (np.zeros((3, 64, 64), np.float32), "1x3xHxW"),
        (np.zeros((1, 3, 64, 80), np.float32), "multiples of 32"),
        (np.zeros((1, 3, 32, 640), np.float32), "torch engine"),
        (np.zeros((1, 3, 64, SIDE_MAX + 32), np.float32), "torch engine"),
    ],
)
def test_refuses(tensor, message):
    with pytest.raises(ValueError, match=message):
        check_network_input(tensor)


def test_bounds_are_whole_cells():
    assert SIDE_MIN % 32 == 0 and SIDE_MAX % 32 == 0 and SIDE_MIN == 64


def test_the_divisibility_is_the_networks():
    from m2fp.engines import network_input
    from m2fp.modeling.m2fp import M2FP

    assert M2FP.size_divisibility == network_input.SIZE_DIVISIBILITY
