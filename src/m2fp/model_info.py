"""What ``m2fp model info`` reports about a model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from m2fp.build import build_model
from m2fp.checkpoint import find_weights, read_config, sha256_file


def describe(model_dir: Path) -> dict[str, Any]:
    """Config, parameter count, class list and weights hash, without loading the weights."""
    config = read_config(model_dir)
    weights = find_weights(model_dir)
    model = build_model(config)
    return {
        "config": config,
        "parameters": sum(p.numel() for p in model.parameters()),
        "classes": config["classes"],
        "weights_file": weights.name,
        "weights_bytes": weights.stat().st_size,
        "sha256": sha256_file(weights),
    }
