"""The ``.m2fp`` file format: its prefix and authenticated header, read and written without
any cipher (``envelope_chunks`` encrypts and decrypts what follows).

Layout (integers big-endian)::

    magic        8 bytes   b"M2FPENC\\0"
    version      u16       FORMAT_VERSION
    header_len   u32       length of the header JSON
    header       JSON      cipher, kdf, salt, chunk_size, key_id, payload, plaintext_size,
                           plaintext_sha256, model (the ModelScope ``model`` config section),
                           attachments (version 2 only: name, size, sha256 of each)
    chunk 0..n-1           ciphertext || 16-byte tag; every chunk holds ``chunk_size`` bytes of
                           plaintext except the last (one empty chunk for an empty payload)

The plaintext is the safetensors weights (``plaintext_size`` bytes, ``plaintext_sha256``: the
weights' pin), then each attachment in header order: converted forms of the same network,
such as the OpenVINO package (``m2fp.engines.openvino_package``), so that they too stay
encrypted at rest. A file with attachments is version 2 (an m2fp that reads version 1 only
refuses it plainly); one without stays version 1.

Nothing in the header is trusted until a chunk tag verifies it (every chunk's AAD holds the
whole prefix and header); what is read here is only bounded and type-checked. Standard library
only: telling an ``.m2fp`` file from other files and describing it needs no ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from m2fp.errors import CheckpointError, IntegrityError, ModelKeyError
from m2fp.protection.keys import key_id

MAGIC = b"M2FPENC\x00"
FORMAT_VERSION = 1
ATTACHMENTS_VERSION = 2  # the format version of files with attachments
VERSIONS = (FORMAT_VERSION, ATTACHMENTS_VERSION)
ATTACHMENT_NAME = re.compile(r"[a-z0-9_]{1,64}")
MAX_ATTACHMENTS = 8
PREFIX = struct.Struct(">8sHI")
CIPHER = "AES-256-GCM"
KDF = "HKDF-SHA256"
PAYLOAD = "safetensors"
TAG_BYTES = 16
SALT_BYTES = 32
DEFAULT_CHUNK_SIZE = 4 << 20
MIN_CHUNK_SIZE = 4 << 10
MAX_CHUNK_SIZE = 64 << 20
# a model config is a few KB; the limit keeps a hostile header from costing memory
MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class Attachment:
    """A named section of the plaintext after the weights.

    Attributes:
        name: lower-case letters, digits and ``_`` (e.g. ``openvino_fp32``).
        size: its length in bytes.
        sha256: hex digest of its bytes, checked when decrypted.
    """

    name: str
    size: int
    sha256: str

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Header:
    """The authenticated header of a ``.m2fp`` file.

    Attributes:
        chunk_size: plaintext bytes per chunk (the last chunk may be shorter).
        key_id: ``keys.key_id`` of the model key that encrypted the file.
        salt: per-file HKDF salt.
        plaintext_size: length of the safetensors payload.
        plaintext_sha256: hex digest of the safetensors payload.
        config: the ModelScope ``model`` config section.
        raw: prefix and header JSON exactly as stored; part of every chunk's AAD.
        attachments: the sections after the weights, in order.
    """

    chunk_size: int
    key_id: str
    salt: bytes
    plaintext_size: int
    plaintext_sha256: str
    config: dict[str, Any]
    raw: bytes
    attachments: tuple[Attachment, ...] = ()

    @property
    def total_size(self) -> int:
        """Plaintext bytes of the whole file: the weights and every attachment."""
        return self.plaintext_size + sum(a.size for a in self.attachments)

    @property
    def chunk_count(self) -> int:
        return max(1, -(-self.total_size // self.chunk_size))

    def chunk_length(self, index: int) -> int:
        """Plaintext bytes in chunk ``index``."""
        return min(self.chunk_size, self.total_size - index * self.chunk_size)

    @property
    def file_size(self) -> int:
        return len(self.raw) + self.total_size + self.chunk_count * TAG_BYTES

    def sections(self) -> list[tuple[str, int, int, str]]:
        """(name, start, stop, sha256) of the weights (name ``weights``) and each attachment,
        as offsets into the plaintext."""
        spans = [("weights", 0, self.plaintext_size, self.plaintext_sha256)]
        offset = self.plaintext_size
        for attachment in self.attachments:
            spans.append((attachment.name, offset, offset + attachment.size, attachment.sha256))
            offset += attachment.size
        return spans

    def describe(self) -> dict[str, Any]:
        """The public facts about the file, for ``m2fp model info``."""
        report = {
            "format": "m2fp",
            "format_version": ATTACHMENTS_VERSION if self.attachments else FORMAT_VERSION,
            "cipher": CIPHER,
            "key_id": self.key_id,
            "chunk_size": self.chunk_size,
            "chunks": self.chunk_count,
            "file_bytes": self.file_size,
        }
        if self.attachments:
            report["attachments"] = [{"name": a.name, "bytes": a.size} for a in self.attachments]
        return report


def new_header(
    *,
    config: dict[str, Any],
    key: bytes,
    plaintext_size: int,
    plaintext_sha256: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    attachments: tuple[Attachment, ...] = (),
) -> Header:
    """A header for a new file (fresh salt) encrypted under ``key``; with ``attachments``
    after the weights, a version-2 file."""
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be in [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]")
    salt = os.urandom(SALT_BYTES)
    document = {
        "cipher": CIPHER,
        "kdf": KDF,
        "salt": base64.b64encode(salt).decode("ascii"),
        "chunk_size": chunk_size,
        "key_id": key_id(key),
        "payload": PAYLOAD,
        "plaintext_size": plaintext_size,
        "plaintext_sha256": plaintext_sha256,
        "model": config,
    }
    version = FORMAT_VERSION
    if attachments:
        document["attachments"] = [a.document() for a in attachments]
        version = ATTACHMENTS_VERSION
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
    raw = PREFIX.pack(MAGIC, version, len(body)) + body
    return _parse_header(raw)


def is_envelope(prefix: bytes) -> bool:
    return prefix.startswith(MAGIC)


def _corrupt(what: str) -> IntegrityError:
    return IntegrityError(f"the .m2fp header is corrupt ({what})")


def _field(document: dict[str, Any], name: str, kind: type) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _corrupt(f"'{name}' is missing or has the wrong type")
    return value


def _parse_header(raw: bytes) -> Header:
    """Validate prefix and header JSON; nothing is trusted until a chunk tag verifies it."""
    magic, version, length = PREFIX.unpack_from(raw)
    if magic != MAGIC:
        raise CheckpointError("not an .m2fp file")
    if version not in VERSIONS:
        raise CheckpointError(
            f"unsupported .m2fp format version {version} (this m2fp reads "
            f"{' and '.join(map(str, VERSIONS))})"
        )
    if len(raw) != PREFIX.size + length:
        raise _corrupt("length")
    try:
        document = json.loads(raw[PREFIX.size :].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _corrupt("not JSON") from None
    if not isinstance(document, dict):
        raise _corrupt("not an object")
    if document.get("cipher") != CIPHER or document.get("kdf") != KDF:
        raise _corrupt(f"cipher must be {CIPHER} with {KDF}")
    if document.get("payload") != PAYLOAD:
        raise _corrupt(f"payload must be {PAYLOAD}")
    chunk_size = _field(document, "chunk_size", int)
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise _corrupt("chunk_size out of range")
    plaintext_size = _field(document, "plaintext_size", int)
    if plaintext_size < 0:
        raise _corrupt("negative plaintext_size")
    try:
        salt = base64.b64decode(_field(document, "salt", str), validate=True)
    except binascii.Error:
        raise _corrupt("salt is not base64") from None
    if len(salt) != SALT_BYTES:
        raise _corrupt("salt length")
    digest = _field(document, "plaintext_sha256", str)
    if not _is_digest(digest):
        raise _corrupt("plaintext_sha256 is not a sha256 hex digest")
    attachments = _attachments(document) if version == ATTACHMENTS_VERSION else ()
    if version == FORMAT_VERSION and "attachments" in document:
        raise _corrupt("attachments in a version-1 file")
    return Header(
        chunk_size=chunk_size,
        key_id=_field(document, "key_id", str),
        salt=salt,
        plaintext_size=plaintext_size,
        plaintext_sha256=digest,
        config=_field(document, "model", dict),
        raw=raw,
        attachments=attachments,
    )


def _is_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _attachments(document: dict[str, Any]) -> tuple[Attachment, ...]:
    entries = _field(document, "attachments", list)
    if not 1 <= len(entries) <= MAX_ATTACHMENTS:
        raise _corrupt("attachments")
    attachments = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise _corrupt("attachments")
        name, size, digest = (
            _field(entry, "name", str),
            _field(entry, "size", int),
            _field(entry, "sha256", str),
        )
        if not ATTACHMENT_NAME.fullmatch(name) or size < 0 or not _is_digest(digest):
            raise _corrupt("attachments")
        attachments.append(Attachment(name=name, size=size, sha256=digest))
    if len({a.name for a in attachments}) != len(attachments):
        raise _corrupt("attachments")
    return tuple(attachments)


def read_header(stream: BinaryIO, *, file_size: int) -> Header:
    """Read the header from the start of ``stream`` and check the file's exact length.

    Raises:
        CheckpointError: not an .m2fp file or an unsupported version.
        IntegrityError: corrupt header, truncated file or trailing bytes.
    """
    prefix = stream.read(PREFIX.size)
    if len(prefix) < PREFIX.size or not is_envelope(prefix):
        raise CheckpointError("not an .m2fp file")
    length = PREFIX.unpack(prefix)[2]
    if length > MAX_HEADER_BYTES:
        raise _corrupt("header too large")
    body = stream.read(length)
    if len(body) != length:
        raise IntegrityError("the .m2fp file is truncated (inside the header)")
    header = _parse_header(prefix + body)
    if file_size < header.file_size:
        raise IntegrityError("the .m2fp file is truncated")
    if file_size > header.file_size:
        raise IntegrityError(
            f"the .m2fp file has {file_size - header.file_size} unexpected bytes after its end"
        )
    return header


@contextmanager
def open_envelope(path: Path) -> Iterator[tuple[BinaryIO, Header]]:
    """An open ``.m2fp`` file positioned after its checked header."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise CheckpointError(f"{path.name} could not be read: {exc.strerror}") from None
    with stream:
        header = read_header(stream, file_size=os.fstat(stream.fileno()).st_size)
        yield stream, header


def check_key(header: Header, key: bytes) -> None:
    """Fail early, and say so plainly, when the key is not the one the file was made with."""
    given = key_id(key)
    if given != header.key_id:
        raise ModelKeyError(
            f"wrong model key: the file needs key id {header.key_id}, the key given has id {given}"
        )
