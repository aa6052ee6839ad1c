"""ONNX export of the network: dynamic height and width, the ``grid_sample`` sampler.

The gather sampler's ``embedding_bag`` with per-sample weights does not export to a graph
ONNX Runtime accepts (its int32 indices end up concatenated with int64), so the export samples
with the ``grid_sample`` formulation, which computes the same values (``GridSample`` needs opset
16; 17 and up are accepted, 18 is the default).

Graph: input ``images`` float32 1x3xHxW (normalised as ``M2FP.pixel_mean``/``pixel_std`` say,
zero-padded so H and W are multiples of 32, sides 64-4096); outputs ``class_logits``
1xQx(K+1) and ``mask_logits`` 1xQxH/4xW/4. The file holds the weights in plaintext.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from m2fp.defaults import DEFAULT_ONNX_OPSET
from m2fp.engines.export import Sampler, export_network
from m2fp.errors import MissingExtraError
from m2fp.modeling.m2fp import M2FP
from m2fp.weights.whole_file import PRIVATE, new_file

MIN_OPSET = 17
DEFAULT_OPSET = DEFAULT_ONNX_OPSET
INPUT_NAMES = ("images",)
OUTPUT_NAMES = ("class_logits", "mask_logits")
# the exporter's own chatter (torchvision ops it skips, constant folding it skips, pytree
# deprecations): nothing a user of the exported graph can act on
_CHATTY_LOGGERS = ("torch.onnx", "onnxscript")


@contextmanager
def _exporter_quiet() -> Iterator[None]:
    """Warnings of the exporters silenced for one export; their errors still propagate."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_onnx(model: M2FP, *, opset: int = DEFAULT_OPSET) -> bytes:
    """The network as a serialised ONNX ``ModelProto``.

    Raises:
        ValueError: ``opset`` below 17.
        ImportError: ``onnx``/``onnxscript`` are not installed.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"ONNX export needs opset {MIN_OPSET} or newer, not {opset}")
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as exc:
        raise MissingExtraError(
            "ONNX export needs the optional packages: pip install 'm2fp[onnx]'"
        ) from exc
    import torch

    with _exporter_quiet():
        program = torch.onnx.export(
            export_network(model, sampler=Sampler.GRID),
            dynamo=True,
            opset_version=opset,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            verbose=False,
        )
    return program.model_proto.SerializeToString()


def write_onnx(model: M2FP, path: str | os.PathLike, *, opset: int = DEFAULT_OPSET) -> int:
    """Export to a new file ``path`` (mode 0600: it holds the weights in plaintext).

    Returns: its size in bytes.

    Raises:
        CheckpointError: ``path`` exists or cannot be written (``m2fp.weights.whole_file``).
    """
    data = export_onnx(model, opset=opset)
    with new_file(Path(path), mode=PRIVATE) as handle:
        handle.write(data)
    return len(data)
