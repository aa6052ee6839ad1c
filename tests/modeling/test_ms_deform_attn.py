"""The gather-based deformable sampling equals the ``grid_sample`` formulation it replaces."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from m2fp.modeling.ms_deform_attn import ms_deform_attn_sample


def grid_sample_reference(value, spatial_shapes, sampling_locations, attention_weights):
    """Deformable DETR's pure-PyTorch formulation: one ``grid_sample`` per level."""
    batch, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    sampled = []
    for level, (height, width) in enumerate(spatial_shapes):
        value_l = values[level].permute(0, 2, 3, 1).reshape(batch * heads, dim, height, width)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(
                value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False
            )
        )
    stacked = torch.stack(sampled, dim=-2).flatten(-2)
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
    output = (stacked * weights).sum(-1).view(batch, heads * dim, queries)
    return output.transpose(1, 2)


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
    expected = grid_sample_reference(value, shapes, locations, weights)
    assert ours.shape == (batch, queries, heads * dim)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_exact_pixel_centres_read_one_value():
    value = torch.arange(6.0).view(1, 6, 1, 1)  # one 2x3 level, one head, one channel
    # (x, y) of the centre of pixel (row 1, col 2) and of a point fully outside
    locations = torch.tensor([[2.5 / 3, 1.5 / 2], [1.5, 1.5]]).view(1, 2, 1, 1, 1, 2)
    weights = torch.ones(1, 2, 1, 1, 1)
    out = ms_deform_attn_sample(value, [(2, 3)], locations, weights)
    assert out.flatten().tolist() == [5.0, 0.0]
