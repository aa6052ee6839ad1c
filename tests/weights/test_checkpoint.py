"""Safe weight reading: strict keys with readable errors, pickle-free, hash pinning."""

from __future__ import annotations

import io
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from m2fp.build import build_model
from m2fp.errors import CheckpointError, ModelConfigError, ModelNotFoundError
from m2fp.weights.checkpoint import check_state_dict, open_model_dir, read_weights_file
from tests.conftest import GOLDEN, golden_config, golden_state_dict


def make_dir(tmp_path: Path, state: dict, name: str = "pytorch_model.pt") -> Path:
    shutil.copy(GOLDEN / "configuration.json", tmp_path / "configuration.json")
    if name.endswith(".pt"):
        torch.save({"model": state, "iteration": 5}, tmp_path / name)
    else:
        from safetensors.torch import save_file

        save_file(state, str(tmp_path / name))
    return tmp_path


def test_pt_checkpoint_in_modelscope_layout_loads(tmp_path):
    weights = open_model_dir(make_dir(tmp_path, golden_state_dict()))
    assert weights.weights_file == "pytorch_model.pt" and len(weights.sha256) == 64
    assert weights.kind == "directory" and weights.config["num_parsing"] == 20
    reference = golden_state_dict()
    assert weights.state_dict.keys() == reference.keys()
    for key, value in weights.state_dict.items():
        assert torch.equal(value, reference[key]), key


def test_missing_unexpected_and_misshaped_keys_are_named():
    state = golden_state_dict()
    del state["sem_seg_head.predictor.query_feat.weight"]
    state["backbone.extra.weight"] = torch.zeros(1)
    state["sem_seg_head.predictor.class_embed.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError) as info:
        check_state_dict(build_model(golden_config()), state)
    message = str(info.value)
    assert "1 missing key(s): sem_seg_head.predictor.query_feat.weight" in message
    assert "1 unexpected key(s): backbone.extra.weight" in message
    assert "1 mis-shaped key(s): sem_seg_head.predictor.class_embed.bias" in message


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_payload_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = str(marker)
    buffer = io.BytesIO()
    torch.save({"model": {"x": exploit}}, buffer)
    (tmp_path / "pytorch_model.pt").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="weights_only"):
        read_weights_file(tmp_path / "pytorch_model.pt")
    assert not marker.exists()
    # the same bytes would run code under a plain unpickler: the test's payload is real
    torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    assert marker.exists()


def test_plain_pickle_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = str(marker)
    path = tmp_path / "pytorch_model.pt"
    path.write_bytes(pickle.dumps({"model": {"x": exploit}}, protocol=2))
    with pytest.raises(CheckpointError):
        read_weights_file(path)
    assert not marker.exists()


def test_safetensors_preferred_and_hash_pinned(tmp_path):
    directory = make_dir(tmp_path, golden_state_dict(), "model.safetensors")
    weights = open_model_dir(directory)
    assert weights.weights_file == "model.safetensors"
    open_model_dir(directory, expected_sha256=f" {weights.sha256.upper()}\n")
    with pytest.raises(CheckpointError, match="pinned hash"):
        open_model_dir(directory, expected_sha256="0" * 64)


def test_corrupt_safetensors(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    shutil.copy(GOLDEN / "configuration.json", tmp_path / "configuration.json")
    with pytest.raises(CheckpointError, match="could not be parsed"):
        open_model_dir(tmp_path)


def test_missing_pieces(tmp_path):
    with pytest.raises(ModelNotFoundError):
        open_model_dir(tmp_path / "absent")
    with pytest.raises(ModelConfigError, match=r"configuration\.json"):
        open_model_dir(tmp_path)
    shutil.copy(GOLDEN / "configuration.json", tmp_path / "configuration.json")
    with pytest.raises(ModelNotFoundError, match="m2fp model download"):
        open_model_dir(tmp_path)
