"""M2FP: backbone -> pixel decoder -> masked transformer decoder.

The module tree mirrors ModelScope's so the official checkpoint loads with ``strict=True``:
``backbone.*``, ``sem_seg_head.pixel_decoder.*``, ``sem_seg_head.predictor.*``.
"""

from __future__ import annotations

import torch
from torch import nn

from m2fp.modeling.backbone import DeepLabResNet
from m2fp.modeling.pixel_decoder import MSDeformAttnPixelDecoder
from m2fp.modeling.transformer_decoder import MaskedTransformerDecoder

SIZE_DIVISIBILITY = 32


class M2FPHead(nn.Module):
    """Pixel decoder and transformer decoder, grouped as in the checkpoint."""

    def __init__(
        self, *, pixel_decoder: MSDeformAttnPixelDecoder, predictor: MaskedTransformerDecoder
    ) -> None:
        super().__init__()
        self.pixel_decoder = pixel_decoder
        self.predictor = predictor

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        mask_features, multi_scale = self.pixel_decoder(features)
        return self.predictor(multi_scale, mask_features)


class M2FP(nn.Module):
    """Mask2Former for Parsing.

    Args:
        backbone: feature extractor returning ``res2``..``res5``.
        sem_seg_head: pixel decoder plus transformer decoder.
        pixel_mean, pixel_std: per-channel normalisation in 0-255 RGB.
    """

    size_divisibility = SIZE_DIVISIBILITY

    def __init__(
        self,
        *,
        backbone: DeepLabResNet,
        sem_seg_head: M2FPHead,
        pixel_mean: tuple[float, float, float],
        pixel_std: tuple[float, float, float],
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        # not in the checkpoint: persistent=False keeps strict loading exact
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @property
    def num_classes(self) -> int:
        return self.sem_seg_head.predictor.num_classes

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            images: Bx3xHxW normalised, H and W multiples of 32 (zero padding).

        Returns:
            ``pred_logits`` BxQx(K+1) and ``pred_masks`` BxQxH/4xW/4 (logits).
        """
        if images.shape[-2] % self.size_divisibility or images.shape[-1] % self.size_divisibility:
            raise ValueError(f"input sides must be multiples of {self.size_divisibility}")
        return self.sem_seg_head(self.backbone(images))
