"""Multi-scale deformable attention written with ``grid_sample``.

This is the main implementation, not a fallback: no compiled extension is needed at run time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def ms_deform_attn_sample(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Bilinearly sample each level at the given points and mix them with the weights.

    Args:
        value: BxSxMxD, S = sum of H_l*W_l over levels, M heads of D channels.
        spatial_shapes: (H_l, W_l) per level, in the order the levels appear in ``value``.
        sampling_locations: BxQxMxLxPx2, (x, y) in [0, 1] relative to each level.
        attention_weights: BxQxMxLxP, softmax-normalised over L*P.

    Returns:
        BxQx(M*D).
    """
    batch, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    # grid_sample wants coordinates in [-1, 1]
    grids = 2 * sampling_locations - 1
    sampled = []
    for level, (height, width) in enumerate(spatial_shapes):
        # B x HW x M x D -> (B*M) x D x H x W
        value_l = values[level].permute(0, 2, 3, 1).reshape(batch * heads, dim, height, width)
        # B x Q x M x P x 2 -> (B*M) x Q x P x 2
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(
                value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False
            )
        )
    # (B*M) x D x Q x (L*P)
    stacked = torch.stack(sampled, dim=-2).flatten(-2)
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
    output = (stacked * weights).sum(-1).view(batch, heads * dim, queries)
    return output.transpose(1, 2)


class MSDeformAttn(nn.Module):
    """Deformable attention over several feature levels (Deformable DETR).

    Args:
        d_model: channels of queries and values.
        n_levels: number of feature levels.
        n_heads: attention heads.
        n_points: sampling points per head and level.
    """

    def __init__(self, *, d_model: int, n_levels: int, n_heads: int, n_points: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points
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
    ) -> torch.Tensor:
        """Args:
            query: BxQxC (queries with position embedding).
            reference_points: BxQxLx2, normalised (x, y) per level.
            value: BxSxC, the flattened levels.
            spatial_shapes: (H_l, W_l) per level.

        Returns: BxQxC.
        """
        batch, queries, _ = query.shape
        heads, levels, points = self.n_heads, self.n_levels, self.n_points
        projected = self.value_proj(value).view(batch, -1, heads, self.d_model // heads)
        offsets = self.sampling_offsets(query).view(batch, queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, queries, heads, levels * points)
        weights = weights.softmax(-1).view(batch, queries, heads, levels, points)
        # offsets are in pixels of each level: normalise by (W, H)
        normalizer = torch.tensor(
            [[w, h] for h, w in spatial_shapes], dtype=query.dtype, device=query.device
        )
        locations = (
            reference_points[:, :, None, :, None, :]
            + offsets / normalizer[None, None, None, :, None, :]
        )
        output = ms_deform_attn_sample(projected, spatial_shapes, locations, weights)
        return self.output_proj(output)
