"""The PyTorch engine: the network itself, eager, on its device at its precision.

It is the reference every other engine is compared with, runs on any device PyTorch has, takes
any batch size, and is the fallback for inputs the exported graphs do not cover
(``m2fp.engines.network_input``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from m2fp.compute.options import Precision
from m2fp.compute.precision import compute, prepare_model
from m2fp.modeling.m2fp import M2FP

if TYPE_CHECKING:  # the engine runs on torch alone (benchmarks/gpu_check.py imports it so)
    import numpy as np


class TorchEngine:
    """Class and mask logits of a batch, computed by the network in PyTorch.

    Args:
        model: the network; moved to ``device`` and made channels-last in place
            (``m2fp.compute.precision.prepare_model``).
        precision: fp32 (exact), tf32, fp16 or bf16.
        device: where the network and its inputs live.

    Raises:
        PrecisionUnsupportedError: the device cannot run ``precision``.
    """

    max_batch: int | None = None  # any

    def __init__(self, *, model: M2FP, precision: Precision, device: torch.device) -> None:
        self.model = prepare_model(model, precision, device)
        self.precision = precision
        self.device = device
        # what the parser splits a batch on (m2fp.engines.selection.NetworkEngine)
        self.out_of_memory: tuple[type[BaseException], ...] = (torch.OutOfMemoryError,)

    def __call__(self, images: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            images: Bx3xHxW float32, normalised, zero-padded to multiples of 32: an array on
                the host (``m2fp.processing.preprocess.to_input_array``, moved to ``device``
                here) or a tensor already on ``device``.

        Returns:
            class logits BxQx(K+1) and mask logits BxQxH/4xW/4, float32, on ``device``.
        """
        images = torch.as_tensor(images).to(self.device)
        with compute(self.precision, self.device):
            # channels-last like the conv weights (see m2fp.compute.precision.prepare_model)
            class_logits, mask_logits = self.model(
                images.contiguous(memory_format=torch.channels_last)
            )
        return class_logits.float(), mask_logits.float()
