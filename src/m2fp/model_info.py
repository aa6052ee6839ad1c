"""What ``m2fp model info`` (and ``m2fp model verify``) report about a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from m2fp.build import build_model
from m2fp.checkpoint import check_state_dict, find_weights, read_config, sha256_file


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


def describe_protected(path: Path, *, key: bytes | str | None) -> dict[str, Any]:
    """The same report for an encrypted weights file, after checking the key, every chunk's
    tag, the hash and that the weights fit the network (which gets no weights loaded)."""
    # needs the crypto extra: imported only for protected files
    from m2fp.protection.loading import open_protected

    with open_protected(path, key=key) as weights:
        with torch.device("meta"):  # shapes only: the skeleton costs no memory
            model = build_model(weights.config)
        check_state_dict(model, weights.state_dict)
        return {
            "config": weights.config,
            "parameters": sum(p.numel() for p in model.parameters()),
            "classes": weights.config["classes"],
            "weights_file": path.name,
            "weights_bytes": weights.plaintext_bytes,
            "sha256": weights.sha256,
            "protection": weights.protection,
        }
