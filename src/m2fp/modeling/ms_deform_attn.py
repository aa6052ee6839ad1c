"""Multi-scale deformable attention in plain PyTorch.

This is the main implementation, not a fallback: no compiled extension is needed at run time.
The bilinear sampling is the one ``grid_sample(mode="bilinear", padding_mode="zeros",
align_corners=False)`` does, written as one weighted gather: each sampling point reads its four
neighbouring value rows, and the bilinear weights, the zero padding and the attention weights
are folded into one weight per row, summed by ``embedding_bag``. That avoids materialising the
sampled values of every point (BxMxDxQxLxP floats) and the separate weighting pass over them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def level_table(spatial_shapes: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
    """The levels' sizes on the device: Lx3 int64 of (H_l, W_l, first row of the level in
    the flattened S axis).

    Built once per forward by the encoder and shared by its layers: each ``torch.tensor`` on
    a GPU is a host-to-device copy that waits for the stream, so one per layer would keep the
    CPU from queueing work ahead.
    """
    rows, start = [], 0
    for height, width in spatial_shapes:
        rows.append((height, width, start))
        start += height * width
    return torch.tensor(rows, dtype=torch.int64, device=device)


def ms_deform_attn_sample(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    levels: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Bilinearly sample each level at the given points and mix them with the weights.

    Args:
        value: BxSxMxD, S = sum of H_l*W_l over levels, M heads of D channels.
        spatial_shapes: (H_l, W_l) per level, in the order the levels appear in ``value``.
        levels: ``level_table(spatial_shapes, value.device)``.
        sampling_locations: BxQxMxLxPx2, (x, y) in [0, 1] relative to each level.
        attention_weights: BxQxMxLxP, softmax-normalised over L*P.

    Returns:
        BxQx(M*D).
    """
    batch, total, heads, dim = value.shape
    queries = sampling_locations.shape[1]
    device = value.device
    heights, widths, starts = levels[:, 0:1], levels[:, 1:2], levels[:, 2:3]  # L x 1 each
    # pixel coordinates as grid_sample computes them with align_corners=False
    x = sampling_locations[..., 0] * widths - 0.5
    y = sampling_locations[..., 1] * heights - 0.5
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    # per axis, the weights of the lower and upper neighbour; zero where it lies outside
    # the level (zero padding)
    wx0 = (1 - fx) * ((x0 >= 0) & (x0 < widths))
    wx1 = fx * ((x0 >= -1) & (x0 < widths - 1))
    wy0 = (1 - fy) * ((y0 >= 0) & (y0 < heights)) * attention_weights
    wy1 = fy * ((y0 >= -1) & (y0 < heights - 1)) * attention_weights
    # row of (flat position, head) in value viewed as (B*S*M) x D, in int64: float32 rows are
    # exact only below 2^24, which batch 64 at 1344x1344 passes
    head = torch.arange(heads, device=device).view(1, 1, heads, 1, 1)
    image = (torch.arange(batch, device=device) * total).view(batch, 1, 1, 1, 1)
    top_left = (image + starts + y0.long() * widths + x0.long()) * heads + head
    below = widths * heads  # L x 1: one row further down
    # B x Q x M x 4 x L x P: the four corners of every point, one bag per (image, query, head);
    # a corner outside the level has weight 0, and clamping keeps its unused row in range
    weights = torch.stack((wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1), dim=3)
    corners = torch.stack(
        (top_left, top_left + heads, top_left + below, top_left + (below + heads)), dim=3
    )
    corners = corners.clamp_(0, batch * total * heads - 1)
    bags = batch * queries * heads
    sampled = F.embedding_bag(
        corners.view(bags, -1),
        value.reshape(-1, dim),
        per_sample_weights=weights.reshape(bags, -1).to(value.dtype),
        mode="sum",
    )
    return sampled.view(batch, queries, heads * dim)


def ms_deform_attn_sample_grid(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    levels: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """The same sampling written as Deformable DETR does, one ``grid_sample`` per level.

    The reference ``ms_deform_attn_sample`` is checked against (tests) and timed against
    (benchmarks); about 6x slower, because it materialises every sampled value. Same
    arguments and result as ``ms_deform_attn_sample``.
    """
    batch, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1  # grid_sample wants [-1, 1]
    sampled = []
    for level, (height, width) in enumerate(spatial_shapes):
        # B x HW x M x D -> (B*M) x D x H x W;  B x Q x M x P x 2 -> (B*M) x Q x P x 2
        value_l = values[level].permute(0, 2, 3, 1).reshape(batch * heads, dim, height, width)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(
                value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False
            )
        )
    stacked = torch.stack(sampled, dim=-2).flatten(-2)  # (B*M) x D x Q x (L*P)
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
    return (stacked * weights).sum(-1).view(batch, heads * dim, queries).transpose(1, 2)


Sampler = Callable[
    [torch.Tensor, list[tuple[int, int]], torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor
]


class MSDeformAttn(nn.Module):
    """Deformable attention over several feature levels (Deformable DETR).

    Args:
        d_model: channels of queries and values.
        n_levels: number of feature levels.
        n_heads: attention heads.
        n_points: sampling points per head and level.
        sampler: ``ms_deform_attn_sample`` (the fast gather) or ``ms_deform_attn_sample_grid``
            (the same values through ``grid_sample``, which ONNX exporters can express); not
            a weight, so either loads the same checkpoint.
    """

    def __init__(
        self,
        *,
        d_model: int,
        n_levels: int,
        n_heads: int,
        n_points: int,
        sampler: Sampler = ms_deform_attn_sample,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points
        self.sampler = sampler
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
        level_sizes: torch.Tensor,
    ) -> torch.Tensor:
        """Args:
            query: BxQxC (queries with position embedding).
            reference_points: BxQxLx2, normalised (x, y) per level.
            value: BxSxC, the flattened levels.
            spatial_shapes: (H_l, W_l) per level.
            level_sizes: ``level_table(spatial_shapes, device)``, built once per forward.

        Returns: BxQxC.
        """
        batch, queries, _ = query.shape
        heads, levels, points = self.n_heads, self.n_levels, self.n_points
        projected = self.value_proj(value).view(batch, -1, heads, self.d_model // heads)
        offsets = self.sampling_offsets(query).view(batch, queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, queries, heads, levels * points)
        weights = weights.softmax(-1).view(batch, queries, heads, levels, points)
        # offsets are in pixels of each level: normalise by (W, H)
        normalizer = level_sizes[:, :2].flip(-1).to(query.dtype)  # L x (W, H)
        locations = (
            reference_points[:, :, None, :, None, :]
            + offsets / normalizer[None, None, None, :, None, :]
        )
        output = self.sampler(projected, spatial_shapes, level_sizes, locations, weights)
        return self.output_proj(output)
