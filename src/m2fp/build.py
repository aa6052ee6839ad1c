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
from m2fp.labels import CIHP_CLASSES, LIP_CLASSES, label_set_of
from m2fp.modeling.backbone import DeepLabResNet
from m2fp.modeling.m2fp import M2FP, M2FPHead
from m2fp.modeling.pixel_decoder import MSDeformAttnPixelDecoder
from m2fp.modeling.transformer_decoder import MaskedTransformerDecoder
from m2fp.task import Task, task_of

# ModelScope's value when a config omits ``parsing_ins_score_thr``
DEFAULT_INS_SCORE_THR = 0.5
# bound on the single-person network input side (the official model uses 384x512)
MAX_SINGLE_HUMAN_SIDE = 4096


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


def _section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = config.get(name)
    if not isinstance(value, Mapping):
        raise ModelConfigError(f"model config: section '{name}' is missing or not an object")
    return value


def _get(section: Mapping[str, Any], where: str, key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in section:
        raise ModelConfigError(f"model config: '{where}.{key}' is missing")
    value = section[key]
    # bool is an int subclass: refuse it where a number is expected
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ModelConfigError(f"model config: '{where}.{key}' has the wrong type")
    return value


def validate_config(config: Mapping[str, Any]) -> None:
    """Raise ModelConfigError unless ``config`` describes a model this package runs: a
    multi-person parsing model (CIHP classes plus "Human", instances pasted into the label
    map) or a single-person one (LIP classes, semantic map on a fixed input), see ``m2fp.task``.
    """
    task = task_of(config)
    classes = config.get("classes")
    decoder = _section(config, "decoder")
    num_classes = _get(decoder, "decoder", "num_classes", int)
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ModelConfigError("model config: 'classes' must be a list of names")
    if len(classes) != num_classes:
        raise ModelConfigError("model config: 'classes' does not match 'decoder.num_classes'")
    try:
        label_set = label_set_of(tuple(classes))
    except ValueError:
        raise ModelConfigError("model config: 'classes' are neither CIHP's nor LIP's") from None
    if task is Task.SINGLE_PERSON:
        _validate_single_person(config, painted=len(label_set.names) == num_classes)
    else:
        _validate_multi_person(config, classes[len(label_set.names) :])


def _validate_multi_person(config: Mapping[str, Any], unpainted: list[str]) -> None:
    if not config.get("parsing_on", False):
        raise ModelConfigError("model config: multi-person models need 'parsing_on'")
    if unpainted != ["Human"]:
        raise ModelConfigError("model config: a multi-person model's last class is 'Human'")
    num_classes = len(config["classes"])
    num_parsing = config.get("num_parsing")
    if not isinstance(num_parsing, int) or num_parsing != num_classes - 1:
        raise ModelConfigError("model config: 'num_parsing' must be num_classes - 1")
    thr = config.get("parsing_ins_score_thr", DEFAULT_INS_SCORE_THR)
    if not isinstance(thr, (int, float)) or not 0.0 <= thr <= 1.0:
        raise ModelConfigError("model config: 'parsing_ins_score_thr' must be in [0, 1]")


def _validate_single_person(config: Mapping[str, Any], *, painted: bool) -> None:
    # the defaults are those of ModelScope's M2FP constructor
    if config.get("parsing_on", False):
        raise ModelConfigError(
            "model config: single-person models with 'parsing_on' are not supported"
        )
    if not config.get("semantic_on", True):
        raise ModelConfigError("model config: single-person models need 'semantic_on'")
    if config.get("sem_seg_postprocess_before_inference", True):
        raise ModelConfigError(
            "model config: single-person models need 'sem_seg_postprocess_before_inference' false"
        )
    if not painted:
        raise ModelConfigError("model config: a single-person model paints every class it has")
    single_person_input_size(config)


def single_person_input_size(config: Mapping[str, Any]) -> tuple[int, int]:
    """(width, height) of a single-person model's network input: the first of
    ``input_single_human.sizes``, the one ModelScope's pipeline uses.

    Raises:
        ModelConfigError: missing, or not positive whole numbers up to 4096.
    """
    section = config.get("input_single_human")
    sizes = section.get("sizes") if isinstance(section, Mapping) else None
    first = sizes[0] if isinstance(sizes, list) and sizes else None
    if (
        not isinstance(first, list)
        or len(first) != 2
        or not all(type(v) is int and 0 < v <= MAX_SINGLE_HUMAN_SIDE for v in first)
    ):
        raise ModelConfigError(
            "model config: 'input_single_human.sizes' must start with [width, height], "
            f"whole numbers from 1 to {MAX_SINGLE_HUMAN_SIDE}"
        )
    return first[0], first[1]


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
        backbone = _backbone(_section(config, "backbone"))
        sem_seg_head = _head(config, backbone)
    # outside the meta context: the constant normalisation buffers must be real
    return M2FP(backbone=backbone, sem_seg_head=sem_seg_head).eval()


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
        depth=_get(b, "backbone", "depth", int),
        out_features=_get(b, "backbone", "out_features", list),
        stem_out_channels=_get(b, "backbone", "stem_out_channels", int),
        res2_out_channels=_get(b, "backbone", "res2_out_channels", int),
        num_groups=_get(b, "backbone", "num_groups", int),
        width_per_group=_get(b, "backbone", "width_per_group", int),
        norm=_get(b, "backbone", "norm", str),
        stride_in_1x1=_get(b, "backbone", "stride_in_1x1", bool),
        res4_dilation=_get(b, "backbone", "res4_dilation", int),
        res5_dilation=_get(b, "backbone", "res5_dilation", int),
        res5_multi_grid=_get(b, "backbone", "res5_multi_grid", list),
    )


def _head(config: Mapping[str, Any], backbone: DeepLabResNet) -> M2FPHead:
    e, d = _section(config, "encoder"), _section(config, "decoder")
    in_features = _get(e, "encoder", "in_features", list)
    missing = [f for f in in_features if f not in backbone.channels]
    if missing:
        raise ModelConfigError(f"model config: encoder reads {missing}, not produced by backbone")
    conv_dim = _get(e, "encoder", "conv_dim", int)
    pixel_decoder = MSDeformAttnPixelDecoder(
        input_channels={f: backbone.channels[f] for f in in_features},
        input_strides={f: backbone.strides[f] for f in in_features},
        transformer_in_features=_get(e, "encoder", "transformer_in_features", list),
        conv_dim=conv_dim,
        mask_dim=_get(e, "encoder", "mask_dim", int),
        transformer_nheads=_get(e, "encoder", "transformer_nheads", int),
        transformer_dim_feedforward=_get(e, "encoder", "transformer_dim_feedforward", int),
        transformer_enc_layers=_get(e, "encoder", "transformer_enc_layers", int),
        common_stride=_get(e, "encoder", "common_stride", int),
    )
    if _get(d, "decoder", "pre_norm", bool):
        raise ModelConfigError("model config: 'decoder.pre_norm' models are not supported")
    predictor = MaskedTransformerDecoder(
        in_channels=conv_dim,
        num_classes=_get(d, "decoder", "num_classes", int),
        hidden_dim=_get(d, "decoder", "hidden_dim", int),
        num_queries=_get(d, "decoder", "num_queries", int),
        nheads=_get(d, "decoder", "nheads", int),
        dim_feedforward=_get(d, "decoder", "dim_feedforward", int),
        dec_layers=_get(d, "decoder", "dec_layers", int),
        mask_dim=_get(d, "decoder", "mask_dim", int),
        enforce_input_project=_get(d, "decoder", "enforce_input_project", bool),
    )
    return M2FPHead(pixel_decoder=pixel_decoder, predictor=predictor)
