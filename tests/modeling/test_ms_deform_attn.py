"""The gather-based deformable sampling equals the ``grid_sample`` formulation it replaces."""

from __future__ import annotations

import pytest
import torch

from m2fp.modeling.ms_deform_attn import (
    level_table,
    ms_deform_attn_sample,
    ms_deform_attn_sample_grid,
)
from m2fp.modeling.pixel_decoder import DeformableEncoder


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

    levels = level_table(shapes, value.device)
    ours = ms_deform_attn_sample(value, shapes, levels, locations, weights)
    expected = ms_deform_attn_sample_grid(value, shapes, levels, locations, weights)
    assert ours.shape == (batch, queries, heads * dim)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_exact_pixel_centres_read_one_value():
    value = torch.arange(6.0).view(1, 6, 1, 1)  # one 2x3 level, one head, one channel
    # (x, y) of the centre of pixel (row 1, col 2) and of a point fully outside
    locations = torch.tensor([[2.5 / 3, 1.5 / 2], [1.5, 1.5]]).view(1, 2, 1, 1, 1, 2)
    weights = torch.ones(1, 2, 1, 1, 1)
    out = ms_deform_attn_sample(
        value, [(2, 3)], level_table([(2, 3)], value.device), locations, weights
    )
    assert out.flatten().tolist() == [5.0, 0.0]


def test_rows_past_two_to_the_24_are_gathered_exactly():
    """Batch offset plus position passes 2^24 rows, where float32 stops counting every
    integer (batch 64 at 1344x1344 reaches 19M): the second image's last pixels must still
    read their own rows, not a neighbour's."""
    height, width, batch = 2048, 4097, 2  # 2 * 8,390,656 rows > 2^24 = 16,777,216
    total = height * width
    assert batch * total > 2**24
    rows = torch.arange(batch * total, dtype=torch.int64).view(batch, total, 1, 1)
    # neighbouring rows differ by at least 0.007, far above any rounding
    value = ((rows * 7) % 1000).to(torch.float32) / 1000
    # pixel coordinates (x, y): the last pixel (its lower neighbours outside the level) and
    # an interior point; at rows 16,781,311 and about 16,776,900 of the second image
    pixels = torch.tensor([[4096.25, 2047.25], [4000.6, 2046.3]])
    locations = ((pixels + 0.5) / torch.tensor([width, height])).view(1, 2, 1, 1, 1, 2)
    locations = locations.expand(batch, -1, -1, -1, -1, -1).contiguous()
    weights = torch.ones(batch, 2, 1, 1, 1)
    shapes = [(height, width)]
    levels = level_table(shapes, value.device)
    ours = ms_deform_attn_sample(value, shapes, levels, locations, weights)
    expected = ms_deform_attn_sample_grid(value, shapes, levels, locations, weights)
    last = value[1, (height - 1) * width + width - 1, 0, 0] * 0.75 * 0.75
    torch.testing.assert_close(ours[1, 0, 0], last, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_the_encoder_builds_its_level_tensors_once_per_forward(monkeypatch):
    """``torch.tensor`` on a GPU is a host-to-device copy that waits for the stream: the
    level sizes must be built once per forward, not once (or twice) per layer."""
    shapes = [(4, 6), (8, 12), (16, 24)]
    total = sum(h * w for h, w in shapes)
    built: list[int] = []
    real_tensor = torch.tensor

    def counting(*args, **kwargs):
        built.append(1)
        return real_tensor(*args, **kwargs)

    calls = {}
    for num_layers in (1, 3):
        torch.manual_seed(0)
        encoder = DeformableEncoder(
            num_layers=num_layers, d_model=32, d_ffn=64, n_levels=3, n_heads=4, n_points=2
        ).eval()
        src, pos = torch.randn(2, total, 32), torch.randn(2, total, 32)
        built.clear()
        monkeypatch.setattr(torch, "tensor", counting)
        with torch.inference_mode():
            encoder(src, pos, shapes)
        monkeypatch.setattr(torch, "tensor", real_tensor)
        calls[num_layers] = len(built)
    assert calls[1] == calls[3] <= 1, calls
