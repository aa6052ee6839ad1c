"""The facts ``m2fp model info`` reports about a model's weights, made in one place whether
they come from the network (``ModelWeights.describe``) or, without PyTorch, from the
safetensors layout (``m2fp.weights.model_report``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from m2fp.labels import label_set_of
from m2fp.task import task_of

# state_dict entries that are BatchNorm statistics (buffers), not parameters
BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


def parameter_count(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """The parameters of a network whose state_dict has ``shapes`` (name -> shape): every
    entry but the BatchNorm statistics, which are buffers. Equals ``sum(p.numel() for p in
    model.parameters())`` for every preset (tested), without building the network."""
    total = 0
    for name, shape in shapes.items():
        if not name.endswith(BUFFER_SUFFIXES):
            count = 1
            for dimension in shape:
                count *= dimension
            total += count
    return total


def describe_weights(
    *,
    config: dict[str, Any],
    parameters: int,
    weights_file: str,
    weights_bytes: int,
    sha256: str,
    protection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What ``m2fp model info`` prints about the weights: config, parameter count, task,
    label set, classes, the weights file, its length and digest, and protection if any."""
    report = {
        "config": config,
        "parameters": parameters,
        "task": task_of(config).value,
        "label_set": label_set_of(tuple(config["classes"])).name,
        "classes": config["classes"],
        "weights_file": weights_file,
        "weights_bytes": weights_bytes,
        "sha256": sha256,
    }
    if protection is not None:
        report["protection"] = protection
    return report
