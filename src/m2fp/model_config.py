"""The facts of a ModelScope ``model`` config section that running a model needs, without
PyTorch: its validation, the single-person input size and the normalisation constants.

``m2fp.build`` builds the network from the same section; this half stays free of torch so the
slim runtime (an OpenVINO package, no network) validates a config exactly as the full one does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from m2fp.errors import ModelConfigError
from m2fp.labels import label_set_of
from m2fp.task import Task, task_of

# ModelScope's value when a config omits ``parsing_ins_score_thr``
DEFAULT_INS_SCORE_THR = 0.5
# bound on the single-person network input side (the official model uses 384x512)
MAX_SINGLE_HUMAN_SIDE = 4096
# per-channel normalisation of the network input in 0-255 RGB (ImageNet's, as M2FP trained);
# no checkpoint holds them
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


def config_section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = config.get(name)
    if not isinstance(value, Mapping):
        raise ModelConfigError(f"model config: section '{name}' is missing or not an object")
    return value


def config_value(
    section: Mapping[str, Any], where: str, key: str, kind: type | tuple[type, ...]
) -> Any:
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
    decoder = config_section(config, "decoder")
    num_classes = config_value(decoder, "decoder", "num_classes", int)
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
