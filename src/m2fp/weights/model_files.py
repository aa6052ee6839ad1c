"""What a ModelScope model directory holds, found and read without PyTorch: its
``configuration.json`` and the name of its weights file.

The checkpoint reader (``m2fp.weights.checkpoint``) parses the weights with torch; the slim
runtime, which runs an OpenVINO package and never parses them, needs only these.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from m2fp.errors import CheckpointError, ModelConfigError, ModelNotFoundError
from m2fp.model_config import validate_config

CONFIG_FILE = "configuration.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.pt")
HASH_CHUNK = 1 << 20  # bytes read per step when hashing a weights file


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
    """The validated ``model`` section of ``configuration.json``."""
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


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256 hex digest, length) of a weights file, read in bounded chunks: what a pin
    and an OpenVINO package's ``weights_sha256`` are checked against where the weights
    themselves are not loaded.

    Raises:
        CheckpointError: the file cannot be read.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise CheckpointError(f"the weights file {path.name} could not be read") from exc
    return digest.hexdigest(), size
