"""Masked-attention transformer decoder (Mask2Former) that turns queries into class logits and
mask logits.

Frames: queries BxQxC; ``mask_features`` Bx mask_dim x H/4 x W/4; the three memory levels at
1/32, 1/16, 1/8 of the padded input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from m2fp.modeling.position_encoding import PositionEmbeddingSine


def _full_precision(tensor: torch.Tensor) -> contextlib.AbstractContextManager[object]:
    """Autocast switched off on ``tensor``'s device while it is on: the output heads compute
    in float32 whatever precision the rest of the network runs at. Nothing otherwise, so the
    fp32 graph (and what exporters trace of it) stays as it is."""
    device = tensor.device.type
    if torch.is_autocast_enabled(device):
        return torch.autocast(device, enabled=False)
    return contextlib.nullcontext()


class MultiheadAttention(nn.Module):
    """Attention with ``nn.MultiheadAttention``'s parameter names, batch-first, on SDPA.

    Args:
        embed_dim: channels.
        num_heads: heads; ``embed_dim`` must divide evenly.
    """

    def __init__(self, *, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        blocked: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            query: BxQxC; key, value: BxKxC.
            blocked: BxMxQxK boolean, True where attention is not allowed.

        Returns: BxQxC.
        """
        batch, q_len, _ = query.shape
        k_len = key.shape[1]
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        heads, head_dim = self.num_heads, self.embed_dim // self.num_heads
        q = F.linear(query, w_q, b_q).view(batch, q_len, heads, head_dim).transpose(1, 2)
        k = F.linear(key, w_k, b_k).view(batch, k_len, heads, head_dim).transpose(1, 2)
        v = F.linear(value, w_v, b_v).view(batch, k_len, heads, head_dim).transpose(1, 2)
        allowed = None if blocked is None else ~blocked
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.out_proj(out.transpose(1, 2).reshape(batch, q_len, self.embed_dim))


class CrossAttentionLayer(nn.Module):
    """Queries attend to one memory level, post-norm."""

    def __init__(self, *, d_model: int, nhead: int) -> None:
        super().__init__()
        self.multihead_attn = MultiheadAttention(embed_dim=d_model, num_heads=nhead)
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        *,
        blocked: torch.Tensor | None,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
    ) -> torch.Tensor:
        attended = self.multihead_attn(tgt + query_pos, memory + pos, memory, blocked)
        return self.norm(tgt + attended)


class SelfAttentionLayer(nn.Module):
    """Queries attend to each other, post-norm."""

    def __init__(self, *, d_model: int, nhead: int) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dim=d_model, num_heads=nhead)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt: torch.Tensor, *, query_pos: torch.Tensor) -> torch.Tensor:
        q = tgt + query_pos
        return self.norm(tgt + self.self_attn(q, q, tgt))


class FFNLayer(nn.Module):
    """Two-layer ReLU MLP with a residual, post-norm."""

    def __init__(self, *, d_model: int, dim_feedforward: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them."""

    def __init__(self, *, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for idx, layer in enumerate(self.layers):
            x = layer(x)
            if idx < len(self.layers) - 1:
                x = F.relu(x)
        return x


class MaskedTransformerDecoder(nn.Module):
    """Queries refined layer by layer, each cross-attention restricted to the previous layer's
    predicted foreground (masked attention).

    Args:
        in_channels: channels of the memory levels (pixel decoder ``conv_dim``).
        num_classes: classes without the "no object" class.
        hidden_dim: query channels.
        num_queries: number of queries.
        nheads: attention heads.
        dim_feedforward: FFN width.
        dec_layers: decoder layers.
        mask_dim: channels of ``mask_features``.
        enforce_input_project: project memory even when ``in_channels == hidden_dim``.
    """

    num_feature_levels = 3

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        hidden_dim: int,
        num_queries: int,
        nheads: int,
        dim_feedforward: int,
        dec_layers: int,
        mask_dim: int,
        enforce_input_project: bool,
    ) -> None:
        super().__init__()
        self.num_heads = nheads
        self.num_classes = num_classes
        self.num_queries = num_queries
        self.pe_layer = PositionEmbeddingSine(num_pos_feats=hidden_dim // 2)
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(d_model=hidden_dim, nhead=nheads) for _ in range(dec_layers)
        )
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(d_model=hidden_dim, nhead=nheads) for _ in range(dec_layers)
        )
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer(d_model=hidden_dim, dim_feedforward=dim_feedforward) for _ in range(dec_layers)
        )
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(self.num_feature_levels, hidden_dim)
        project = in_channels != hidden_dim or enforce_input_project
        self.input_proj = nn.ModuleList(
            nn.Conv2d(in_channels, hidden_dim, kernel_size=1) if project else nn.Identity()
            for _ in range(self.num_feature_levels)
        )
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(
            input_dim=hidden_dim, hidden_dim=hidden_dim, output_dim=mask_dim, num_layers=3
        )

    def forward(
        self, features: Sequence[torch.Tensor], mask_features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            features: three maps BxCxH_lxW_l (1/32, 1/16, 1/8).
            mask_features: Bx mask_dim x H/4 x W/4.

        Returns:
            class logits BxQx(K+1) and mask logits BxQxH/4xW/4 of the last layer.
        """
        if len(features) != self.num_feature_levels:
            raise ValueError(f"expected {self.num_feature_levels} feature levels")
        memories, positions, sizes = [], [], []
        for lvl, feature in enumerate(features):
            sizes.append((feature.shape[-2], feature.shape[-1]))
            positions.append(self.pe_layer(feature).flatten(2).transpose(1, 2))
            memory = self.input_proj[lvl](feature).flatten(2).transpose(1, 2)
            memories.append(memory + self.level_embed.weight[lvl][None, None, :])

        batch = mask_features.shape[0]
        query_pos = self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1)
        output = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)

        # Bilinear resizing is linear and acts per channel, so resizing mask_features to each
        # memory level once and applying a layer's mask embedding to that equals resizing the
        # layer's full-size mask logits: only the last layer's masks are needed at 1/4 size.
        level_features = [
            F.interpolate(mask_features, size=size, mode="bilinear", align_corners=False)
            for size in sizes
        ]
        blocked = self.attention_block(self.mask_logits(output, level_features[0]))
        num_layers = len(self.transformer_ffn_layers)
        for idx in range(num_layers):
            lvl = idx % self.num_feature_levels
            output = self.transformer_cross_attention_layers[idx](
                output, memories[lvl], blocked=blocked, pos=positions[lvl], query_pos=query_pos
            )
            output = self.transformer_self_attention_layers[idx](output, query_pos=query_pos)
            output = self.transformer_ffn_layers[idx](output)
            if idx < num_layers - 1:
                next_lvl = (idx + 1) % self.num_feature_levels
                blocked = self.attention_block(self.mask_logits(output, level_features[next_lvl]))
        with _full_precision(output):
            class_logits = self.class_embed(self.decoder_norm(output.float()))
        return class_logits, self.mask_logits(output, mask_features)

    def mask_logits(self, output: torch.Tensor, mask_features: torch.Tensor) -> torch.Tensor:
        """Mask logits of every query at the size of ``mask_features``: BxQxHxW, float32.

        In float32 even under autocast: bf16 rounds logits of 10-30 in steps of 0.06-0.125,
        enough to move a score across the 0.1/0.3 thresholds, and the attention blocks of
        the next layer are decided by their sign."""
        with _full_precision(output):
            mask_embed = self.mask_embed(self.decoder_norm(output.float()))
            # channels last: a view of channels-last features, so no transposing copy of them
            features = mask_features.permute(0, 2, 3, 1).float()
            return torch.einsum("bqc,bhwc->bqhw", mask_embed, features)

    def attention_block(self, masks: torch.Tensor) -> torch.Tensor:
        """Masked attention for the next layer from mask logits at its memory level's size
        BxQxH_lxW_l: BxMxQx(H_l*W_l), True where blocked."""
        blocked = (masks.sigmoid().flatten(2) < 0.5).unsqueeze(1)
        # a query that would see nothing sees everything instead
        blocked = blocked & ~blocked.all(-1, keepdim=True)
        return blocked.expand(-1, self.num_heads, -1, -1)
