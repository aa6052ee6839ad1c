"""Zero-copy safetensors reading over a wipeable bytearray."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import load, save

from m2fp.errors import CheckpointError
from m2fp.protection.plaintext_buffer import wipe
from m2fp.weights.safetensors_view import tensors_from_safetensors
from tests.conftest import golden_state_dict


def test_same_tensors_as_safetensors_itself():
    data = save(golden_state_dict())
    ours = tensors_from_safetensors(bytearray(data))
    theirs = load(data)
    assert ours.keys() == theirs.keys()
    for name, tensor in theirs.items():
        assert ours[name].dtype == tensor.dtype and torch.equal(ours[name], tensor), name


def test_every_dtype_and_empty_tensors():
    tensors = {
        "f64": torch.randn(3, dtype=torch.float64),
        "f16": torch.randn(2, 3).half(),
        "bf16": torch.randn(5).bfloat16(),
        "i64": torch.arange(4),
        "i32": torch.arange(3, dtype=torch.int32),
        "i16": torch.arange(3, dtype=torch.int16),
        "i8": torch.arange(-2, 2, dtype=torch.int8),
        "u8": torch.arange(7, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 4),
        "scalar": torch.tensor(3.5),
    }
    ours = tensors_from_safetensors(bytearray(save(tensors, metadata={"format": "pt"})))
    assert ours.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert ours[name].shape == tensor.shape and torch.equal(ours[name], tensor), name


def test_tensors_share_the_buffer_and_wipe_clears_it():
    buffer = bytearray(save({"w": torch.ones(4, 4)}))
    tensors = tensors_from_safetensors(buffer)
    assert tensors["w"].sum() == 16
    wipe(buffer)
    assert not any(buffer) and tensors["w"].sum() == 0
    wipe(bytearray())


def layout(header: dict, data: bytes) -> bytearray:
    body = json.dumps(header).encode()
    return bytearray(struct.pack("<Q", len(body)) + body + data)


@pytest.mark.parametrize(
    ("buffer", "reason"),
    [
        (bytearray(b"\x01"), "too short"),
        (bytearray(struct.pack("<Q", 1 << 40)), "header length"),
        (layout({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"1234"), "outside"),
        (layout({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)), "size"),
        (
            layout({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 0]}}, bytes(8)),
            "outside",
        ),
        (layout({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8)), "shape"),
        (layout({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)), "dtype"),
        (layout({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, bytes(8)), "offsets"),
        (layout({"a": "x"}, b""), "dtype"),
        (layout([], b""), "not an object"),
        (bytearray(struct.pack("<Q", 2) + b"\xff\xfe"), "not JSON"),
    ],
)
def test_malformed_layouts_are_refused(buffer, reason):
    with pytest.raises(CheckpointError, match=reason):
        tensors_from_safetensors(buffer)
