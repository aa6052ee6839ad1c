"""ResNet with the DeepLab stem (three 3x3 convs), as used by M2FP.

Frames: input BxCxHxW at input size; outputs ``res2``..``res5`` at 1/4, 1/8, 1/16, 1/32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from m2fp.modeling.conv_norm import ConvNorm

BLOCKS_PER_STAGE = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
STAGE_NAMES = ("res2", "res3", "res4", "res5")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "BN":
        return nn.BatchNorm2d(channels)
    if kind == "GN":
        return nn.GroupNorm(32, channels)
    raise ValueError(f"unsupported backbone norm {kind!r} (expected 'BN' or 'GN')")


class DeepLabStem(nn.Module):
    """Three 3x3 convs and a max-pool: stride 4."""

    def __init__(self, *, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        half = out_channels // 2
        self.conv1 = ConvNorm(
            in_channels,
            half,
            kernel_size=3,
            stride=2,
            padding=1,
            bias=False,
            norm=_norm(norm, half),
        )
        self.conv2 = ConvNorm(
            half, half, kernel_size=3, stride=1, padding=1, bias=False, norm=_norm(norm, half)
        )
        self.conv3 = ConvNorm(
            half,
            out_channels,
            kernel_size=3,
            stride=1,
            padding=1,
            bias=False,
            norm=_norm(norm, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        x = F.relu_(self.conv2(x))
        x = F.relu_(self.conv3(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, dilated) -> 1x1 with a projection shortcut when shapes change."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        bottleneck_channels: int,
        stride: int,
        dilation: int,
        num_groups: int,
        norm: str,
        stride_in_1x1: bool,
    ) -> None:
        super().__init__()
        if in_channels != out_channels:
            self.shortcut: ConvNorm | None = ConvNorm(
                in_channels,
                out_channels,
                kernel_size=1,
                stride=stride,
                bias=False,
                norm=_norm(norm, out_channels),
            )
        else:
            self.shortcut = None
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = ConvNorm(
            in_channels,
            bottleneck_channels,
            kernel_size=1,
            stride=stride_1x1,
            bias=False,
            norm=_norm(norm, bottleneck_channels),
        )
        self.conv2 = ConvNorm(
            bottleneck_channels,
            bottleneck_channels,
            kernel_size=3,
            stride=stride_3x3,
            padding=dilation,
            dilation=dilation,
            groups=num_groups,
            bias=False,
            norm=_norm(norm, bottleneck_channels),
        )
        self.conv3 = ConvNorm(
            bottleneck_channels,
            out_channels,
            kernel_size=1,
            bias=False,
            norm=_norm(norm, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu_(out + shortcut)


class DeepLabResNet(nn.Module):
    """DeepLab-stem ResNet returning the feature maps named in ``out_features``.

    Args:
        depth: 50, 101 or 152.
        stem_out_channels: channels after the stem (128 for M2FP R101).
        res2_out_channels: channels of ``res2``; doubled per stage.
        num_groups, width_per_group: bottleneck width is their product at ``res2``.
        res4_dilation, res5_dilation: 1 keeps stride 2 at that stage; more trades stride for
            dilation.
        res5_multi_grid: per-block dilation multipliers in ``res5``.
    """

    def __init__(
        self,
        *,
        depth: int,
        out_features: Sequence[str],
        stem_out_channels: int,
        res2_out_channels: int,
        num_groups: int,
        width_per_group: int,
        norm: str,
        stride_in_1x1: bool,
        res4_dilation: int,
        res5_dilation: int,
        res5_multi_grid: Sequence[int],
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if depth not in BLOCKS_PER_STAGE:
            raise ValueError(f"unsupported ResNet depth {depth} (expected 50, 101 or 152)")
        unknown = [f for f in out_features if f not in STAGE_NAMES]
        if unknown:
            raise ValueError(f"unknown backbone out_features {unknown}")
        if res4_dilation not in (1, 2) or res5_dilation not in (1, 2, 4):
            raise ValueError("res4_dilation must be 1 or 2 and res5_dilation 1, 2 or 4")
        blocks_per_stage = BLOCKS_PER_STAGE[depth]
        if len(res5_multi_grid) != blocks_per_stage[3]:
            raise ValueError(f"res5_multi_grid needs {blocks_per_stage[3]} entries")

        self.out_features = tuple(out_features)
        self.stem = DeepLabStem(in_channels=in_channels, out_channels=stem_out_channels, norm=norm)
        self.channels: dict[str, int] = {}
        self.strides: dict[str, int] = {}

        num_stages = max(STAGE_NAMES.index(f) for f in out_features) + 1
        stage_in, stage_out = stem_out_channels, res2_out_channels
        bottleneck = num_groups * width_per_group
        stride = 4
        self.stage_names: tuple[str, ...] = STAGE_NAMES[:num_stages]
        for idx, name in enumerate(self.stage_names):
            dilation = {2: res4_dilation, 3: res5_dilation}.get(idx, 1)
            first_stride = 1 if idx == 0 or dilation > 1 else 2
            dilations = (
                [dilation * m for m in res5_multi_grid]
                if idx == 3
                else [dilation] * blocks_per_stage[idx]
            )
            blocks = []
            for block_idx in range(blocks_per_stage[idx]):
                blocks.append(
                    Bottleneck(
                        in_channels=stage_in if block_idx == 0 else stage_out,
                        out_channels=stage_out,
                        bottleneck_channels=bottleneck,
                        stride=first_stride if block_idx == 0 else 1,
                        dilation=dilations[block_idx],
                        num_groups=num_groups,
                        norm=norm,
                        stride_in_1x1=stride_in_1x1,
                    )
                )
            self.add_module(name, nn.Sequential(*blocks))
            stride *= first_stride
            self.channels[name] = stage_out
            self.strides[name] = stride
            stage_in, stage_out, bottleneck = stage_out, stage_out * 2, bottleneck * 2

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args: x: Bx3xHxW normalised image. Returns: name -> BxCx(H/s)x(W/s)."""
        outputs: dict[str, torch.Tensor] = {}
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
            if name in self.out_features:
                outputs[name] = x
        return outputs
