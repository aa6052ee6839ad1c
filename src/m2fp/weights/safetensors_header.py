"""The safetensors layout (an 8-byte length, a JSON header of tensor names, dtypes, shapes and
offsets, then the data), checked without PyTorch: what ``safetensors_view`` turns into tensor
views, and all the slim runtime needs to count a model's parameters.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from m2fp.errors import CheckpointError

# safetensors dtype names -> bytes per element
DTYPE_BYTES: dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
HEADER_LENGTH_BYTES = 8
MAX_HEADER_BYTES = 100 << 20
# the most bytes of a safetensors file its layout can need: what a reader keeps of its head
MAX_LAYOUT_BYTES = HEADER_LENGTH_BYTES + MAX_HEADER_BYTES


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of the layout.

    Attributes:
        dtype: the safetensors dtype name (a key of ``DTYPE_BYTES``).
        shape: its dimensions.
        begin: offset of its first byte from the start of the file.
    """

    dtype: str
    shape: tuple[int, ...]
    begin: int

    @property
    def count(self) -> int:
        return math.prod(self.shape)


def bad_layout(what: str) -> CheckpointError:
    return CheckpointError(f"the safetensors weights could not be parsed ({what})")


def _entry(name: str, entry: Any, data_start: int, data_end: int) -> TensorEntry:
    if not isinstance(entry, dict) or entry.get("dtype") not in DTYPE_BYTES:
        raise bad_layout(f"tensor {name!r} has no supported dtype")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise bad_layout(f"tensor {name!r} has a bad shape")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) for o in offsets)
    ):
        raise bad_layout(f"tensor {name!r} has bad offsets")
    begin, end = data_start + offsets[0], data_start + offsets[1]
    if not data_start <= begin <= end <= data_end:
        raise bad_layout(f"tensor {name!r} lies outside the data")
    if end - begin != math.prod(shape) * DTYPE_BYTES[entry["dtype"]]:
        raise bad_layout(f"tensor {name!r} size does not match its shape")
    return TensorEntry(dtype=entry["dtype"], shape=tuple(shape), begin=begin)


def tensor_layout(
    head: bytes | bytearray | memoryview, *, file_size: int
) -> dict[str, TensorEntry]:
    """The tensors a safetensors file of ``file_size`` bytes holds, from its first bytes.

    Args:
        head: the file's first bytes: at least its header (``MAX_LAYOUT_BYTES`` always do),
            or the whole file.
        file_size: the length of the whole file: every tensor must lie inside it.

    Raises:
        CheckpointError: the layout is malformed.
    """
    if len(head) < HEADER_LENGTH_BYTES:
        raise bad_layout("too short")
    length = int.from_bytes(head[:HEADER_LENGTH_BYTES], "little")
    data_start = HEADER_LENGTH_BYTES + length
    if length > MAX_HEADER_BYTES or data_start > min(len(head), file_size):
        raise bad_layout("header length")
    try:
        header = json.loads(bytes(head[HEADER_LENGTH_BYTES:data_start]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad_layout("header is not JSON") from None
    if not isinstance(header, dict):
        raise bad_layout("header is not an object")
    return {
        name: _entry(name, entry, data_start, file_size)
        for name, entry in header.items()
        if name != "__metadata__"
    }
