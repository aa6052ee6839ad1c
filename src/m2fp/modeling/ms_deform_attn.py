"""Multi-scale deformable attention in plain PyTorch.

This is the main implementation, not a fallback: no compiled extension is needed at run time.
The bilinear sampling is the one ``grid_sample(mode="bilinear", padding_mode="zeros",
align_corners=False)`` does, written as one weighted gather: each sampling point reads its four
neighbouring value rows, and the bilinear weights, the zero padding and the attention weights
are folded into one weight per row, summed by ``embedding_bag``. That avoids materialising the
sampled values of every point (BxMxDxQxLxP floats) and the separate weighting pass over them.
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
    batch, total, heads, dim = value.shape
    queries, levels = sampling_locations.shape[1], sampling_locations.shape[3]
    device, dtype = value.device, sampling_locations.dtype
    sizes = torch.tensor(spatial_shapes, device=device)  # L x (H, W)
    heights = sizes[:, 0].view(levels, 1)
    widths = sizes[:, 1].view(levels, 1)
    starts = (torch.cumsum(sizes[:, 0] * sizes[:, 1], 0) - sizes[:, 0] * sizes[:, 1]).view(
        levels, 1
    )
    # pixel coordinates as grid_sample computes them with align_corners=False
    x = sampling_locations[..., 0] * widths.to(dtype) - 0.5
    y = sampling_locations[..., 1] * heights.to(dtype) - 0.5
    x_floor, y_floor = x.floor(), y.floor()
    fx, fy = x - x_floor, y - y_floor
    x0, y0 = x_floor.long(), y_floor.long()
    # row of head m at flat position s of image b in value viewed as (B*S*M) x D
    base = (torch.arange(batch, device=device) * total).view(batch, 1, 1, 1, 1)
    head = torch.arange(heads, device=device).view(1, 1, heads, 1, 1)
    rows, weights = [], []
    for dx, dy, corner in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xc, yc = x0 + dx, y0 + dy
        inside = (xc >= 0) & (xc < widths) & (yc >= 0) & (yc < heights)
        position = torch.where(inside, starts + yc * widths + xc, 0)
        rows.append((base + position) * heads + head)
        # zero padding: a corner outside the level contributes nothing
        weights.append(torch.where(inside, corner * attention_weights, 0.0))
    bags = batch * queries * heads
    sampled = F.embedding_bag(
        torch.stack(rows, -1).view(bags, -1),
        value.reshape(-1, dim),
        per_sample_weights=torch.stack(weights, -1).view(bags, -1).to(value.dtype),
        mode="sum",
    )
    return sampled.view(batch, queries, heads * dim)


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
