"""The network as a graph: ``torch.export`` with a dynamic input height and width.

Both the OpenVINO converter and the ONNX exporter start from these exported programs, so every
engine runs the same graph and one conversion serves every input size M2FP produces (the short
side 640 and any long side up to 1344, or anything else ``min_size``/``max_size`` allow).

Parts: ``network`` (image -> logits, masks), ``backbone`` (image -> res2..res5) and ``head``
(res2..res5 -> logits, masks). The int8 mode quantises the backbone alone and keeps the head
in fp32, so the two halves are exported separately.
"""

from __future__ import annotations

import copy
import enum

import torch
from torch import nn
from torch.export import Dim, ExportedProgram

from m2fp.engines.network_input import SIDE_MAX, SIDE_MIN
from m2fp.modeling.m2fp import M2FP, SIZE_DIVISIBILITY
from m2fp.modeling.ms_deform_attn import (
    MSDeformAttn,
    ms_deform_attn_sample,
    ms_deform_attn_sample_grid,
)

FEATURES = ("res2", "res3", "res4", "res5")
# the example the graph is traced with; the exported sizes stay symbolic
EXAMPLE_SIZE = (4 * SIZE_DIVISIBILITY, 6 * SIZE_DIVISIBILITY)


class Sampler(str, enum.Enum):
    """Deformable-attention sampling in the exported graph: the same values either way.

    ``gather`` is the fast ``embedding_bag`` formulation (OpenVINO runs it); ``grid`` is the
    ``grid_sample`` one, which the ONNX exporter can express.
    """

    GATHER = "gather"
    GRID = "grid"


SAMPLERS = {Sampler.GATHER: ms_deform_attn_sample, Sampler.GRID: ms_deform_attn_sample_grid}


class Backbone(nn.Module):
    """The backbone with its four maps as a tuple (graphs have positional outputs)."""

    def __init__(self, *, model: M2FP) -> None:
        super().__init__()
        self.backbone = model.backbone

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.backbone(images)
        return tuple(features[name] for name in FEATURES)


class Head(nn.Module):
    """Pixel decoder and transformer decoder from the four backbone maps as inputs."""

    def __init__(self, *, model: M2FP) -> None:
        super().__init__()
        self.sem_seg_head = model.sem_seg_head

    def forward(
        self, res2: torch.Tensor, res3: torch.Tensor, res4: torch.Tensor, res5: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sem_seg_head({"res2": res2, "res3": res3, "res4": res4, "res5": res5})


def with_sampler(model: M2FP, sampler: Sampler) -> M2FP:
    """``model`` itself for the gather sampler, else a copy that samples with ``sampler``.

    A copy, so a model that is serving requests meanwhile is never changed under them.
    """
    if sampler is Sampler.GATHER:
        return model
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if isinstance(module, MSDeformAttn):
            module.sampler = SAMPLERS[sampler]
    return twin


def _cells() -> tuple[Dim, Dim]:
    """Rows and columns of the 1/32 grid (the res5 map) as symbols."""
    low, high = SIDE_MIN // SIZE_DIVISIBILITY, SIDE_MAX // SIZE_DIVISIBILITY
    return Dim("rows32", min=low, max=high), Dim("cols32", min=low, max=high)


def _size_dims() -> tuple[Dim, Dim]:
    """Input height and width: 32 x the symbolic 1/32 grid."""
    rows, cols = _cells()
    return SIZE_DIVISIBILITY * rows, SIZE_DIVISIBILITY * cols


def _example(model: M2FP) -> torch.Tensor:
    parameter = next(model.parameters())
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(1, 3, *EXAMPLE_SIZE, generator=generator)
    return example.to(device=parameter.device, dtype=torch.float32)


def export_network(model: M2FP, *, sampler: Sampler = Sampler.GATHER) -> ExportedProgram:
    """The whole network, input ``images`` 1x3xHxW with symbolic H and W.

    Returns: a program mapping ``images`` to (class logits 1xQx(K+1), mask logits
    1xQxH/4xW/4), the contract of ``M2FP.forward``.
    """
    net = with_sampler(model, sampler).eval()
    height, width = _size_dims()
    with torch.no_grad():
        return torch.export.export(
            net, (_example(model),), dynamic_shapes={"images": {2: height, 3: width}}, strict=False
        )


def export_backbone(model: M2FP) -> ExportedProgram:
    """The backbone alone: ``images`` 1x3xHxW -> (res2, res3, res4, res5) at 1/4 .. 1/32."""
    height, width = _size_dims()
    with torch.no_grad():
        return torch.export.export(
            Backbone(model=model).eval(),
            (_example(model),),
            dynamic_shapes={"images": {2: height, 3: width}},
            strict=False,
        )


def export_head(model: M2FP) -> ExportedProgram:
    """The head alone: (res2, res3, res4, res5) -> (class logits, mask logits)."""
    with torch.no_grad():
        features = Backbone(model=model).eval()(_example(model))
    rows, cols = _cells()
    # res_k is at 1/2^(k+1): 8, 4, 2, 1 times the 1/32 grid
    dynamic = {
        name: {2: scale * rows, 3: scale * cols}
        for name, scale in zip(FEATURES, (8, 4, 2, 1), strict=True)
    }
    with torch.no_grad():
        return torch.export.export(
            Head(model=model).eval(), features, dynamic_shapes=dynamic, strict=False
        )
