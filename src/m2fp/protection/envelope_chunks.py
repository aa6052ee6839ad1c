"""The chunk encryption of the ``.m2fp`` file (format: ``envelope_header``): AES-256-GCM over
fixed-size chunks of the plaintext.

Each file has its own AES-256 key, HKDF-SHA256(model key, salt), so the 96-bit nonce of chunk
i can simply be i. The AAD of chunk i is the whole prefix and header || u64 i || u8 final:
changing the header, reordering chunks or cutting the file at a chunk boundary makes a tag
fail. Plaintext is produced and consumed one chunk at a time, so neither direction holds
more than the payload itself plus one chunk.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from m2fp.errors import CheckpointError, IntegrityError
from m2fp.protection import CRYPTOGRAPHY_MISSING
from m2fp.protection.envelope_header import TAG_BYTES, Header, check_key, open_envelope
from m2fp.protection.keys import key_id, parse_key
from m2fp.protection.plaintext_buffer import wipe
from m2fp.weights.sha256_pin import check_pin

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ModuleNotFoundError as exc:  # the optional extra is missing
    raise CheckpointError(CRYPTOGRAPHY_MISSING) from exc

HKDF_INFO = b"m2fp envelope v1 file key"


def _file_cipher(key: bytes, salt: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=HKDF_INFO)
    return AESGCM(derived.derive(parse_key(key)))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def chunk_aad(header: Header, index: int, *, final: bool) -> bytes:
    """What chunk ``index`` authenticates besides its own bytes."""
    return header.raw + struct.pack(">QB", index, final)


def split_payload(header: Header, *pieces: bytes | bytearray | memoryview) -> Iterator[memoryview]:
    """The plaintext ``pieces`` (the weights, then each attachment) as the chunks ``header``
    describes: views where a chunk lies inside one piece; a chunk that spans two is joined in
    one reused buffer, wiped at the end (each view is valid until the next chunk)."""
    joined = bytearray(header.chunk_size)
    filled = index = 0
    try:
        for piece in pieces:
            view = memoryview(piece).cast("B")
            while len(view):
                want = header.chunk_length(index) - filled
                take, view = view[:want], view[want:]
                if filled == 0 and len(take) == want:
                    yield take  # the whole chunk inside this piece
                else:
                    joined[filled : filled + len(take)] = take
                    filled += len(take)
                    if filled < header.chunk_length(index):
                        continue
                    yield memoryview(joined)[:filled]
                    filled = 0
                index += 1
        if header.total_size == 0:
            yield memoryview(b"")  # one empty chunk for an empty payload
    finally:
        wipe(joined)


def encrypt_chunks(
    out: BinaryIO, header: Header, key: bytes, chunks: Iterable[memoryview | bytes]
) -> None:
    """Write the header, then each plaintext chunk sealed, in order.

    Args:
        out: where the file is written.
        header: from ``new_header`` with ``key``.
        chunks: exactly ``header.chunk_count`` pieces of ``header.chunk_length(i)`` bytes.
    """
    if header.key_id != key_id(key):
        raise ValueError("the header was made for another key")
    cipher = _file_cipher(key, header.salt)
    sealed = bytearray(header.chunk_size + TAG_BYTES)
    out.write(header.raw)
    count = 0
    for index, chunk in enumerate(chunks):
        if index >= header.chunk_count or len(chunk) != header.chunk_length(index):
            raise ValueError("the chunks do not match the header")
        final = index == header.chunk_count - 1
        size = len(chunk) + TAG_BYTES
        cipher.encrypt_into(
            _nonce(index), chunk, chunk_aad(header, index, final=final), memoryview(sealed)[:size]
        )
        out.write(memoryview(sealed)[:size])
        count += 1
    if count != header.chunk_count:
        raise ValueError("the chunks do not match the header")


def decrypt_chunks(stream: BinaryIO, header: Header, key: bytes) -> Iterator[memoryview]:
    """Verify and decrypt the chunks that follow the header, one at a time.

    Yields views into two alternating buffers (each valid until the next chunk; zeroed at
    the end). After the last chunk the sha256 of the weights and of each attachment is checked
    against the header.

    The hashing runs on a worker thread, one chunk behind the decryption: hashing is the
    largest cost of opening a file (about 0.6 ms per MB, against 0.1 ms for AES-GCM) and
    ``hashlib`` releases the GIL, so on a second core it overlaps the decryption, the file
    reading and the caller's copying instead of adding to them (a slim replica's start-up).

    Raises:
        ModelKeyError: the key is not the file's key.
        IntegrityError: a tag fails, the file is cut short, or the hash differs.
    """
    check_key(header, key)
    cipher = _file_cipher(key, header.salt)
    buffers = (bytearray(header.chunk_size), bytearray(header.chunk_size))
    sections = [
        (name, start, stop, hashlib.sha256(), d) for name, start, stop, d in header.sections()
    ]

    def hash_chunk(view: memoryview, offset: int) -> None:
        for _, start, stop, digest, _ in sections:
            low, high = max(start, offset), min(stop, offset + len(view))
            if low < high:
                digest.update(view[low - offset : high - offset])

    count = header.chunk_count
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="m2fp-envelope-hash")
    pending: Future[None] | None = None
    try:
        for index in range(count):
            length = header.chunk_length(index)
            sealed = stream.read(length + TAG_BYTES)
            if len(sealed) != length + TAG_BYTES:
                raise IntegrityError("the .m2fp file is truncated")
            # the previous chunk's hash may still read the other buffer, never this one
            view = memoryview(buffers[index % 2])[:length]
            try:
                cipher.decrypt_into(
                    _nonce(index), sealed, chunk_aad(header, index, final=index == count - 1), view
                )
            except InvalidTag:
                raise IntegrityError(
                    f"the .m2fp file was modified or corrupted "
                    f"(chunk {index + 1} of {count} failed authentication)"
                ) from None
            if pending is not None:
                pending.result()  # the buffer the next chunk decrypts into is free again
            pending = hasher.submit(hash_chunk, view, index * header.chunk_size)
            yield view
        if pending is not None:
            pending.result()
        if stream.read(1):
            raise IntegrityError("the .m2fp file has unexpected bytes after its end")
        for name, _, _, digest, expected in sections:
            if digest.hexdigest() != expected:
                what = "weights do" if name == "weights" else f"attachment {name} does"
                raise IntegrityError(f"the decrypted {what} not match the sha256 in the header")
    finally:
        hasher.shutdown(wait=True)  # no hash still reading a buffer when it is wiped
        for buffer in buffers:
            wipe(buffer)


@contextmanager
def decrypted_payload(
    path: Path, key: bytes, *, expected_sha256: str | None = None
) -> Iterator[tuple[Header, bytearray]]:
    """The whole authenticated payload of an ``.m2fp`` file in one bytearray, wiped when the
    ``with`` block ends (also on error): the weights (``header.plaintext_size`` bytes), then
    the attachments (``header.sections()``).

    Args:
        path: the ``.m2fp`` file.
        key: the raw model key.
        expected_sha256: pin for the payload, checked against the header before decrypting.

    Raises:
        ModelKeyError: not this file's key.
        IntegrityError: the pin differs, a tag fails, the file is cut short or extended.
    """
    with open_envelope(path) as (stream, header):
        check_key(header, key)
        check_pin(header.plaintext_sha256, expected_sha256)
        plaintext = bytearray(header.total_size)
        try:
            offset = 0
            for chunk in decrypt_chunks(stream, header, key):
                plaintext[offset : offset + len(chunk)] = chunk
                offset += len(chunk)
            yield header, plaintext
        finally:
            wipe(plaintext)


@contextmanager
def decrypted_sections(
    path: Path,
    key: bytes,
    *,
    keep: Mapping[str, int | None],
    expected_sha256: str | None = None,
    hand_over: Collection[str] = (),
) -> Iterator[tuple[Header, dict[str, bytearray]]]:
    """An ``.m2fp`` file authenticated and hashed whole, as ``decrypted_payload``, holding
    only what a reader needs: the first ``keep[name]`` bytes of each named section (the
    weights' safetensors header, the OpenVINO package), not the whole payload. Every chunk's
    tag and every section's sha256 are checked before the block runs; the kept bytes are wiped
    when it ends (also on error), except those handed over.

    Args:
        keep: section name (``weights`` or an attachment's) -> bytes kept from its start
            (None, or more than it holds: all of it); sections not named are only checked.
        hand_over: kept sections whose buffers become the caller's when the block ends
            without an error (not wiped: something built in the block keeps viewing them,
            as ``OpenVINOPackage.from_bytes(..., owned=True)`` does); on error they are wiped
            too.

    Returns:
        (the header, section name -> its kept bytes) for the named sections the file has.

    Raises:
        ModelKeyError, IntegrityError: as ``decrypted_payload``.
    """
    with open_envelope(path) as (stream, header):
        check_key(header, key)
        check_pin(header.plaintext_sha256, expected_sha256)
        spans = {
            name: (start, stop if keep[name] is None else min(stop, start + max(0, keep[name])))
            for name, start, stop, _ in header.sections()
            if name in keep
        }
        kept = {name: bytearray(stop - start) for name, (start, stop) in spans.items()}
        buffers, handed_over = dict(kept), False
        try:
            offset = 0
            for chunk in decrypt_chunks(stream, header, key):
                end = offset + len(chunk)
                for name, (start, stop) in spans.items():
                    low, high = max(start, offset), min(stop, end)
                    if low < high:
                        kept[name][low - start : high - start] = chunk[low - offset : high - offset]
                offset = end
            yield header, kept
            handed_over = True
        finally:
            for name, buffer in buffers.items():
                if not (handed_over and name in hand_over):
                    wipe(buffer)
