"""Writing .m2fp files: encrypt a model directory (no pickle inside), rekey, never clobber."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
from pathlib import Path

import pytest
import torch

from m2fp.errors import CheckpointError, IntegrityError, ModelKeyError, ModelNotFoundError
from m2fp.protection.convert import encrypt_model_dir, rekey_file
from m2fp.protection.envelope_chunks import decrypt_chunks
from m2fp.protection.envelope_header import open_envelope
from m2fp.protection.keys import generate_key
from m2fp.weights.loader import load_model
from m2fp.weights.whole_file import new_file
from tests.conftest import GOLDEN, golden_state_dict
from tests.utils.model_keys import SMALL_CHUNK, assert_no_key


def decrypted_payload(path: Path, key: bytes) -> bytes:
    with open_envelope(path) as (stream, header):
        return b"".join(bytes(c) for c in decrypt_chunks(stream, header, key))


def test_pt_directory_becomes_safetensors_inside(tmp_path, model_key):
    source = tmp_path / "model"
    source.mkdir()
    shutil.copy(GOLDEN / "configuration.json", source / "configuration.json")
    torch.save({"model": golden_state_dict()}, source / "pytorch_model.pt")
    out = tmp_path / "model.m2fp"
    header = encrypt_model_dir(source, key=model_key, out=out, chunk_size=SMALL_CHUNK)
    payload = decrypted_payload(out, model_key)
    assert hashlib.sha256(payload).hexdigest() == header.plaintext_sha256
    # safetensors: u64 header length then a JSON object; a torch.save file is a zip of pickles
    assert payload[8:9] == b"{" and not payload.startswith(b"PK")
    from safetensors.torch import load

    reference = golden_state_dict()
    loaded = load(payload)
    assert loaded.keys() == reference.keys()
    assert all(torch.equal(loaded[k], v) for k, v in reference.items())
    assert_no_key(out.read_bytes(), model_key)


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_encrypting_a_malicious_pt_runs_nothing_and_writes_nothing(tmp_path, model_key):
    source = tmp_path / "model"
    source.mkdir()
    shutil.copy(GOLDEN / "configuration.json", source / "configuration.json")
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = str(marker)
    buffer = io.BytesIO()
    torch.save({"model": {"x": exploit}}, buffer)
    (source / "pytorch_model.pt").write_bytes(buffer.getvalue())
    out = tmp_path / "model.m2fp"
    with pytest.raises(CheckpointError, match="weights_only"):
        encrypt_model_dir(source, key=model_key, out=out)
    assert not marker.exists() and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_weights_that_do_not_fit_are_not_encrypted(tmp_path, tiny_model_dir, model_key):
    source = tmp_path / "model"
    shutil.copytree(tiny_model_dir, source)
    from safetensors.torch import save_file

    state = golden_state_dict()
    state.pop("sem_seg_head.predictor.query_feat.weight")
    save_file(state, str(source / "model.safetensors"))
    with pytest.raises(CheckpointError, match="1 missing key"):
        encrypt_model_dir(source, key=model_key, out=tmp_path / "x.m2fp")
    assert not (tmp_path / "x.m2fp").exists()


def test_missing_directory(tmp_path, model_key):
    with pytest.raises(ModelNotFoundError):
        encrypt_model_dir(tmp_path / "none", key=model_key, out=tmp_path / "x.m2fp")


def test_existing_output_is_never_replaced(tmp_path, tiny_model_dir, model_key):
    out = tmp_path / "model.m2fp"
    out.write_bytes(b"precious")
    with pytest.raises(CheckpointError, match="already exists"):
        encrypt_model_dir(tiny_model_dir, key=model_key, out=out)
    assert out.read_bytes() == b"precious"


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "model.m2fp"
    with pytest.raises(KeyboardInterrupt), new_file(out) as stream:
        stream.write(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    no_space = pytest.raises(CheckpointError, match="could not be written: No space left")
    with no_space, new_file(out) as stream:
        stream.write(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []
    with new_file(out) as stream:
        stream.write(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["model.m2fp"] and out.read_bytes() == b"whole"


def test_rekey_moves_the_file_to_the_new_key(tmp_path, encrypted_model, model_key):
    new_key = generate_key()
    out = tmp_path / "rekeyed.m2fp"
    header = rekey_file(encrypted_model, old_key=model_key, new_key=new_key, out=out)
    with open_envelope(encrypted_model) as (_, old_header):
        assert header.plaintext_sha256 == old_header.plaintext_sha256
        assert header.config == old_header.config and header.salt != old_header.salt
    assert decrypted_payload(out, new_key) == decrypted_payload(encrypted_model, model_key)
    with pytest.raises(ModelKeyError, match="wrong model key"):
        load_model(out, key=model_key)
    model, *_ = load_model(out, key=new_key)
    reference = golden_state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())
    assert_no_key(out.read_bytes(), model_key, new_key)


def test_rekey_refuses_the_wrong_old_key(tmp_path, encrypted_model):
    out = tmp_path / "rekeyed.m2fp"
    with pytest.raises(ModelKeyError, match="wrong model key"):
        rekey_file(encrypted_model, old_key=generate_key(), new_key=generate_key(), out=out)
    assert not out.exists()


@pytest.mark.parametrize("damage", ["flip_last_chunk", "truncate"])
def test_rekey_of_a_damaged_file_leaves_no_output(tmp_path, encrypted_model, model_key, damage):
    data = bytearray(encrypted_model.read_bytes())
    if damage == "flip_last_chunk":
        data[-3] ^= 0x01
    else:
        del data[-1000:]
    source = tmp_path / "damaged.m2fp"
    source.write_bytes(bytes(data))
    out = tmp_path / "rekeyed.m2fp"
    with pytest.raises(IntegrityError):
        rekey_file(source, old_key=model_key, new_key=generate_key(), out=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.m2fp"]
