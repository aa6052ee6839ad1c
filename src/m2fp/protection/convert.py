"""Writing ``.m2fp`` files: encrypting a model directory (with attachments such as its
OpenVINO package), re-encrypting under a new key, and adding an attachment to a file.

Only ciphertext reaches the disk, through ``m2fp.weights.whole_file`` (complete or not at all, never
over an existing file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import save as save_safetensors

from m2fp.errors import ModelNotFoundError
from m2fp.protection.envelope_chunks import (
    decrypt_chunks,
    decrypted_payload,
    encrypt_chunks,
    split_payload,
)
from m2fp.protection.envelope_header import (
    DEFAULT_CHUNK_SIZE,
    Attachment,
    Header,
    check_key,
    new_header,
    open_envelope,
)
from m2fp.weights.checkpoint import open_model_dir
from m2fp.weights.whole_file import new_file


def _attachments(attachments: Mapping[str, bytes | bytearray | memoryview]) -> tuple:
    return tuple(
        Attachment(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        for name, data in attachments.items()
    )


@dataclass(frozen=True)
class Payload:
    """A model directory's weights as the envelope holds them.

    Attributes:
        data: safetensors bytes (a ``.pt`` checkpoint converted, never a pickle).
        sha256: their digest: the pin of the encrypted file.
        source_sha256: the digest of the directory's weights file (what packages exported
            beside it record, ``OpenVINOPackage.weights_sha256``).
        config: the ``model`` config section.
    """

    data: bytes
    sha256: str
    source_sha256: str
    config: dict[str, Any]


def model_dir_payload(model_dir: Path) -> Payload:
    """Read a ModelScope directory's config and weights, checked to fit the network, and
    serialise the weights as safetensors in memory."""
    if not model_dir.is_dir():
        raise ModelNotFoundError("the model directory to encrypt was not found")
    weights = open_model_dir(model_dir)
    data = save_safetensors({k: v.contiguous() for k, v in weights.state_dict.items()})
    return Payload(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        source_sha256=weights.sha256,
        config=weights.config,
    )


def encrypt_payload(
    payload: Payload,
    *,
    key: bytes,
    out: Path,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    attachments: Mapping[str, bytes] | None = None,
) -> Header:
    """Write ``payload`` (and ``attachments``, name -> bytes, after it) as a new ``.m2fp``
    file encrypted under ``key``."""
    extra = dict(attachments or {})
    header = new_header(
        config=payload.config,
        key=key,
        plaintext_size=len(payload.data),
        plaintext_sha256=payload.sha256,
        chunk_size=chunk_size,
        attachments=_attachments(extra),
    )
    with new_file(out) as stream:
        encrypt_chunks(stream, header, key, split_payload(header, payload.data, *extra.values()))
    return header


def encrypt_model_dir(
    model_dir: Path, *, key: bytes, out: Path, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Header:
    """Encrypt a ModelScope directory's config and weights into one ``.m2fp`` file.

    The weights (safetensors, or a ``.pt`` read with ``weights_only=True``) must fit the
    network their config describes; they are re-serialised as safetensors in memory, so the
    envelope never holds a pickle.
    """
    return encrypt_payload(model_dir_payload(model_dir), key=key, out=out, chunk_size=chunk_size)


def _header_like(header: Header, *, key: bytes, attachments: tuple) -> Header:
    """A header for the same weights as ``header`` (config, size, hash, chunking), under
    ``key``, with ``attachments``."""
    return new_header(
        config=header.config,
        key=key,
        plaintext_size=header.plaintext_size,
        plaintext_sha256=header.plaintext_sha256,
        chunk_size=header.chunk_size,
        attachments=attachments,
    )


def attach(source: Path, *, key: bytes, out: Path, name: str, data: bytes) -> Header:
    """A new ``.m2fp`` file at ``out``: ``source``'s weights and attachments (authenticated
    first) plus ``data`` as attachment ``name`` (replacing one of that name), under the same
    key. The plaintext exists in memory only."""
    with decrypted_payload(source, key) as (header, plaintext):
        view = memoryview(plaintext)
        kept = {
            section: view[start:stop]
            for section, start, stop, _ in header.sections()[1:]
            if section != name
        }
        kept[name] = memoryview(data)
        target = _header_like(header, key=key, attachments=_attachments(kept))
        weights = view[: header.plaintext_size]
        with new_file(out) as stream:
            encrypt_chunks(stream, target, key, split_payload(target, weights, *kept.values()))
        del view, weights, kept
    return target


def rekey_file(source: Path, *, old_key: bytes, new_key: bytes, out: Path) -> Header:
    """Re-encrypt an ``.m2fp`` file under ``new_key``, one chunk at a time.

    Every chunk of the source is authenticated and the whole hash checked before the new
    file is put in place.
    """
    with open_envelope(source) as (stream, header):
        check_key(header, old_key)
        rekeyed = _header_like(header, key=new_key, attachments=header.attachments)
        with new_file(out) as target:
            encrypt_chunks(target, rekeyed, new_key, decrypt_chunks(stream, header, old_key))
    return rekeyed
