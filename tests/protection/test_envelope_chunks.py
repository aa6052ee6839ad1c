"""The .m2fp chunk encryption: round trips at every chunk boundary, and every kind of tampering
caught."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import threading

import pytest
from cryptography.exceptions import InvalidTag

from m2fp.errors import CheckpointError, IntegrityError, ModelKeyError
from m2fp.protection import envelope_chunks
from m2fp.protection.envelope_chunks import (
    decrypt_chunks,
    decrypted_sections,
    encrypt_chunks,
    split_payload,
)
from m2fp.protection.envelope_header import (
    MIN_CHUNK_SIZE,
    PREFIX,
    TAG_BYTES,
    Attachment,
    Header,
    new_header,
    read_header,
)
from m2fp.protection.keys import generate_key, key_id
from tests.conftest import golden_config
from tests.utils.model_keys import assert_no_key

CS = MIN_CHUNK_SIZE
KEY = generate_key()
# 3.5 chunks: three full chunks and a short last one
PAYLOAD = bytes(range(256)) * (CS * 7 // 2 // 256)


def seal(payload: bytes, key: bytes = KEY, *, sha256: str | None = None) -> bytes:
    header = new_header(
        config=golden_config(),
        key=key,
        plaintext_size=len(payload),
        plaintext_sha256=sha256 or hashlib.sha256(payload).hexdigest(),
        chunk_size=CS,
    )
    out = io.BytesIO()
    encrypt_chunks(out, header, key, split_payload(header, payload))
    return out.getvalue()


def open_sealed(data: bytes, key: bytes = KEY, *, file_size: int | None = None) -> bytes:
    stream = io.BytesIO(data)
    header = read_header(stream, file_size=len(data) if file_size is None else file_size)
    return b"".join(bytes(chunk) for chunk in decrypt_chunks(stream, header, key))


def header_of(data: bytes) -> Header:
    return read_header(io.BytesIO(data), file_size=len(data))


@pytest.mark.parametrize("size", [0, 1, CS - 1, CS, CS + 1, 3 * CS, 3 * CS + 7])
def test_round_trip_at_chunk_boundaries(size):
    payload = bytes((i * 7) % 251 for i in range(size))
    data = seal(payload)
    header = header_of(data)
    assert header.chunk_count == max(1, -(-size // CS))
    assert len(data) == header.file_size == len(header.raw) + size + header.chunk_count * TAG_BYTES
    assert open_sealed(data) == payload


def test_header_carries_the_facts_but_not_the_key():
    data = seal(PAYLOAD)
    header = header_of(data)
    magic, version, length = PREFIX.unpack_from(data)
    assert magic == b"M2FPENC\x00" and version == 1
    document = json.loads(data[PREFIX.size : PREFIX.size + length])
    assert document["cipher"] == "AES-256-GCM" and document["kdf"] == "HKDF-SHA256"
    assert document["chunk_size"] == CS and document["payload"] == "safetensors"
    assert document["key_id"] == key_id(KEY) == header.key_id
    assert document["plaintext_size"] == len(PAYLOAD)
    assert document["plaintext_sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert document["model"] == golden_config()
    assert_no_key(data, KEY)


def test_each_file_gets_its_own_salt_and_ciphertext():
    first, second = seal(PAYLOAD), seal(PAYLOAD)
    assert header_of(first).salt != header_of(second).salt
    body = len(header_of(first).raw)
    assert first[body:] != second[body:]
    assert PAYLOAD[:64] not in first


def test_wrong_key_is_named_by_key_ids_only():
    other = generate_key()
    with pytest.raises(ModelKeyError) as info:
        open_sealed(seal(PAYLOAD), other)
    message = str(info.value)
    assert key_id(KEY) in message and key_id(other) in message
    assert_no_key(message, KEY, other)


def test_every_header_byte_is_protected():
    data = seal(PAYLOAD)
    header_end = len(header_of(data).raw)
    for position in range(header_end):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        with pytest.raises(CheckpointError):
            open_sealed(bytes(tampered))


def test_a_forged_key_id_does_not_help_a_wrong_key():
    other = generate_key()
    data = seal(PAYLOAD)
    forged = data.replace(key_id(KEY).encode(), key_id(other).encode())
    with pytest.raises(IntegrityError, match="chunk 1 of 4 failed authentication"):
        open_sealed(forged, other)


def chunk_offset(data: bytes, index: int) -> int:
    return len(header_of(data).raw) + index * (CS + TAG_BYTES)


@pytest.mark.parametrize(
    ("where", "chunk"),
    [
        (lambda d: chunk_offset(d, 0), 1),  # first ciphertext byte
        (lambda d: chunk_offset(d, 1) + CS // 2, 2),  # middle of the body
        (lambda d: chunk_offset(d, 1) - 1, 1),  # last byte of a tag
        (lambda d: chunk_offset(d, 3), 4),  # the last chunk's ciphertext
        (lambda d: len(d) - 1, 4),  # the last chunk's tag
    ],
)
def test_flipped_body_byte_names_the_chunk(where, chunk):
    data = bytearray(seal(PAYLOAD))
    data[where(data)] ^= 0x80
    with pytest.raises(IntegrityError, match=f"chunk {chunk} of 4 failed authentication"):
        open_sealed(bytes(data))


@pytest.mark.parametrize(
    "cut",
    [
        lambda d: len(d) - 1,
        lambda d: chunk_offset(d, 2) + 100,  # mid-chunk
        lambda d: chunk_offset(d, 3),  # at a chunk boundary: the final chunk dropped
        lambda d: chunk_offset(d, 1),
        lambda d: chunk_offset(d, 0),  # header only
        lambda d: 30,  # inside the header
        lambda d: 5,  # inside the magic
    ],
)
def test_truncation_is_detected(cut):
    data = seal(PAYLOAD)
    with pytest.raises(CheckpointError, match=r"truncated|not an \.m2fp file"):
        open_sealed(data[: cut(data)])


@pytest.mark.parametrize("extra", [b"\x00", b"x" * 100, b"\x00" * (CS + TAG_BYTES)])
def test_trailing_bytes_are_detected(extra):
    with pytest.raises(IntegrityError, match="unexpected bytes after its end"):
        open_sealed(seal(PAYLOAD) + extra)


def test_bytes_appended_while_reading_are_detected():
    data = seal(PAYLOAD)
    with pytest.raises(IntegrityError, match="unexpected bytes after its end"):
        open_sealed(data + b"late", file_size=len(data))


def test_reordered_chunks_are_detected():
    data = seal(PAYLOAD)
    a, b, c = chunk_offset(data, 0), chunk_offset(data, 1), chunk_offset(data, 2)
    swapped = data[:a] + data[b:c] + data[a:b] + data[c:]
    with pytest.raises(IntegrityError, match="chunk 1 of 4"):
        open_sealed(swapped)


def test_chunks_are_bound_to_their_index_and_finality():
    data = seal(PAYLOAD)
    header = header_of(data)
    cipher = envelope_chunks._file_cipher(KEY, header.salt)
    start = chunk_offset(data, 1)
    sealed = data[start : start + CS + TAG_BYTES]
    out = bytearray(CS)
    cipher.decrypt_into(
        envelope_chunks._nonce(1), sealed, envelope_chunks.chunk_aad(header, 1, final=False), out
    )
    assert bytes(out) == PAYLOAD[CS : 2 * CS]
    for index, final in [(1, True), (0, False), (2, False)]:
        with pytest.raises(InvalidTag):
            cipher.decrypt_into(
                envelope_chunks._nonce(1),
                sealed,
                envelope_chunks.chunk_aad(header, index, final=final),
                out,
            )


def test_hash_mismatch_after_valid_tags_is_refused():
    data = seal(PAYLOAD, sha256=hashlib.sha256(b"other weights").hexdigest())
    with pytest.raises(IntegrityError, match="do not match the sha256"):
        open_sealed(data)


@pytest.mark.parametrize("where", [0, CS + 5, 3 * CS + 1])
def test_hash_mismatch_of_an_attachment_is_refused(where):
    """The hashing runs a chunk behind the decryption, on another thread: a wrong byte in any
    chunk of a section (first, middle, last) still fails the digest."""
    attachment = bytearray(ATTACHED)
    attachment[where] ^= 1  # sealed with valid tags, but not what the header's digest says
    sealed = seal_with_attachment(bytes(attachment), digest_of=bytes(ATTACHED))
    with pytest.raises(IntegrityError, match="attachment extra does not match"):
        open_sealed(sealed)


def test_closing_early_stops_the_hashing_and_wipes():
    data = seal(PAYLOAD)
    stream = io.BytesIO(data)
    chunks = decrypt_chunks(stream, read_header(stream, file_size=len(data)), KEY)
    first, second = next(chunks), next(chunks)
    assert bytes(first) and bytes(second)
    chunks.close()
    assert not any(first) and not any(second)
    assert not [t for t in threading.enumerate() if t.name.startswith("m2fp-envelope-hash")]


def test_decrypted_chunk_buffer_is_zeroed_when_done():
    data = seal(PAYLOAD)
    stream = io.BytesIO(data)
    views = list(decrypt_chunks(stream, read_header(stream, file_size=len(data)), KEY))
    assert all(not any(view) for view in views)


def test_other_files_and_versions():
    with pytest.raises(CheckpointError, match=r"not an \.m2fp file"):
        open_sealed(b"PK\x03\x04" + bytes(100))
    data = bytearray(seal(PAYLOAD))
    struct.pack_into(">H", data, 8, 3)
    with pytest.raises(CheckpointError, match=r"unsupported \.m2fp format version 3"):
        open_sealed(bytes(data))
    # version 2 is the format with attachments: a file labelled 2 without them is corrupt
    struct.pack_into(">H", data, 8, 2)
    with pytest.raises(IntegrityError, match="attachments"):
        open_sealed(bytes(data))


def test_writer_refuses_inconsistent_input():
    header = new_header(
        config={}, key=KEY, plaintext_size=CS + 1, plaintext_sha256="0" * 64, chunk_size=CS
    )
    with pytest.raises(ValueError, match="do not match"):
        encrypt_chunks(io.BytesIO(), header, KEY, [bytes(CS)])
    with pytest.raises(ValueError, match="do not match"):
        encrypt_chunks(io.BytesIO(), header, KEY, [bytes(CS), bytes(2)])
    with pytest.raises(ValueError, match="another key"):
        encrypt_chunks(io.BytesIO(), header, generate_key(), [])
    for size in (CS - 1, (64 << 20) + 1):
        with pytest.raises(ValueError, match="chunk_size"):
            new_header(
                config={}, key=KEY, plaintext_size=0, plaintext_sha256="0" * 64, chunk_size=size
            )


def seal_with_attachment(
    attachment: bytes, key: bytes = KEY, *, digest_of: bytes | None = None
) -> bytes:
    """PAYLOAD as the weights, then ``attachment`` as section ``extra`` (spanning chunks),
    its header digest that of ``digest_of`` where given (a section sealed with valid tags but
    not the bytes its digest names)."""
    digest = hashlib.sha256(attachment if digest_of is None else digest_of).hexdigest()
    header = new_header(
        config=golden_config(),
        key=key,
        plaintext_size=len(PAYLOAD),
        plaintext_sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        chunk_size=CS,
        attachments=(Attachment(name="extra", size=len(attachment), sha256=digest),),
    )
    out = io.BytesIO()
    encrypt_chunks(out, header, key, split_payload(header, PAYLOAD, attachment))
    return out.getvalue()


ATTACHED = bytes(reversed(range(256))) * (CS * 3 // 256) + b"tail"


def test_decrypted_sections_keeps_only_what_is_asked(tmp_path):
    path = tmp_path / "model.m2fp"
    path.write_bytes(seal_with_attachment(ATTACHED))
    with decrypted_sections(path, KEY, keep={"weights": 100, "extra": None}) as (header, kept):
        assert header.plaintext_size == len(PAYLOAD)
        assert bytes(kept["weights"]) == PAYLOAD[:100]
        assert bytes(kept["extra"]) == ATTACHED
        held = list(kept.values())
    assert all(not any(buffer) for buffer in held)  # wiped when the block ends
    with decrypted_sections(path, KEY, keep={"extra": CS + 5, "absent": None}) as (_, kept):
        assert kept.keys() == {"extra"} and bytes(kept["extra"]) == ATTACHED[: CS + 5]


def test_decrypted_sections_hands_over_only_what_is_named(tmp_path):
    path = tmp_path / "model.m2fp"
    path.write_bytes(seal_with_attachment(ATTACHED))
    keep = {"weights": 100, "extra": None}
    with decrypted_sections(path, KEY, keep=keep, hand_over={"extra"}) as (_, kept):
        held = dict(kept)
    assert bytes(held["extra"]) == ATTACHED  # the caller's now: not wiped
    assert not any(held["weights"])
    # a block that fails wipes the handed-over buffers too
    failed = pytest.raises(RuntimeError)
    with failed, decrypted_sections(path, KEY, keep=keep, hand_over={"extra"}) as (_, kept):
        held = dict(kept)
        raise RuntimeError("the caller failed")
    assert not any(held["extra"]) and not any(held["weights"])


@pytest.mark.parametrize("where", ["weights", "attachment"])
def test_decrypted_sections_authenticates_the_sections_it_does_not_keep(tmp_path, where):
    data = bytearray(seal_with_attachment(ATTACHED))
    data[-20 if where == "attachment" else len(header_of(bytes(data)).raw) + CS + 3] ^= 1
    path = tmp_path / "model.m2fp"
    path.write_bytes(data)
    keep = {"weights": 8} if where == "attachment" else {"extra": None}
    failed = pytest.raises(IntegrityError, match="failed authentication")
    with failed, decrypted_sections(path, KEY, keep=keep):
        pytest.fail("the block ran on a file that does not authenticate")


def test_decrypted_sections_checks_the_pin_and_the_key(tmp_path):
    path = tmp_path / "model.m2fp"
    path.write_bytes(seal_with_attachment(ATTACHED))
    pinned = decrypted_sections(path, KEY, keep={}, expected_sha256="0" * 64)
    with pytest.raises(IntegrityError), pinned:
        pass
    with pytest.raises(ModelKeyError), decrypted_sections(path, generate_key(), keep={}):
        pass
