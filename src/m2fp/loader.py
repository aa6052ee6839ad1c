"""The one way to open a model: a ModelScope directory, an encrypted ``.m2fp`` file or a
Fernet-wrapped checkpoint, always as one checked ``ModelWeights`` record.

Every caller (``HumanParser.from_pretrained``, ``m2fp model info|verify``, the server) goes
through ``open_model``: config validated, weights read without any pickle code path, the
sha256 pin checked, keys and shapes checked against the network the config describes. Protected
files are decrypted in memory only; their plaintext buffer is wiped when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import torch

from m2fp.build import build_model
from m2fp.checkpoint import (
    ModelWeights,
    check_fits,
    open_model_dir,
    read_config,
    require_safe_torch,
)
from m2fp.errors import CheckpointError, ModelKeyError
from m2fp.modeling.m2fp import M2FP
from m2fp.protection.keys import MISSING_KEY, parse_key
from m2fp.safetensors_view import tensors_from_safetensors
from m2fp.sha256_pin import check_pin

SNIFF_BYTES = 8


class LoadedModel(NamedTuple):
    """A network ready for inference and where it came from.

    Attributes:
        model: the network, eval mode, ModelScope parameter names.
        config: its ``model`` config section.
        sha256: the weights' digest (see ``ModelWeights.sha256``).
    """

    model: M2FP
    config: dict[str, Any]
    sha256: str


@contextmanager
def open_model(
    path: Path, *, key: bytes | str | None = None, expected_sha256: str | None = None
) -> Iterator[ModelWeights]:
    """Open whatever ``path`` holds, for the duration of a ``with`` block.

    Args:
        path: a model directory, an ``.m2fp`` file, or a Fernet token file with
            ``configuration.json`` beside it.
        key: the model key of a protected file (raw 32 bytes, or base64/hex text).
        expected_sha256: pin for the weights in the clear.

    Raises:
        ModelNotFoundError: no directory or no weights in it.
        ModelConfigError: the config is missing or unsupported.
        ModelKeyError: a protected file without its key, or with another one.
        IntegrityError: pin mismatch, or a protected file truncated, extended or modified.
        CheckpointError: anything else that makes the weights unusable (refused pickle,
            keys or shapes that do not fit...).
    """
    require_safe_torch()
    if not path.is_file():
        yield open_model_dir(path, expected_sha256=expected_sha256)
        return
    if key is None:
        raise ModelKeyError(MISSING_KEY)
    with _open_protected(path, key, expected_sha256) as weights:
        yield weights


@contextmanager
def _open_protected(
    path: Path, key: bytes | str, expected_sha256: str | None
) -> Iterator[ModelWeights]:
    # the cipher modules need the crypto extra: imported only for protected files
    from m2fp.protection.envelope import decrypted_payload, is_envelope
    from m2fp.protection.fernet_compat import decrypt_checkpoint, is_fernet_token

    raw_key = parse_key(key)
    prefix = _sniff(path)
    if is_envelope(prefix):
        with decrypted_payload(path, raw_key, expected_sha256=expected_sha256) as (header, data):
            state_dict = tensors_from_safetensors(data)
            yield ModelWeights(
                config=header.config,
                state_dict=state_dict,
                sha256=header.plaintext_sha256,
                kind="m2fp",
                weights_file=path.name,
                weights_bytes=header.plaintext_size,
                parameters=check_fits(header.config, state_dict),
                protection=header.describe(),
            )
        return
    if not is_fernet_token(prefix):
        raise CheckpointError(
            f"{path.name} is neither a model directory, an .m2fp file nor a Fernet-wrapped "
            "checkpoint"
        )
    config = read_config(path.parent)
    state_dict, digest, size = decrypt_checkpoint(path, raw_key)
    try:
        check_pin(digest, expected_sha256)
        yield ModelWeights(
            config=config,
            state_dict=state_dict,
            sha256=digest,
            kind="fernet",
            weights_file=path.name,
            weights_bytes=size,
            parameters=check_fits(config, state_dict),
            protection={"format": "fernet", "cipher": "Fernet (AES-128-CBC + HMAC-SHA256)"},
        )
    finally:
        # the tensors can be cleared; the token's decrypted bytes (immutable) only dropped
        with torch.no_grad():
            for tensor in state_dict.values():
                tensor.zero_()


def _sniff(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise CheckpointError(f"{path.name} could not be read: {exc.strerror}") from None


def fill_skeleton(config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> M2FP:
    """The network of ``config`` owning copies of ``state_dict`` (checked to fit).

    The skeleton is built empty (meta device) and takes the copies as its parameters, so no
    parameter is initialised at random only to be overwritten. Copies, because the tensors
    are views of a read buffer (dropped after loading) or of decrypted plaintext (wiped).
    """
    model = build_model(config, empty=True)
    expected = model.state_dict()
    owned = {
        name: tensor.to(dtype=expected[name].dtype, copy=True)
        for name, tensor in state_dict.items()
    }
    model.load_state_dict(owned, strict=True, assign=True)
    return model.eval()


def load_model(
    path: Path, *, key: bytes | str | None = None, expected_sha256: str | None = None
) -> LoadedModel:
    """Build and load a network from whatever ``path`` holds (see ``open_model``)."""
    with open_model(path, key=key, expected_sha256=expected_sha256) as weights:
        model = fill_skeleton(weights.config, weights.state_dict)
        return LoadedModel(model=model, config=weights.config, sha256=weights.sha256)
