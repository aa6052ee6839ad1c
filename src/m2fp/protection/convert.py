"""Writing ``.m2fp`` files: encrypting a model directory (with attachments such as its
OpenVINO package), re-encrypting under a new key, and adding an attachment to a file.

Only ciphertext reaches the disk. Output goes to a hidden ``.partial`` sibling created with
O_EXCL and is renamed into place when complete, so a failed run leaves nothing half-written
and an existing file is never replaced.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from safetensors.torch import save as save_safetensors

from m2fp.checkpoint import open_model_dir
from m2fp.errors import CheckpointError, ModelNotFoundError
from m2fp.protection.envelope import (
    DEFAULT_CHUNK_SIZE,
    Attachment,
    Header,
    check_key,
    decrypt_chunks,
    decrypted_payload,
    encrypt_chunks,
    new_header,
    open_envelope,
    split_payload,
)


@contextmanager
def new_file(path: Path) -> Iterator[BinaryIO]:
    """A file that appears at ``path`` only if the ``with`` block succeeds."""
    if path.exists():
        raise CheckpointError(f"{path.name} already exists; choose another --out")
    partial = path.with_name(f".{path.name}.partial")
    try:
        fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError as exc:
        raise CheckpointError(f"{path.name} could not be created: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CheckpointError(f"{path.name} could not be written: {exc.strerror}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _attachments(attachments: Mapping[str, bytes | bytearray | memoryview]) -> tuple:
    return tuple(
        Attachment(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        for name, data in attachments.items()
    )


def encrypt_model_dir(
    model_dir: Path,
    *,
    key: bytes,
    out: Path,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    attachments: Mapping[str, bytes] | None = None,
) -> Header:
    """Encrypt a ModelScope directory's config and weights into one ``.m2fp`` file.

    The weights (safetensors, or a ``.pt`` read with ``weights_only=True``) must fit the
    network their config describes; they are re-serialised as safetensors in memory, so the
    envelope never holds a pickle. ``attachments`` (name -> bytes, e.g. the OpenVINO package)
    are encrypted after them.
    """
    if not model_dir.is_dir():
        raise ModelNotFoundError("the model directory to encrypt was not found")
    weights = open_model_dir(model_dir)
    payload = save_safetensors({k: v.contiguous() for k, v in weights.state_dict.items()})
    config = weights.config
    del weights
    extra = dict(attachments or {})
    header = new_header(
        config=config,
        key=key,
        plaintext_size=len(payload),
        plaintext_sha256=hashlib.sha256(payload).hexdigest(),
        chunk_size=chunk_size,
        attachments=_attachments(extra),
    )
    with new_file(out) as stream:
        encrypt_chunks(stream, header, key, split_payload(header, payload, *extra.values()))
    return header


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
        target = new_header(
            config=header.config,
            key=key,
            plaintext_size=header.plaintext_size,
            plaintext_sha256=header.plaintext_sha256,
            chunk_size=header.chunk_size,
            attachments=_attachments(kept),
        )
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
        rekeyed = new_header(
            config=header.config,
            key=new_key,
            plaintext_size=header.plaintext_size,
            plaintext_sha256=header.plaintext_sha256,
            chunk_size=header.chunk_size,
            attachments=header.attachments,
        )
        with new_file(out) as target:
            encrypt_chunks(target, rekeyed, new_key, decrypt_chunks(stream, header, old_key))
    return rekeyed
