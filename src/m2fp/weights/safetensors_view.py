"""Safetensors weights read as zero-copy views of one bytearray, which can then be wiped.

``safetensors.torch.load`` only accepts ``bytes``, which would add an immutable copy of the
weights that can never be cleared, and it copies every tensor once more. Reading the
safetensors layout here gives tensors that are views of the caller's bytearray, so the weights
exist in memory once: a plain file is read into the buffer and hashed there (the hash covers
exactly the bytes parsed) and the network takes the views as its parameters; decrypted weights
are copied into the network and the buffer zeroed.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch

from m2fp.errors import CheckpointError

# safetensors dtype names -> torch dtypes
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
HEADER_LENGTH_BYTES = 8
MAX_HEADER_BYTES = 100 << 20


def _bad(what: str) -> CheckpointError:
    return CheckpointError(f"the safetensors weights could not be parsed ({what})")


def _entry(name: str, entry: Any, data_start: int, data_end: int) -> tuple[torch.dtype, list, int]:
    if not isinstance(entry, dict) or entry.get("dtype") not in DTYPES:
        raise _bad(f"tensor {name!r} has no supported dtype")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _bad(f"tensor {name!r} has a bad shape")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) for o in offsets)
    ):
        raise _bad(f"tensor {name!r} has bad offsets")
    dtype = DTYPES[entry["dtype"]]
    begin, end = data_start + offsets[0], data_start + offsets[1]
    if not data_start <= begin <= end <= data_end:
        raise _bad(f"tensor {name!r} lies outside the data")
    if end - begin != math.prod(shape) * dtype.itemsize:
        raise _bad(f"tensor {name!r} size does not match its shape")
    return dtype, shape, begin


def tensors_from_safetensors(buffer: bytearray | memoryview) -> dict[str, torch.Tensor]:
    """Tensors that share memory with ``buffer``, which holds a safetensors file.

    The tensors are valid only while ``buffer`` is: copy them before wiping it.

    Raises:
        CheckpointError: the layout is malformed.
    """
    if len(buffer) < HEADER_LENGTH_BYTES:
        raise _bad("too short")
    length = int.from_bytes(buffer[:HEADER_LENGTH_BYTES], "little")
    data_start = HEADER_LENGTH_BYTES + length
    if length > MAX_HEADER_BYTES or data_start > len(buffer):
        raise _bad("header length")
    try:
        header = json.loads(bytes(buffer[HEADER_LENGTH_BYTES:data_start]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad("header is not JSON") from None
    if not isinstance(header, dict):
        raise _bad("header is not an object")
    tensors: dict[str, torch.Tensor] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, begin = _entry(name, entry, data_start, len(buffer))
        count = math.prod(shape)
        if count == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            flat = torch.frombuffer(buffer, dtype=dtype, count=count, offset=begin)
            tensors[name] = flat.view(shape)
    return tensors
