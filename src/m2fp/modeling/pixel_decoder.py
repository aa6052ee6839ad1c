"""Pixel decoder: a deformable-attention encoder over res3-res5 plus an FPN step to res2.

Frames: inputs are backbone maps at 1/4..1/32; outputs are ``mask_features`` at 1/4 and three
multi-scale maps (1/32, 1/16, 1/8) for the transformer decoder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from m2fp.modeling.conv_norm import ConvNorm
from m2fp.modeling.ms_deform_attn import MSDeformAttn, level_table
from m2fp.modeling.position_encoding import PositionEmbeddingSine


class DeformableEncoderLayer(nn.Module):
    """Deformable self-attention then FFN, both post-norm."""

    def __init__(self, *, d_model: int, d_ffn: int, n_levels: int, n_heads: int, n_points: int):
        super().__init__()
        self.self_attn = MSDeformAttn(
            d_model=d_model, n_levels=n_levels, n_heads=n_heads, n_points=n_points
        )
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        reference_points: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
        levels: torch.Tensor,
    ) -> torch.Tensor:
        attended = self.self_attn(src + pos, reference_points, src, spatial_shapes, levels)
        src = self.norm1(src + attended)
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DeformableEncoder(nn.Module):
    """Stack of deformable encoder layers over the flattened levels."""

    def __init__(
        self,
        *,
        num_layers: int,
        d_model: int,
        d_ffn: int,
        n_levels: int,
        n_heads: int,
        n_points: int,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(
                d_model=d_model, d_ffn=d_ffn, n_levels=n_levels, n_heads=n_heads, n_points=n_points
            )
            for _ in range(num_layers)
        )

    @staticmethod
    def reference_points(
        spatial_shapes: list[tuple[int, int]], n_levels: int, device: torch.device
    ) -> torch.Tensor:
        """Pixel centres of every level, normalised to [0, 1]: 1xSxLx2."""
        points = []
        for height, width in spatial_shapes:
            # arange + 0.5 is linspace(0.5, n - 0.5, n) exactly, and stays symbolic in size
            # when the network is exported with a dynamic input size (linspace does not)
            ref_y, ref_x = torch.meshgrid(
                torch.arange(height, dtype=torch.float32, device=device) + 0.5,
                torch.arange(width, dtype=torch.float32, device=device) + 0.5,
                indexing="ij",
            )
            points.append(torch.stack((ref_x.reshape(-1) / width, ref_y.reshape(-1) / height), -1))
        ref = torch.cat(points, 0)
        return ref[None, :, None, :].expand(1, -1, n_levels, 2)

    def forward(
        self, src: torch.Tensor, pos: torch.Tensor, spatial_shapes: list[tuple[int, int]]
    ) -> torch.Tensor:
        reference = self.reference_points(spatial_shapes, len(spatial_shapes), src.device)
        reference = reference.expand(src.shape[0], -1, -1, -1)
        levels = level_table(spatial_shapes, src.device)  # once for all layers
        for layer in self.layers:
            src = layer(src, pos, reference, spatial_shapes, levels)
        return src


class DeformableTransformer(nn.Module):
    """The encoder plus its learned level embedding (named as in the checkpoint)."""

    def __init__(
        self,
        *,
        d_model: int,
        nhead: int,
        num_encoder_layers: int,
        dim_feedforward: int,
        num_feature_levels: int,
        enc_n_points: int = 4,
    ) -> None:
        super().__init__()
        self.encoder = DeformableEncoder(
            num_layers=num_encoder_layers,
            d_model=d_model,
            d_ffn=dim_feedforward,
            n_levels=num_feature_levels,
            n_heads=nhead,
            n_points=enc_n_points,
        )
        self.level_embed = nn.Parameter(torch.zeros(num_feature_levels, d_model))

    def forward(
        self, srcs: Sequence[torch.Tensor], pos_embeds: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Args: srcs, pos_embeds: per level BxCxHxW. Returns: BxSxC and the level shapes."""
        spatial_shapes = [(s.shape[2], s.shape[3]) for s in srcs]
        src_flat = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], 1)
        pos_flat = torch.cat(
            [
                p.flatten(2).transpose(1, 2) + self.level_embed[lvl].view(1, 1, -1)
                for lvl, p in enumerate(pos_embeds)
            ],
            1,
        )
        return self.encoder(src_flat, pos_flat, spatial_shapes), spatial_shapes


class MSDeformAttnPixelDecoder(nn.Module):
    """Mask2Former's pixel decoder.

    Args:
        input_channels: backbone channels per feature name (res2..res5).
        input_strides: backbone stride per feature name.
        transformer_in_features: names fed to the deformable encoder (res3..res5).
        conv_dim: channels inside the decoder.
        mask_dim: channels of ``mask_features``.
        transformer_nheads, transformer_dim_feedforward, transformer_enc_layers: encoder size.
        common_stride: stride of ``mask_features`` (4).
    """

    def __init__(
        self,
        *,
        input_channels: Mapping[str, int],
        input_strides: Mapping[str, int],
        transformer_in_features: Sequence[str],
        conv_dim: int,
        mask_dim: int,
        transformer_nheads: int,
        transformer_dim_feedforward: int,
        transformer_enc_layers: int,
        common_stride: int,
    ) -> None:
        super().__init__()
        by_stride = sorted(input_channels, key=lambda name: input_strides[name])
        self.in_features = by_stride
        self.transformer_in_features = [n for n in by_stride if n in transformer_in_features]
        # from low to high resolution (res5 -> res3)
        self.input_proj = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(input_channels[name], conv_dim, kernel_size=1),
                nn.GroupNorm(32, conv_dim),
            )
            for name in reversed(self.transformer_in_features)
        )
        self.transformer = DeformableTransformer(
            d_model=conv_dim,
            nhead=transformer_nheads,
            num_encoder_layers=transformer_enc_layers,
            dim_feedforward=transformer_dim_feedforward,
            num_feature_levels=len(self.transformer_in_features),
        )
        self.pe_layer = PositionEmbeddingSine(num_pos_feats=conv_dim // 2)
        self.mask_features = ConvNorm(conv_dim, mask_dim, kernel_size=1)

        min_stride = min(input_strides[n] for n in self.transformer_in_features)
        self.num_fpn_levels = int(math.log2(min_stride) - math.log2(common_stride))
        # adapter_1/layer_1 for the highest resolution FPN input, as named in the checkpoint
        for idx, name in enumerate(self.in_features[: self.num_fpn_levels]):
            lateral = ConvNorm(
                input_channels[name],
                conv_dim,
                kernel_size=1,
                bias=False,
                norm=nn.GroupNorm(32, conv_dim),
            )
            output = ConvNorm(
                conv_dim,
                conv_dim,
                kernel_size=3,
                padding=1,
                bias=False,
                norm=nn.GroupNorm(32, conv_dim),
                activation=F.relu,
            )
            self.add_module(f"adapter_{idx + 1}", lateral)
            self.add_module(f"layer_{idx + 1}", output)

    def forward(
        self, features: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns: mask_features Bx mask_dim x H/4 x W/4, and the encoder's maps from low to
        high resolution, one per transformer input feature (1/32, 1/16, 1/8 for M2FP)."""
        srcs, pos = [], []
        for idx, name in enumerate(reversed(self.transformer_in_features)):
            x = features[name].float()
            srcs.append(self.input_proj[idx](x))
            pos.append(self.pe_layer(x))
        memory, shapes = self.transformer(srcs, pos)
        batch = memory.shape[0]
        outs = [
            level.transpose(1, 2).reshape(batch, -1, h, w)
            for level, (h, w) in zip(
                memory.split([h * w for h, w in shapes], dim=1), shapes, strict=True
            )
        ]
        for idx, name in enumerate(reversed(self.in_features[: self.num_fpn_levels])):
            fpn_idx = self.num_fpn_levels - idx
            lateral = getattr(self, f"adapter_{fpn_idx}")(features[name].float())
            top_down = F.interpolate(
                outs[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False
            )
            outs.append(getattr(self, f"layer_{fpn_idx}")(lateral + top_down))
        return self.mask_features(outs[-1]), outs[: len(self.transformer_in_features)]
