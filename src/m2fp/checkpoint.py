"""Finding and safely loading M2FP weights: no pickle code paths, strict keys, sha256.

A ModelScope model directory holds ``configuration.json`` and ``pytorch_model.pt`` (a dict
whose ``model`` entry is the state_dict) or ``model.safetensors``. ``.pt`` files are read with
``torch.load(weights_only=True)``, which refuses every object that is not plain tensor data.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors_bytes
from torch import nn
from torch.torch_version import TorchVersion

from m2fp.build import build_model, validate_config
from m2fp.errors import CheckpointError, ModelConfigError, ModelNotFoundError

CONFIG_FILE = "configuration.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.pt")
KEYS_SHOWN = 8
# weights_only=True could still run code before 2.6 (CVE-2025-32434)
MIN_SAFE_TORCH = "2.6"


@dataclass(frozen=True)
class LoadedWeights:
    """A state_dict with where it came from.

    Attributes:
        state_dict: parameter name -> tensor.
        sha256: hex digest of the weights file's bytes.
        source: file name (not the full path) the weights came from.
    """

    state_dict: dict[str, torch.Tensor]
    sha256: str
    source: str


def find_weights(model_dir: Path) -> Path:
    """The weights file inside a model directory (safetensors preferred)."""
    for name in WEIGHT_FILES:
        candidate = model_dir / name
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        f"no weights in the model directory (expected {' or '.join(WEIGHT_FILES)}); "
        "run 'm2fp model download' to fetch them"
    )


def read_config(model_dir: Path) -> dict[str, Any]:
    """The ``model`` section of ``configuration.json``."""
    path = model_dir / CONFIG_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelConfigError(f"no {CONFIG_FILE} in the model directory") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelConfigError(f"{CONFIG_FILE} is not valid JSON") from exc
    section = document.get("model") if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise ModelConfigError(f"{CONFIG_FILE} has no 'model' section")
    validate_config(section)
    return section


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_safe_torch() -> None:
    """Refuse to unpickle anything on a torch whose ``weights_only=True`` can be bypassed."""
    if TorchVersion(torch.__version__) < MIN_SAFE_TORCH:
        raise CheckpointError(
            f"torch {torch.__version__} cannot load weights safely (CVE-2025-32434); "
            f"install torch>={MIN_SAFE_TORCH}"
        )


def state_dict_from_bytes(data: bytes, *, kind: str) -> dict[str, torch.Tensor]:
    """Parse weights held in memory.

    Args:
        data: file contents.
        kind: ``"safetensors"`` or ``"pt"``.
    """
    if kind == "safetensors":
        try:
            return load_safetensors_bytes(data)
        except Exception as exc:  # safetensors raises its own untyped errors
            raise CheckpointError("the safetensors weights could not be parsed") from exc
    require_safe_torch()
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle refusals and corrupt archives come in many types
        raise CheckpointError(
            "the .pt weights could not be loaded safely (weights_only=True refused them "
            "or the file is corrupt)"
        ) from exc
    return _extract_state_dict(loaded)


def _extract_state_dict(loaded: Any) -> dict[str, torch.Tensor]:
    if isinstance(loaded, Mapping) and isinstance(loaded.get("model"), Mapping):
        loaded = loaded["model"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise CheckpointError("the weights file does not hold a state_dict of tensors")
    return dict(loaded)


def load_weights_file(path: Path, *, expected_sha256: str | None = None) -> LoadedWeights:
    """Read, hash and parse a weights file; the hash covers exactly the bytes parsed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"the weights file {path.name} could not be read") from exc
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise CheckpointError(f"sha256 of {path.name} does not match the pinned hash")
    kind = "safetensors" if path.suffix == ".safetensors" else "pt"
    state_dict = state_dict_from_bytes(data, kind=kind)
    del data
    return LoadedWeights(state_dict=state_dict, sha256=digest, source=path.name)


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise CheckpointError naming missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mis_shaped = sorted(
        k for k in set(expected) & set(state_dict) if expected[k].shape != state_dict[k].shape
    )
    problems = []
    for title, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("mis-shaped", mis_shaped),
    ):
        if keys:
            shown = ", ".join(keys[:KEYS_SHOWN]) + (" ..." if len(keys) > KEYS_SHOWN else "")
            problems.append(f"{len(keys)} {title} key(s): {shown}")
    if problems:
        raise CheckpointError("weights do not fit the network: " + "; ".join(problems))


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Strictly load a state_dict after a readable key check."""
    check_state_dict(model, state_dict)
    model.load_state_dict(state_dict, strict=True)


def load_model_dir(
    model_dir: Path, *, expected_sha256: str | None = None
) -> tuple[nn.Module, dict[str, Any], LoadedWeights]:
    """Build the network described by a ModelScope directory and load its weights."""
    if not model_dir.is_dir():
        raise ModelNotFoundError(
            "model directory not found; run 'm2fp model download' to fetch the weights"
        )
    config = read_config(model_dir)
    weights = load_weights_file(find_weights(model_dir), expected_sha256=expected_sha256)
    model = build_model(config)
    load_into(model, weights.state_dict)
    return model, config, weights


def load_model(
    path: Path, *, key: bytes | str | None = None, expected_sha256: str | None = None
) -> tuple[nn.Module, dict[str, Any], str]:
    """Build and load a network from whatever ``path`` holds.

    A directory is a ModelScope model directory; a file is an encrypted ``.m2fp`` envelope or
    a Fernet-wrapped ``torch.save`` checkpoint (see ``m2fp.protection``), opened with ``key``
    in memory only.

    Args:
        path: model directory or protected weights file.
        key: the model key for a protected file (raw 32 bytes, or base64/hex text).
        expected_sha256: pin for the weights: the weights file of a directory, the
            decrypted weights of a protected file.

    Returns:
        (network in eval mode, ``model`` config, sha256 of the weights).
    """
    require_safe_torch()
    if not path.is_file():
        model, config, weights = load_model_dir(path, expected_sha256=expected_sha256)
        return model, config, weights.sha256
    from m2fp.protection.loading import load_protected_model

    return load_protected_model(path, key=key, expected_sha256=expected_sha256)
