"""Model keys: 256-bit secrets, how they are written, read and found.

A key file holds the 32 key bytes as URL-safe base64 with padding (44 characters, exactly the
format of a Fernet key, so one file opens both ``.m2fp`` files and Fernet-wrapped checkpoints)
or as 64 hex digits. No function here ever puts the key, or any part of it, into a message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from m2fp.errors import ModelKeyError

KEY_BYTES = 32
KEY_ENV = "M2FP_MODEL_KEY"
KEY_FILE_ENV = "M2FP_MODEL_KEY_FILE"
# a key file is one short line; anything longer is not a key file
MAX_KEY_FILE_BYTES = 1024
KEY_FORMATS = "44 characters of base64 (a Fernet key) or 64 hex digits"
MISSING_KEY = f"no model key was given: pass --key-file, or set {KEY_FILE_ENV} (or {KEY_ENV})"


def generate_key() -> bytes:
    """32 random bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    """The key file text: URL-safe base64, which is also a valid Fernet key."""
    return base64.urlsafe_b64encode(parse_key(key)).decode("ascii")


def parse_key(value: bytes | bytearray | str) -> bytes:
    """The 32 raw key bytes from raw bytes, base64 (standard or URL-safe) or hex text.

    Raises:
        ModelKeyError: not a 256-bit key in one of those forms (the value is not echoed).
    """
    if isinstance(value, (bytes, bytearray)) and len(value) == KEY_BYTES:
        return bytes(value)
    try:
        text = value.decode("ascii") if isinstance(value, (bytes, bytearray)) else value
        text = text.strip()
        if len(text) == 2 * KEY_BYTES:
            raw = bytes.fromhex(text)
        else:
            raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (UnicodeDecodeError, ValueError, binascii.Error):
        raw = b""
    if len(raw) != KEY_BYTES:
        # "from None" everywhere: no chained exception may carry the value into a log
        raise ModelKeyError(f"the model key is not a 256-bit key ({KEY_FORMATS})") from None
    return raw


def key_id(key: bytes) -> str:
    """A short public name for a key: a domain-separated hash, useless for recovering it."""
    return hashlib.sha256(b"m2fp-key-id\x00" + parse_key(key)).hexdigest()[:16]


def write_key_file(path: Path, key: bytes) -> None:
    """Create ``path`` with mode 0600 and write the key; never replaces an existing file.

    Raises:
        ModelKeyError: the file exists or cannot be created.
    """
    text = encode_key(key) + "\n"
    try:
        # O_EXCL: no clobbering and no following a planted symlink; 0o600 from the first byte
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise ModelKeyError(f"{path.name} already exists; not overwriting a key") from None
    except OSError as exc:
        raise ModelKeyError(
            f"the key file {path.name} could not be created: {exc.strerror}"
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


def read_key_file(path: Path) -> bytes:
    """Read a key file, refusing one that group or others may access.

    Raises:
        ModelKeyError: missing, unreadable, too permissive, or not a key.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise ModelKeyError(f"the key file {path.name} does not exist") from None
    except OSError as exc:
        raise ModelKeyError(f"the key file {path.name} could not be read: {exc.strerror}") from None
    try:
        # fstat of the opened file: the file checked is the file read
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ModelKeyError(f"the key file {path.name} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise ModelKeyError(
                f"the key file {path.name} is accessible by group or others (mode {mode:04o}); "
                f"restrict it with: chmod 600 {path.name}"
            )
        with open(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ModelKeyError(f"the key file {path.name} is too large to be a key file")
    return parse_key(data)


def resolve_model_key(key: str | None, key_file: str | os.PathLike[str] | None) -> bytes | None:
    """The model key from a secret value or a key file, whichever is set; None if neither.

    The server calls this once at start-up with its ``M2FP_MODEL_KEY`` and
    ``M2FP_MODEL_KEY_FILE`` settings; the CLI calls it with the environment.

    Raises:
        ModelKeyError: both are set, or the one set is not a usable key.
    """
    key = key or None
    key_file = key_file or None
    if key is not None and key_file is not None:
        raise ModelKeyError(f"set only one of {KEY_ENV} and {KEY_FILE_ENV}")
    if key_file is not None:
        return read_key_file(Path(key_file))
    if key is not None:
        return parse_key(key)
    return None


def key_from_environment(environ: Mapping[str, str] | None = None) -> bytes | None:
    """``resolve_model_key`` applied to ``M2FP_MODEL_KEY`` / ``M2FP_MODEL_KEY_FILE``."""
    env = os.environ if environ is None else environ
    return resolve_model_key(env.get(KEY_ENV), env.get(KEY_FILE_ENV))
