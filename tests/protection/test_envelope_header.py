"""The .m2fp header format: bounded before it is read, and readable without any cipher."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from m2fp.errors import IntegrityError
from m2fp.protection.envelope_header import PREFIX, is_envelope, new_header, read_header
from m2fp.protection.keys import generate_key, key_id


def test_hostile_header_length_is_refused_before_reading_it():
    data = PREFIX.pack(b"M2FPENC\x00", 1, 2 << 20) + b"{}"
    with pytest.raises(IntegrityError, match="header too large"):
        read_header(io.BytesIO(data), file_size=len(data))


def test_a_new_header_reads_back_as_written():
    key = generate_key()
    header = new_header(
        config={"classes": []}, key=key, plaintext_size=0, plaintext_sha256="0" * 64
    )
    assert is_envelope(header.raw)
    # an empty payload is one empty chunk: the header, then one tag
    again = read_header(io.BytesIO(header.raw), file_size=header.file_size)
    assert again == header
    assert again.key_id == key_id(key)


def test_the_format_needs_no_cipher():
    """Telling an .m2fp file apart and describing it works where ``cryptography`` is absent."""
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from m2fp.protection import envelope_header\n"
        "assert envelope_header.is_envelope(b'M2FPENC\\x00')\n"
        "try:\n"
        "    import m2fp.protection.envelope_chunks\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "CheckpointError" in result.stdout and "m2fp[crypto]" in result.stdout
