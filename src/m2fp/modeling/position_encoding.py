"""Normalised sine position encoding (DETR style) for feature maps without padding masks."""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionEmbeddingSine(nn.Module):
    """Sine/cosine encoding of normalised (y, x) positions.

    Args:
        num_pos_feats: channels per axis; the output has ``2 * num_pos_feats`` channels.
        temperature: frequency base.
    """

    def __init__(self, *, num_pos_feats: int, temperature: float = 10000.0) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = 2 * math.pi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: BxCxHxW (only its shape is used). Returns: Bx(2*num_pos_feats)xHxW."""
        batch, _, height, width = x.shape
        eps = 1e-6
        # cumsum of ones over an unpadded map, normalised by its last value, as the reference does
        y_embed = torch.arange(1, height + 1, dtype=torch.float32, device=x.device)
        x_embed = torch.arange(1, width + 1, dtype=torch.float32, device=x.device)
        y_embed = y_embed / (y_embed[-1:] + eps) * self.scale
        x_embed = x_embed / (x_embed[-1:] + eps) * self.scale

        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=x.device)
        dim_t = self.temperature ** (
            2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_pos_feats
        )

        pos_x = x_embed[:, None] / dim_t  # W x F
        pos_y = y_embed[:, None] / dim_t  # H x F
        pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
        pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
        pos = torch.cat(
            (
                pos_y[:, None, :].expand(height, width, self.num_pos_feats),
                pos_x[None, :, :].expand(height, width, self.num_pos_feats),
            ),
            dim=2,
        )
        return pos.permute(2, 0, 1).unsqueeze(0).expand(batch, -1, -1, -1)
