"""Safetensors weights read as zero-copy views of one bytearray, which can then be wiped.

``safetensors.torch.load`` only accepts ``bytes``, which would add an immutable copy of the
weights that can never be cleared, and it copies every tensor once more. Reading the
safetensors layout (``safetensors_header``) here gives tensors that are views of the caller's
bytearray, so the weights exist in memory once: a plain file is read into the buffer and hashed
there (the hash covers exactly the bytes parsed) and the network takes the views as its
parameters; decrypted weights are copied into the network and the buffer zeroed.
"""

from __future__ import annotations

import torch

from m2fp.weights.safetensors_header import tensor_layout

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


def tensors_from_safetensors(buffer: bytearray | memoryview) -> dict[str, torch.Tensor]:
    """Tensors that share memory with ``buffer``, which holds a safetensors file.

    The tensors are valid only while ``buffer`` is: copy them before wiping it.

    Raises:
        CheckpointError: the layout is malformed.
    """
    tensors: dict[str, torch.Tensor] = {}
    for name, entry in tensor_layout(buffer, file_size=len(buffer)).items():
        dtype = DTYPES[entry.dtype]
        if entry.count == 0:
            tensors[name] = torch.empty(entry.shape, dtype=dtype)
        else:
            flat = torch.frombuffer(buffer, dtype=dtype, count=entry.count, offset=entry.begin)
            tensors[name] = flat.view(entry.shape)
    return tensors
