"""Reading the simple format often described for protecting M2FP deployments: the bytes of a
``torch.save`` checkpoint wrapped in one Fernet token (``Fernet(key).encrypt(data)``).

Accepted keys: a Fernet key (URL-safe base64 of 32 bytes, what ``Fernet.generate_key()``
prints, which is also the m2fp key file format), the same 32 bytes as 64 hex digits, or the
32 raw bytes. The configuration is read from ``configuration.json`` next to the token file.

The format is weaker than ``.m2fp``: the whole token and the whole plaintext are in memory at
once, the plaintext is an immutable ``bytes`` that cannot be zeroed, and it is a pickle (read
only with ``torch.load(weights_only=True)``, and only on torch >= 2.6). Prefer
``m2fp model encrypt``.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import torch

from m2fp.errors import CheckpointError, ModelKeyError
from m2fp.protection import CRYPTOGRAPHY_MISSING
from m2fp.protection.keys import parse_key
from m2fp.weights.checkpoint import state_dict_from_bytes

try:
    from cryptography.fernet import Fernet, InvalidToken
except ModuleNotFoundError as exc:  # the optional extra is missing
    raise CheckpointError(CRYPTOGRAPHY_MISSING) from exc

# a token starts with version byte 0x80 and a 64-bit timestamp whose top bytes are zero
TOKEN_PREFIX = b"gAAAAA"


def is_fernet_token(prefix: bytes) -> bool:
    return prefix.startswith(TOKEN_PREFIX)


def decrypt_checkpoint(path: Path, key: bytes) -> tuple[dict[str, torch.Tensor], str, int]:
    """The state_dict inside a Fernet-wrapped ``torch.save`` file.

    Returns:
        (state_dict, sha256 of the decrypted checkpoint bytes, their length).

    Raises:
        ModelKeyError: the token does not open with this key (or was modified: Fernet
            cannot tell the two apart).
        CheckpointError: unreadable, or the checkpoint is refused by ``weights_only=True``.
    """
    fernet = Fernet(base64.urlsafe_b64encode(parse_key(key)))
    try:
        token = path.read_bytes().strip()
    except OSError as exc:
        raise CheckpointError(f"{path.name} could not be read: {exc.strerror}") from None
    try:
        data = fernet.decrypt(token)
    except InvalidToken:
        raise ModelKeyError(
            "the Fernet-wrapped weights do not open with this key (wrong key or modified file)"
        ) from None
    del token
    digest = hashlib.sha256(data).hexdigest()
    size = len(data)
    state_dict = state_dict_from_bytes(data, kind="pt")
    return state_dict, digest, size
