"""Model keys: formats, key files created 0600 and refused when others can read them."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from m2fp.errors import ModelKeyError
from m2fp.protection.keys import (
    KEY_BYTES,
    encode_key,
    generate_key,
    key_from_environment,
    key_id,
    parse_key,
    read_key_file,
    resolve_model_key,
    write_key_file,
)
from tests.utils.model_keys import assert_no_key, make_key_file


def test_generated_keys_are_256_bit_and_distinct():
    keys = {generate_key() for _ in range(8)}
    assert len(keys) == 8 and all(len(k) == KEY_BYTES for k in keys)


def test_key_file_text_is_a_fernet_key():
    from cryptography.fernet import Fernet

    key = generate_key()
    text = encode_key(key)
    assert len(text) == 44 and base64.urlsafe_b64decode(text) == key
    token = Fernet(text.encode()).encrypt(b"x")
    assert Fernet(text.encode()).decrypt(token) == b"x"


@pytest.mark.parametrize(
    "form",
    [
        lambda k: k,
        lambda k: bytearray(k),
        lambda k: k.hex(),
        lambda k: k.hex().upper() + "\n",
        lambda k: base64.b64encode(k).decode(),
        lambda k: base64.urlsafe_b64encode(k) + b"\n",
        lambda k: "  " + base64.urlsafe_b64encode(k).decode() + "\r\n",
    ],
)
def test_accepted_key_forms(form):
    key = generate_key()
    assert parse_key(form(key)) == key


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        "short",
        bytes(31),
        bytes(33),
        "zz" * 32,
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        "é" * 44,
        b"\xff" * 44,
    ],
)
def test_malformed_keys_are_refused_without_echo(bad):
    with pytest.raises(ModelKeyError) as info:
        parse_key(bad)
    assert "256-bit" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_key_id_is_stable_short_and_not_the_key():
    key = generate_key()
    assert key_id(key) == key_id(key.hex()) == key_id(encode_key(key))
    assert len(key_id(key)) == 16 and key_id(key) != key_id(generate_key())
    assert_no_key(key_id(key), key)


def test_keygen_file_is_0600_and_never_overwritten(tmp_path):
    path = tmp_path / "m2fp.key"
    key = generate_key()
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        write_key_file(path, key)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path) == key
    with pytest.raises(ModelKeyError, match="already exists"):
        write_key_file(path, generate_key())
    assert read_key_file(path) == key


def test_keygen_does_not_follow_a_planted_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    (tmp_path / "m2fp.key").symlink_to(target)
    with pytest.raises(ModelKeyError, match="already exists"):
        write_key_file(tmp_path / "m2fp.key", generate_key())
    assert not target.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o610])
def test_key_file_open_to_group_or_others_is_refused(tmp_path, mode):
    key = generate_key()
    path = make_key_file(tmp_path / "m2fp.key", key, mode)
    with pytest.raises(ModelKeyError) as info:
        read_key_file(path)
    message = str(info.value)
    assert f"mode {mode:04o}" in message and "chmod 600 m2fp.key" in message
    assert_no_key(message, key)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_key_files_are_accepted(tmp_path, mode):
    key = generate_key()
    assert read_key_file(make_key_file(tmp_path / "k", key, mode)) == key


def test_key_file_through_a_symlink_is_checked_at_its_target(tmp_path):
    # how Kubernetes mounts secrets: name -> ..data/name
    key = generate_key()
    real = make_key_file(tmp_path / "real.key", key, 0o644)
    (tmp_path / "link.key").symlink_to(real)
    with pytest.raises(ModelKeyError, match="group or others"):
        read_key_file(tmp_path / "link.key")
    real.chmod(0o400)
    assert read_key_file(tmp_path / "link.key") == key


def test_unusable_key_files(tmp_path):
    with pytest.raises(ModelKeyError, match="does not exist"):
        read_key_file(tmp_path / "missing")
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(ModelKeyError, match="not a regular file"):
        read_key_file(folder)
    big = tmp_path / "big"
    big.write_bytes(b"a" * 5000)
    big.chmod(0o600)
    with pytest.raises(ModelKeyError, match="too large"):
        read_key_file(big)
    junk = tmp_path / "junk"
    junk.write_text("not a key\n")
    junk.chmod(0o600)
    with pytest.raises(ModelKeyError, match="256-bit"):
        read_key_file(junk)


def test_resolve_model_key(tmp_path):
    key = generate_key()
    path = make_key_file(tmp_path / "k", key)
    assert resolve_model_key(None, None) is None
    assert resolve_model_key("", "") is None
    assert resolve_model_key(encode_key(key), None) == key
    assert resolve_model_key(None, path) == key
    assert resolve_model_key(None, str(path)) == key
    with pytest.raises(ModelKeyError, match="only one of M2FP_MODEL_KEY and M2FP_MODEL_KEY_FILE"):
        resolve_model_key(encode_key(key), path)


def test_key_from_environment(tmp_path):
    key = generate_key()
    path = make_key_file(tmp_path / "k", key)
    assert key_from_environment({}) is None
    assert key_from_environment({"M2FP_MODEL_KEY": key.hex()}) == key
    assert key_from_environment({"M2FP_MODEL_KEY_FILE": str(path)}) == key
    with pytest.raises(ModelKeyError):
        key_from_environment({"M2FP_MODEL_KEY": "x", "M2FP_MODEL_KEY_FILE": str(path)})
