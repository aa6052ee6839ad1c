"""A convolution followed by an optional norm and activation.

Kept as a ``Conv2d`` subclass with the norm stored as ``<conv>.norm`` so that parameter names
match the ModelScope/detectron2 checkpoint (``backbone.stem.conv1.weight``,
``backbone.stem.conv1.norm.running_mean``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ConvNorm(nn.Conv2d):
    """``Conv2d`` -> ``norm`` -> ``activation``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        norm: nn.Module | None = None,
        activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.norm = norm
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x
