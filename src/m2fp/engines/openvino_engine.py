"""Run an ``OpenVINOPackage`` on the CPU: the ``M2FP.forward`` contract, one compiled model per
input shape, a bounded number of them kept.

The graphs have dynamic height and width, but OpenVINO's CPU plugin compiles the head only for
a static shape, so each input shape gets its own compiled model (about 2 s for R101 on two
cores, once per shape); the most recently used ``max_shapes`` are kept, each holding its own
repacked weights (about 390 MB of RSS per shape for R101, measured by bench_engines.py).
Inference precision is pinned to f32: on CPUs with bf16 the plugin would otherwise silently
compute the fp32 graph in bf16.

``bf16`` runs the fp32 package with both graphs compiled for bf16: every convolution, linear
layer and attention matmul of the backbone, the pixel decoder and the transformer decoder on
AVX512-BF16 / AMX. What must stay exact stays exact without any marking: the deformable
sampler's row indices are integer arithmetic in the graph (``ms_deform_attn_sample`` computes
them in int64, which the CPU plugin runs in i32), and the plugin lowers only f32 nodes, so
``EmbeddingBagOffsetsSum`` always gets exact rows (``tests/engines/test_openvino_bf16.py``
reads the compiled graph's per-node precisions to hold this). The sampling positions' fractions
(the bilinear weights) are computed in bf16, like everything else in f32 there: OpenVINO
2026.4's CPU plugin honours no precision marking that Python can set (``disable_fp16_compression``
on the 519 nodes between the linear layers and the sampler changes no output bit), and keeping
them f32 by hand (bf16 only inside matmuls and convolutions, Converts around each) was slower
than the whole head in bf16 (BENCHMARKS.md, engines).

``infer`` is numpy in, numpy out and this module never imports torch, so the slim runtime
without PyTorch runs it; ``__call__`` is the same for the torch engines' tensor contract.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

import numpy as np

from m2fp.compute.cpu_features import BF16_FLAGS, bf16_units, cpu_flags
from m2fp.engines.network_input import check_network_input
from m2fp.engines.openvino_package import OpenVINOPackage, import_openvino, package_precision
from m2fp.errors import PrecisionUnsupportedError

if TYPE_CHECKING:
    import torch

DEFAULT_MAX_SHAPES = 2  # landscape and portrait 640-side photos; ~390 MB each for R101
FEATURE_STRIDES = (4, 8, 16, 32)  # res2..res5
# OpenVINO's inference precision per graph, for each engine precision
GRAPH_PRECISIONS = {
    "fp32": {"backbone": "f32", "head": "f32"},
    "bf16": {"backbone": "bf16", "head": "bf16"},
    "int8": {"backbone": "f32", "head": "f32"},  # the int8 layers are int8 in the graph
}


def check_openvino_bf16(flags: frozenset[str]) -> None:
    """Refuse OpenVINO bf16 on a CPU without native bf16, where the plugin emulates it.

    Raises:
        PrecisionUnsupportedError: none of ``BF16_FLAGS`` in ``flags``.
    """
    if not bf16_units(flags):
        raise PrecisionUnsupportedError(
            f"engine openvino in bf16 needs a CPU with native bf16 ({' or '.join(BF16_FLAGS)}); "
            "this one has neither: use fp32 or int8"
        )


class OpenVINOEngine:
    """Class and mask logits from a normalised image batch, computed by OpenVINO.

    Thread-safe: compiled models are shared, each call has its own infer requests.

    Args:
        package: the converted network (backbone and head graphs, fp32 or int8).
        precision: ``fp32``, ``bf16`` (from an fp32 package, compiled for bf16) or ``int8``
            (an int8 package); None: the package's.
        max_shapes: compiled input shapes kept in memory (least recently used dropped).
        num_threads: CPU threads per inference (``INFERENCE_NUM_THREADS``); None lets
            OpenVINO use every core.
        pinning: bind OpenVINO's threads to cores (``ENABLE_CPU_PINNING``): only where the
            process owns them (``m2fp.compute.threads.ThreadPlan.pinning``); None: OpenVINO's
            default.

    Raises:
        ValueError: bad ``max_shapes``/``num_threads``, or ``precision`` not one the package
            runs at.
        PrecisionUnsupportedError: bf16 on a CPU without native bf16.
    """

    def __init__(
        self,
        *,
        package: OpenVINOPackage,
        precision: str | None = None,
        max_shapes: int = DEFAULT_MAX_SHAPES,
        num_threads: int | None = None,
        pinning: bool | None = None,
    ) -> None:
        if max_shapes < 1:
            raise ValueError("max_shapes must be at least 1")
        if num_threads is not None and num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        precision = precision or package.precision
        if package_precision(precision) != package.precision:
            raise ValueError(f"a {package.precision} package does not run in {precision}")
        if precision == "bf16":
            check_openvino_bf16(cpu_flags())
        ov = import_openvino()
        self.precision = precision
        self.max_shapes = max_shapes
        self._core = ov.Core()
        # the graphs may share the package's buffer (OpenVINOPackage.models): kept alive here
        self._package = package
        self._models = package.models(self._core)
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
        if num_threads is not None:
            config["INFERENCE_NUM_THREADS"] = num_threads
        if pinning is not None:
            config["ENABLE_CPU_PINNING"] = pinning
        self._configs = {
            part: {**config, "INFERENCE_PRECISION_HINT": hint}
            for part, hint in GRAPH_PRECISIONS[precision].items()
        }
        self._compiled: collections.OrderedDict[tuple[int, int], list] = collections.OrderedDict()
        self._lock = threading.Lock()

    @property
    def cached_shapes(self) -> list[tuple[int, int]]:
        """Input (H, W) with a compiled model, least recently used first."""
        with self._lock:
            return list(self._compiled)

    def compiled(self, height: int, width: int) -> list:
        """The compiled backbone and head for one input size, compiling them if needed."""
        key = (height, width)
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                return self._compiled[key]
        # compile outside the lock: seconds, and other shapes may run meanwhile
        backbone, head = self._models["backbone"].clone(), self._models["head"].clone()
        backbone.reshape({backbone.inputs[0]: [1, 3, height, width]})
        # the head's inputs: res2..res5 at 1/4 .. 1/32 of the input
        head.reshape(
            {
                port: [1, port.get_partial_shape()[1], height // stride, width // stride]
                for port, stride in zip(head.inputs, FEATURE_STRIDES, strict=True)
            }
        )
        compiled = [
            self._core.compile_model(graph, "CPU", self._configs[part])
            for part, graph in (("backbone", backbone), ("head", head))
        ]
        with self._lock:
            self._compiled[key] = compiled
            self._compiled.move_to_end(key)
            while len(self._compiled) > self.max_shapes:
                self._compiled.popitem(last=False)
        return compiled

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``infer`` on a CPU tensor, for the ``NetworkEngine`` contract (same outputs as
        tensors)."""
        import torch

        class_logits, mask_logits = self.infer(images.detach().cpu().numpy())
        return torch.from_numpy(class_logits), torch.from_numpy(mask_logits)

    def infer(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Args:
            images: 1x3xHxW float32, normalised, zero-padded; H, W multiples of 32 in
                [SIDE_MIN, SIDE_MAX] (``m2fp.engines.network_input``).

        Returns:
            class logits 1xQx(K+1) and mask logits 1xQxH/4xW/4, float32 arrays the caller
            owns.

        Raises:
            ValueError: ``images`` breaks the contract above.
        """
        height, width = check_network_input(images)
        ov = import_openvino()
        stages = self.compiled(height, width)
        array = np.ascontiguousarray(images)
        backbone, head = (stage.create_infer_request() for stage in stages)
        backbone.infer({0: ov.Tensor(array, shared_memory=True)})
        # the backbone's output tensors become the head's inputs without a copy
        for index in range(len(FEATURE_STRIDES)):
            head.set_input_tensor(index, backbone.get_output_tensor(index))
        head.infer()
        class_logits = np.array(head.get_output_tensor(0).data)
        mask_logits = np.array(head.get_output_tensor(1).data)
        return class_logits, mask_logits
