"""Opening protected weights in memory: an ``.m2fp`` envelope or a Fernet-wrapped checkpoint.

Nothing decrypted is written anywhere: the plaintext goes from the cipher into one bytearray,
tensors are views of it, the network copies them, and the bytearray is zeroed on the way out
(also when loading fails).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from m2fp.build import build_model
from m2fp.checkpoint import load_into, read_config
from m2fp.errors import CheckpointError, IntegrityError, ModelKeyError
from m2fp.modeling.m2fp import M2FP
from m2fp.protection.envelope import check_key, decrypt_chunks, is_envelope, open_envelope
from m2fp.protection.fernet_compat import decrypt_checkpoint, is_fernet_token
from m2fp.protection.keys import MISSING_KEY, parse_key
from m2fp.protection.plaintext_buffer import tensors_from_safetensors, wipe

SNIFF_BYTES = 8


@dataclass(frozen=True)
class DecryptedWeights:
    """Weights opened in memory; ``state_dict`` is only valid inside ``open_protected``.

    Attributes:
        config: the ModelScope ``model`` config section.
        state_dict: parameter name -> tensor.
        sha256: hex digest of the decrypted weights (what ``expected_sha256`` pins).
        plaintext_bytes: length of the decrypted weights.
        protection: public facts about the encryption, for ``m2fp model info``.
    """

    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    sha256: str
    plaintext_bytes: int
    protection: dict[str, Any]


def _check_pin(digest: str, expected_sha256: str | None) -> None:
    if expected_sha256 is not None and digest != expected_sha256.strip().lower():
        raise IntegrityError("sha256 of the decrypted weights does not match the pinned hash")


def _sniff(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise CheckpointError(f"{path.name} could not be read: {exc.strerror}") from None


@contextmanager
def _open_envelope_weights(
    path: Path, key: bytes, expected_sha256: str | None
) -> Iterator[DecryptedWeights]:
    with open_envelope(path) as (stream, header):
        check_key(header, key)
        _check_pin(header.plaintext_sha256, expected_sha256)
        plaintext = bytearray(header.plaintext_size)
        try:
            offset = 0
            for chunk in decrypt_chunks(stream, header, key):
                plaintext[offset : offset + len(chunk)] = chunk
                offset += len(chunk)
            yield DecryptedWeights(
                config=header.config,
                state_dict=tensors_from_safetensors(plaintext),
                sha256=header.plaintext_sha256,
                plaintext_bytes=header.plaintext_size,
                protection=header.describe(),
            )
        finally:
            wipe(plaintext)


@contextmanager
def open_protected(
    path: Path, *, key: bytes | str | None, expected_sha256: str | None = None
) -> Iterator[DecryptedWeights]:
    """Decrypt and verify a protected weights file for the duration of a ``with`` block.

    Args:
        path: an ``.m2fp`` file, or a Fernet token file with ``configuration.json`` beside it.
        key: the model key (raw 32 bytes, or base64/hex text).
        expected_sha256: pin for the decrypted weights.

    Raises:
        ModelKeyError: no key, a malformed key, or not this file's key.
        IntegrityError: truncated, extended or modified file, or a hash mismatch.
        CheckpointError: not a protected weights file, or unreadable.
    """
    if key is None:
        raise ModelKeyError(MISSING_KEY)
    raw_key = parse_key(key)
    prefix = _sniff(path)
    if is_envelope(prefix):
        with _open_envelope_weights(path, raw_key, expected_sha256) as weights:
            yield weights
        return
    if not is_fernet_token(prefix):
        raise CheckpointError(
            f"{path.name} is neither a model directory, an .m2fp file nor a Fernet-wrapped "
            "checkpoint"
        )
    config = read_config(path.parent)
    state_dict, digest, size = decrypt_checkpoint(path, raw_key)
    try:
        _check_pin(digest, expected_sha256)
        yield DecryptedWeights(
            config=config,
            state_dict=state_dict,
            sha256=digest,
            plaintext_bytes=size,
            protection={"format": "fernet", "cipher": "Fernet (AES-128-CBC + HMAC-SHA256)"},
        )
    finally:
        # the tensors can be cleared; the token's decrypted bytes (immutable) only dropped
        with torch.no_grad():
            for tensor in state_dict.values():
                tensor.zero_()


def load_protected_model(
    path: Path, *, key: bytes | str | None, expected_sha256: str | None = None
) -> tuple[M2FP, dict[str, Any], str]:
    """Build the network and load protected weights into it, strictly, from memory only.

    Returns:
        (network in eval mode, ``model`` config, sha256 of the decrypted weights).
    """
    with open_protected(path, key=key, expected_sha256=expected_sha256) as weights:
        model = build_model(weights.config)
        load_into(model, weights.state_dict)
        return model, weights.config, weights.sha256
