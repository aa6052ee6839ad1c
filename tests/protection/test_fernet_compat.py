"""The Fernet compatibility format: a Fernet token around the bytes of a torch.save file."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import pytest
import torch
from cryptography.fernet import Fernet

from m2fp import HumanParser
from m2fp.errors import CheckpointError, IntegrityError, ModelConfigError, ModelKeyError
from m2fp.protection.keys import encode_key
from m2fp.weights.loader import load_model
from tests.conftest import GOLDEN, golden_options, golden_state_dict
from tests.utils.write_watch import nothing_written

NAME = "pytorch_model.pt.enc"


def checkpoint_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save({"model": state, "iteration": 1}, buffer)
    return buffer.getvalue()


def wrap(directory: Path, data: bytes, fernet_key: bytes | str) -> Path:
    directory.mkdir(exist_ok=True)
    shutil.copy(GOLDEN / "configuration.json", directory / "configuration.json")
    path = directory / NAME
    path.write_bytes(Fernet(fernet_key).encrypt(data))
    return path


@pytest.fixture(scope="module")
def plain_checkpoint() -> bytes:
    return checkpoint_bytes(golden_state_dict())


def test_fernet_wrapped_checkpoint_gives_identical_outputs(
    tmp_path, private_tmp, plain_checkpoint, model_key, tiny_parser, golden_image_path
):
    path = wrap(tmp_path / "model", plain_checkpoint, encode_key(model_key))
    with nothing_written(private_tmp, path.parent):
        parser = HumanParser.from_pretrained(path, key=model_key, options=golden_options())
    plain = tiny_parser.model.state_dict()
    assert all(torch.equal(v, parser.model.state_dict()[k]) for k, v in plain.items())
    expected, got = tiny_parser(golden_image_path), parser(golden_image_path)
    assert (got.label_map == expected.label_map).all()
    assert got.to_modelscope()["scores"] == expected.to_modelscope()["scores"]


def test_a_key_from_fernet_generate_key_is_accepted(tmp_path, plain_checkpoint):
    fernet_key = Fernet.generate_key()
    path = wrap(tmp_path / "model", plain_checkpoint, fernet_key)
    for form in (fernet_key, fernet_key.decode()):
        _, config, digest, _ = load_model(path, key=form)
        assert config["num_parsing"] == 20
        assert digest == hashlib.sha256(plain_checkpoint).hexdigest()


def test_hash_pin_covers_the_decrypted_checkpoint(tmp_path, plain_checkpoint, model_key):
    path = wrap(tmp_path / "model", plain_checkpoint, encode_key(model_key))
    digest = hashlib.sha256(plain_checkpoint).hexdigest()
    assert load_model(path, key=model_key, expected_sha256=digest)[2] == digest
    with pytest.raises(IntegrityError, match="pinned hash"):
        load_model(path, key=model_key, expected_sha256="1" * 64)


def test_wrong_key_or_modified_token_is_refused(tmp_path, plain_checkpoint, model_key):
    path = wrap(tmp_path / "model", b"small", encode_key(model_key))
    with pytest.raises(ModelKeyError, match="wrong key or modified file"):
        load_model(path, key=Fernet.generate_key())
    token = bytearray(path.read_bytes())
    token[60] = ord("A") if token[60] != ord("A") else ord("B")
    path.write_bytes(bytes(token))
    with pytest.raises(ModelKeyError, match="wrong key or modified file"):
        load_model(path, key=model_key)


def test_config_must_sit_next_to_the_token(tmp_path, plain_checkpoint, model_key):
    path = wrap(tmp_path / "model", plain_checkpoint, encode_key(model_key))
    (path.parent / "configuration.json").unlink()
    with pytest.raises(ModelConfigError, match=r"no configuration\.json"):
        load_model(path, key=model_key)


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_payload_inside_the_token_is_not_executed(tmp_path, model_key):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = str(marker)
    payload = checkpoint_bytes({"x": exploit})
    path = wrap(tmp_path / "model", payload, encode_key(model_key))
    with pytest.raises(CheckpointError, match="weights_only"):
        HumanParser.from_pretrained(path, key=model_key)
    assert not marker.exists()
    # the same decrypted bytes would run code under a plain unpickler: the payload is real
    data = Fernet(encode_key(model_key)).decrypt(path.read_bytes())
    torch.load(io.BytesIO(data), weights_only=False)
    assert marker.exists()


def test_decrypted_tensors_are_cleared_after_loading(
    tmp_path, plain_checkpoint, model_key, monkeypatch
):
    from m2fp.weights import loader

    seen: list[dict] = []
    original = loader.fill_skeleton

    def keep(config, state_dict, **kwargs):
        seen.append(state_dict)
        return original(config, state_dict, **kwargs)

    monkeypatch.setattr(loader, "fill_skeleton", keep)
    path = wrap(tmp_path / "model", plain_checkpoint, encode_key(model_key))
    model, *_ = load_model(path, key=model_key)
    assert all(not v.any() for v in seen[0].values())
    assert any(p.abs().sum() > 0 for p in model.parameters())


def test_model_config_of_a_fernet_token_is_the_config_beside_it(
    tmp_path, plain_checkpoint, model_key, tiny_model_dir
):
    """``weights.loader.model_config`` (what ``m2fp batch`` reads the classes from) takes a
    Fernet token's config from the ``configuration.json`` beside it, as loading does."""
    from m2fp.weights.loader import model_config

    path = wrap(tmp_path / "model", plain_checkpoint, encode_key(model_key))
    assert model_config(path, key=model_key) == model_config(tiny_model_dir)
    (path.parent / "configuration.json").unlink()
    with pytest.raises(ModelConfigError, match=r"no configuration\.json"):
        model_config(path, key=model_key)
