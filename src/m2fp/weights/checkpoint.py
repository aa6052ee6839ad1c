"""Safe reading of M2FP weights: no pickle code paths, strict key report, sha256 pins.

These are the primitives the loader (``m2fp.weights.loader``) composes. A ModelScope model directory
holds ``configuration.json`` and ``pytorch_model.pt`` (a dict whose ``model`` entry is the
state_dict) or ``model.safetensors``. ``.pt`` files are read with ``torch.load(weights_only=
True)``, which refuses every object that is not plain tensor data; safetensors files are read
into one buffer, hashed there, and parsed as views of it (``m2fp.weights.safetensors_view``).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load as load_safetensors_bytes
from torch import nn
from torch.torch_version import TorchVersion

from m2fp.build import build_model
from m2fp.errors import CheckpointError, ModelNotFoundError
from m2fp.weights.description import describe_weights
from m2fp.weights.model_files import find_weights, read_config
from m2fp.weights.safetensors_view import tensors_from_safetensors
from m2fp.weights.sha256_pin import check_pin

KEYS_SHOWN = 8
# weights_only=True could still run code before 2.6 (CVE-2025-32434)
MIN_SAFE_TORCH = "2.6"

SourceKind = Literal["directory", "m2fp", "fernet"]


@dataclass(frozen=True)
class ModelWeights:
    """A model's config and weights, opened and checked: the one record every loader yields.

    Attributes:
        config: the ModelScope ``model`` config section (validated).
        state_dict: parameter name -> tensor; keys and shapes fit the network ``config``
            describes. For protected files the tensors are views of a buffer that is wiped
            when the ``open_model`` block ends.
        sha256: hex digest of the weights as stored in the clear (the weights file of a
            directory, the decrypted payload of a protected file): what a pin checks.
        kind: ``"directory"``, ``"m2fp"`` (encrypted envelope) or ``"fernet"``.
        weights_file: name (not path) of the file the weights came from.
        weights_bytes: length of the clear weights.
        parameters: number of parameters of the network.
        protection: public facts about the encryption, or None for a plain directory.
        attachments: an ``.m2fp`` file's other sections by name (e.g. ``openvino_fp32``),
            views of the decrypted buffer, valid like ``state_dict``.
        skeleton: the empty (meta) network the fit was checked on, for ``fill_skeleton``
            to fill (once) instead of building another.
    """

    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    sha256: str
    kind: SourceKind
    weights_file: str
    weights_bytes: int
    parameters: int
    protection: dict[str, Any] | None = None
    attachments: Mapping[str, memoryview] = field(default_factory=dict, repr=False)
    skeleton: nn.Module | None = field(default=None, repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        """What ``m2fp model info`` prints: everything but the tensors."""
        return describe_weights(
            config=self.config,
            parameters=self.parameters,
            weights_file=self.weights_file,
            weights_bytes=self.weights_bytes,
            sha256=self.sha256,
            protection=self.protection,
        )


def require_safe_torch() -> None:
    """Refuse to unpickle anything on a torch whose ``weights_only=True`` can be bypassed."""
    if TorchVersion(torch.__version__) < MIN_SAFE_TORCH:
        raise CheckpointError(
            f"torch {torch.__version__} cannot load weights safely (CVE-2025-32434); "
            f"install torch>={MIN_SAFE_TORCH}"
        )


def state_dict_from_bytes(data: bytes | bytearray, *, kind: str) -> dict[str, torch.Tensor]:
    """Parse weights held in memory.

    Args:
        data: file contents.
        kind: ``"safetensors"`` or ``"pt"``.
    """
    if kind == "safetensors":
        try:
            return load_safetensors_bytes(bytes(data))
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


def _read_into_buffer(path: Path) -> bytearray:
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            buffer = bytearray(size)
            if handle.readinto(buffer) != size or handle.read(1):
                raise CheckpointError(f"the weights file {path.name} changed while being read")
    except OSError as exc:
        raise CheckpointError(f"the weights file {path.name} could not be read") from exc
    return buffer


def read_weights_file(
    path: Path, *, expected_sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], str, int]:
    """Read, hash and parse a weights file; the hash covers exactly the bytes parsed.

    A safetensors file is read once into a buffer whose views become the tensors (no second
    copy); a ``.pt`` file goes through ``torch.load(weights_only=True)``.

    Returns:
        (state_dict, sha256 of the file, its length in bytes).

    Raises:
        IntegrityError: the pin does not match (checked before anything is parsed).
        CheckpointError: unreadable, refused or malformed.
    """
    buffer = _read_into_buffer(path)
    digest = hashlib.sha256(buffer).hexdigest()
    check_pin(digest, expected_sha256)
    if path.suffix == ".safetensors":
        return tensors_from_safetensors(buffer), digest, len(buffer)
    return state_dict_from_bytes(buffer, kind="pt"), digest, len(buffer)


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


def fitted_weights(
    *,
    config: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    sha256: str,
    kind: SourceKind,
    weights_file: str,
    weights_bytes: int,
    protection: dict[str, Any] | None = None,
    attachments: Mapping[str, memoryview] | None = None,
) -> ModelWeights:
    """The one place a ``ModelWeights`` is made: after checking the keys and shapes of
    ``state_dict`` against the network ``config`` describes, built on the meta device (shapes
    only: no memory, no random init), whose parameter count and empty skeleton it keeps.

    Raises:
        CheckpointError: missing, unexpected or mis-shaped keys.
    """
    skeleton = build_model(config, empty=True)
    check_state_dict(skeleton, state_dict)
    return ModelWeights(
        config=config,
        state_dict=state_dict,
        sha256=sha256,
        kind=kind,
        weights_file=weights_file,
        weights_bytes=weights_bytes,
        parameters=sum(p.numel() for p in skeleton.parameters()),
        protection=protection,
        attachments=attachments or {},
        skeleton=skeleton,
    )


def open_model_dir(model_dir: Path, *, expected_sha256: str | None = None) -> ModelWeights:
    """Config and weights of a ModelScope directory, pinned and checked to fit."""
    if not model_dir.is_dir():
        raise ModelNotFoundError(
            "model directory not found; run 'm2fp model download' to fetch the weights"
        )
    config = read_config(model_dir)
    weights_path = find_weights(model_dir)
    state_dict, digest, size = read_weights_file(weights_path, expected_sha256=expected_sha256)
    return fitted_weights(
        config=config,
        state_dict=state_dict,
        sha256=digest,
        kind="directory",
        weights_file=weights_path.name,
        weights_bytes=size,
    )
