"""Disk dilation, 4-connected geodesic distance and feathering, against brute force and
drawn expectations."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from m2fp.outputs.morphology import dilate, feather, geodesic_distance, grow4
from tests.utils.label_maps import draw_mask, show


def brute_force_dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    ys, xs = np.mgrid[: mask.shape[0], : mask.shape[1]]
    out = np.zeros_like(mask)
    for y, x in zip(*np.nonzero(mask), strict=True):
        out |= (ys - y) ** 2 + (xs - x) ** 2 <= radius * radius
    return out


def test_radius_two_is_this_disk():
    mask = np.zeros((7, 7), dtype=bool)
    mask[3, 3] = True
    expected = draw_mask(
        """
        .......
        ...#...
        ..###..
        .#####.
        ..###..
        ...#...
        .......
        """
    )
    assert show(dilate(mask, 2)) == show(expected)


@pytest.mark.parametrize("seed", range(40))
def test_dilation_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 28, 2))
    mask = rng.random((height, width)) < rng.choice([0.01, 0.05, 0.3])
    radius = int(rng.integers(0, 14))
    assert (dilate(mask, radius) == brute_force_dilate(mask, radius)).all()


def test_dilation_is_clipped_at_the_borders_and_leaves_the_input_alone():
    mask = draw_mask(
        """
        #....
        .....
        """
    )
    grown = dilate(mask, 1)
    assert show(grown) == show(draw_mask("##...\n#...."))
    assert mask.sum() == 1
    assert not dilate(np.zeros((3, 3), dtype=bool), 5).any()
    assert dilate(mask, 0) is not mask and (dilate(mask, 0) == mask).all()


def test_geodesic_distance_goes_around_walls():
    region = draw_mask(
        """
        #####
        .###.
        #...#
        #####
        """
    )
    seeds = np.zeros_like(region)
    seeds[2, 0] = True
    assert geodesic_distance(region, seeds).tolist() == [
        [-1, -1, -1, -1, -1],
        [-1, -1, -1, -1, -1],
        [0, -1, -1, -1, 6],
        [1, 2, 3, 4, 5],
    ]
    seeds[0, 0] = True  # a second seed reaches the top row
    top = geodesic_distance(region, seeds)[:2].tolist()
    assert top == [[0, 1, 2, 3, 4], [-1, 2, 3, 4, -1]]


def breadth_first(region: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    height, width = region.shape
    distance = np.full(region.shape, -1, dtype=np.int32)
    queue = deque()
    for y, x in zip(*np.nonzero(seeds & region), strict=True):
        distance[y, x] = 0
        queue.append((y, x))
    while queue:
        y, x = queue.popleft()
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < height and 0 <= nx < width and region[ny, nx] and distance[ny, nx] < 0:
                distance[ny, nx] = distance[y, x] + 1
                queue.append((ny, nx))
    return distance


@pytest.mark.parametrize("seed", range(30))
def test_geodesic_distance_equals_a_plain_breadth_first_search(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 30, 2))
    region = rng.random((height, width)) < rng.choice([0.5, 0.7, 0.95])
    seeds = rng.random((height, width)) < 0.03
    assert (geodesic_distance(region, seeds) == breadth_first(region, seeds)).all()


def test_grow4_is_the_cross():
    mask = np.zeros((3, 3), dtype=bool)
    mask[1, 1] = True
    assert show(grow4(mask)) == show(draw_mask(".#.\n###\n.#."))


def test_feather_is_a_soft_edge():
    mask = np.zeros((40, 40), dtype=bool)
    mask[:, 20:] = True
    soft = feather(mask, 4)
    assert soft.dtype == np.uint8
    assert (soft[:, :8] == 0).all() and (soft[:, 32:] == 255).all()
    assert (np.diff(soft[20].astype(int)) >= 0).all()  # rises across the edge
    assert 100 <= soft[20, 19] <= 155 and 100 <= soft[20, 20] <= 155
    assert (feather(mask, 0) == mask.astype(np.uint8) * 255).all()
