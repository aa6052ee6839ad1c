"""The gather-based deformable sampling equals the ``grid_sample`` formulation it replaces."""

from __future__ import annotations

import pytest
import torch

from m2fp.modeling.ms_deform_attn import ms_deform_attn_sample, ms_deform_attn_sample_grid


@pytest.mark.parametrize("batch", [1, 2])
def test_matches_grid_sample(batch):
    generator = torch.Generator().manual_seed(batch)
    shapes = [(3, 5), (6, 10), (12, 20)]
    total = sum(h * w for h, w in shapes)
    heads, dim, points, queries = 4, 8, 3, 50
    value = torch.randn(batch, total, heads, dim, generator=generator)
    # include points outside the map on every side: zero padding must match
    locations = torch.rand(batch, queries, heads, 3, points, 2, generator=generator) * 1.4 - 0.2
    weights = torch.rand(batch, queries, heads, 3, points, generator=generator)
    weights = weights / weights.sum((-1, -2), keepdim=True)

    ours = ms_deform_attn_sample(value, shapes, locations, weights)
    expected = ms_deform_attn_sample_grid(value, shapes, locations, weights)
    assert ours.shape == (batch, queries, heads * dim)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_exact_pixel_centres_read_one_value():
    value = torch.arange(6.0).view(1, 6, 1, 1)  # one 2x3 level, one head, one channel
    # (x, y) of the centre of pixel (row 1, col 2) and of a point fully outside
    locations = torch.tensor([[2.5 / 3, 1.5 / 2], [1.5, 1.5]]).view(1, 2, 1, 1, 1, 2)
    weights = torch.ones(1, 2, 1, 1, 1)
    out = ms_deform_attn_sample(value, [(2, 3)], locations, weights)
    assert out.flatten().tolist() == [5.0, 0.0]
