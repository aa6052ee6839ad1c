"""Sigmoid and softmax on float32 numpy arrays, as post-processing applies them to the
network's logits.

numpy, not torch: post-processing of both engines runs on the CPU on arrays, and the slim
runtime has no PyTorch. Both keep float32 (the dtype PyTorch computes them in) and never warn
on extreme logits.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) elementwise, float32; exp overflowing to inf gives exactly 0."""
    with np.errstate(over="ignore"):
        out = np.exp(-x, dtype=np.float32)
    out += np.float32(1)
    return np.reciprocal(out, out=out)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along ``axis``, float32, shifted by the maximum so it cannot
    overflow."""
    shifted = np.exp(x - x.max(axis=axis, keepdims=True), dtype=np.float32)
    return shifted / shifted.sum(axis=axis, keepdims=True)
