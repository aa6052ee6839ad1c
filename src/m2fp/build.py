"""Build M2FP networks from a ModelScope ``configuration.json`` ``model`` section or a preset.

The literal hyperparameters of the official checkpoint live here and nowhere else.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from m2fp.errors import ModelConfigError
from m2fp.labels import CIHP_CLASSES, LIP_CLASSES
from m2fp.model_config import (
    PIXEL_MEAN,
    PIXEL_STD,
    config_section,
    config_value,
    validate_config,
)
from m2fp.modeling.backbone import DeepLabResNet
from m2fp.modeling.m2fp import M2FP, M2FPHead
from m2fp.modeling.pixel_decoder import MSDeformAttnPixelDecoder
from m2fp.modeling.transformer_decoder import MaskedTransformerDecoder


def m2fp_r101_cihp() -> dict[str, Any]:
    """``model`` section of ``damo/cv_resnet101_image-multiple-human-parsing`` (63.1M params)."""
    return {
        "type": "m2fp",
        "backbone": {
            "out_features": ["res2", "res3", "res4", "res5"],
            "depth": 101,
            "num_groups": 1,
            "width_per_group": 64,
            "norm": "BN",
            "stem_out_channels": 128,
            "res2_out_channels": 256,
            "stride_in_1x1": False,
            "res4_dilation": 1,
            "res5_dilation": 1,
            "res5_multi_grid": [1, 1, 1],
        },
        "encoder": {
            "in_features": ["res2", "res3", "res4", "res5"],
            "transformer_dropout": 0.0,
            "transformer_nheads": 8,
            "transformer_dim_feedforward": 1024,
            "transformer_enc_layers": 6,
            "conv_dim": 256,
            "mask_dim": 256,
            "transformer_in_features": ["res3", "res4", "res5"],
            "common_stride": 4,
        },
        "decoder": {
            "num_classes": 21,
            "hidden_dim": 256,
            "num_queries": 100,
            "nheads": 8,
            "dim_feedforward": 2048,
            "dec_layers": 9,
            "pre_norm": False,
            "mask_dim": 256,
            "enforce_input_project": False,
        },
        "classes": list(CIHP_CLASSES),
        "num_parsing": 20,
        "single_human": False,
        "parsing_on": True,
        "semantic_on": False,
        "parsing_ins_score_thr": 0.3,
        "sem_seg_postprocess_before_inference": True,
    }


def m2fp_r101_lip() -> dict[str, Any]:
    """``model`` section of ``damo/cv_resnet101_image-single-human-parsing`` (R101, LIP).

    The same network as the multi-person model with 20 classes (LIP's, no "Human"), run on a
    fixed 384x512 (width x height) input: the ``INPUT.SINGLE_HUMAN.SIZES`` of M2FP's LIP
    configuration, which ModelScope's ``input_single_human`` carries over. The checkpoint's own
    ``configuration.json`` is what loading uses; this preset is for building and benchmarks.
    """
    config = m2fp_r101_cihp()
    config["decoder"]["num_classes"] = 20
    for key in ("num_parsing", "parsing_ins_score_thr"):
        del config[key]
    config.update(
        classes=list(LIP_CLASSES),
        input_single_human={"sizes": [[384, 512]]},
        single_human=True,
        parsing_on=False,
        semantic_on=True,
        sem_seg_postprocess_before_inference=False,
    )
    return config


PRESETS: dict[str, Callable[[], dict[str, Any]]] = {
    "m2fp_r101_cihp": m2fp_r101_cihp,
    "m2fp_r101_lip": m2fp_r101_lip,
}


def preset(name: str) -> dict[str, Any]:
    """A fresh copy of a named preset's ``model`` section."""
    if name not in PRESETS:
        raise ModelConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return copy.deepcopy(PRESETS[name]())


def build_model(config: Mapping[str, Any], *, empty: bool = False) -> M2FP:
    """An M2FP network (eval mode) for a ModelScope ``model`` config section.

    Args:
        config: the ``model`` section.
        empty: leave the parameters on the meta device (no memory, no random init: a skeleton
            for shape checks, or to take a state_dict with ``load_state_dict(assign=True)``).
            The normalisation constants, which no checkpoint holds, are real either way.
            Otherwise parameters are randomly initialised on the CPU.

    Raises:
        ModelConfigError: a key is missing, mistyped or unsupported.
    """
    validate_config(config)
    with _EmptyParameters() if empty else contextlib.nullcontext():
        backbone = _backbone(config_section(config, "backbone"))
        sem_seg_head = _head(config, backbone)
    # outside the meta context: the constant normalisation buffers must be real
    return M2FP(
        backbone=backbone, sem_seg_head=sem_seg_head, pixel_mean=PIXEL_MEAN, pixel_std=PIXEL_STD
    ).eval()


class _EmptyParameters(TorchFunctionMode):
    """Parameters made on the meta device, and ``torch.nn.init`` calls skipped.

    Nothing of an empty skeleton is ever read, so initialising it is wasted work, and on the
    meta device ``init.normal_`` (``nn.Embedding``) runs through a decomposition that imports
    ``torch._dynamo``: seconds of start-up and a cache directory created under ``$TMPDIR``.
    """

    def __enter__(self) -> _EmptyParameters:
        self._device = torch.device("meta")
        self._device.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._device.__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))


def _backbone(b: Mapping[str, Any]) -> DeepLabResNet:
    return DeepLabResNet(
        depth=config_value(b, "backbone", "depth", int),
        out_features=config_value(b, "backbone", "out_features", list),
        stem_out_channels=config_value(b, "backbone", "stem_out_channels", int),
        res2_out_channels=config_value(b, "backbone", "res2_out_channels", int),
        num_groups=config_value(b, "backbone", "num_groups", int),
        width_per_group=config_value(b, "backbone", "width_per_group", int),
        norm=config_value(b, "backbone", "norm", str),
        stride_in_1x1=config_value(b, "backbone", "stride_in_1x1", bool),
        res4_dilation=config_value(b, "backbone", "res4_dilation", int),
        res5_dilation=config_value(b, "backbone", "res5_dilation", int),
        res5_multi_grid=config_value(b, "backbone", "res5_multi_grid", list),
    )


def _head(config: Mapping[str, Any], backbone: DeepLabResNet) -> M2FPHead:
    e, d = config_section(config, "encoder"), config_section(config, "decoder")
    in_features = config_value(e, "encoder", "in_features", list)
    missing = [f for f in in_features if f not in backbone.channels]
    if missing:
        raise ModelConfigError(f"model config: encoder reads {missing}, not produced by backbone")
    conv_dim = config_value(e, "encoder", "conv_dim", int)
    pixel_decoder = MSDeformAttnPixelDecoder(
        input_channels={f: backbone.channels[f] for f in in_features},
        input_strides={f: backbone.strides[f] for f in in_features},
        transformer_in_features=config_value(e, "encoder", "transformer_in_features", list),
        conv_dim=conv_dim,
        mask_dim=config_value(e, "encoder", "mask_dim", int),
        transformer_nheads=config_value(e, "encoder", "transformer_nheads", int),
        transformer_dim_feedforward=config_value(e, "encoder", "transformer_dim_feedforward", int),
        transformer_enc_layers=config_value(e, "encoder", "transformer_enc_layers", int),
        common_stride=config_value(e, "encoder", "common_stride", int),
    )
    if config_value(d, "decoder", "pre_norm", bool):
        raise ModelConfigError("model config: 'decoder.pre_norm' models are not supported")
    predictor = MaskedTransformerDecoder(
        in_channels=conv_dim,
        num_classes=config_value(d, "decoder", "num_classes", int),
        hidden_dim=config_value(d, "decoder", "hidden_dim", int),
        num_queries=config_value(d, "decoder", "num_queries", int),
        nheads=config_value(d, "decoder", "nheads", int),
        dim_feedforward=config_value(d, "decoder", "dim_feedforward", int),
        dec_layers=config_value(d, "decoder", "dec_layers", int),
        mask_dim=config_value(d, "decoder", "mask_dim", int),
        enforce_input_project=config_value(d, "decoder", "enforce_input_project", bool),
    )
    return M2FPHead(pixel_decoder=pixel_decoder, predictor=predictor)
