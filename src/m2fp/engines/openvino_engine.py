"""Run an ``OpenVINOPackage`` on the CPU: the ``M2FP.forward`` contract, one compiled model per
input shape, a bounded number of them kept.

The graphs have dynamic height and width, but OpenVINO's CPU plugin compiles this network only
for a static shape, so each input shape gets its own compiled model (about a second for R101,
once per shape); the most recently used ``max_shapes`` are kept, each holding its own
repacked weights. Inference precision is pinned to f32: on CPUs with bf16 the plugin would
otherwise silently compute the fp32 graph in bf16.
"""

from __future__ import annotations

import collections
import threading

import numpy as np
import torch

from m2fp.engines.network_input import check_network_input
from m2fp.engines.openvino_package import OpenVINOPackage, _openvino

DEFAULT_MAX_SHAPES = 4


class OpenVINOEngine:
    """Class and mask logits from a normalised image batch, computed by OpenVINO.

    Thread-safe: compiled models are shared, each call has its own infer requests.

    Args:
        package: the converted network (fp32 ``network``, or int8 ``backbone`` + ``head``).
        max_shapes: compiled input shapes kept in memory (least recently used dropped).
        num_threads: CPU threads per inference; None lets OpenVINO use every core.
    """

    def __init__(
        self,
        *,
        package: OpenVINOPackage,
        max_shapes: int = DEFAULT_MAX_SHAPES,
        num_threads: int | None = None,
    ) -> None:
        if max_shapes < 1:
            raise ValueError("max_shapes must be at least 1")
        if num_threads is not None and num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        ov = _openvino()
        self.precision = package.precision
        self.max_shapes = max_shapes
        self._core = ov.Core()
        self._models = package.models()
        self._config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if num_threads is not None:
            self._config["INFERENCE_NUM_THREADS"] = num_threads
        self._compiled: collections.OrderedDict[tuple[int, int], list] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    @property
    def cached_shapes(self) -> list[tuple[int, int]]:
        """Input (H, W) with a compiled model, least recently used first."""
        with self._lock:
            return list(self._compiled)

    def compiled(self, height: int, width: int) -> list:
        """The compiled graphs (in execution order) for one input size, compiling if needed."""
        key = (height, width)
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                return self._compiled[key]
        # compile outside the lock: seconds, and other shapes may run meanwhile
        compiled = []
        for name, model in self._models.items():
            graph = model.clone()
            if name in ("network", "backbone"):
                graph.reshape({graph.inputs[0]: [1, 3, height, width]})
            else:  # the head: res2..res5 at 1/4 .. 1/32
                graph.reshape(
                    {
                        port: [1, port.get_partial_shape()[1], height // s, width // s]
                        for port, s in zip(graph.inputs, (4, 8, 16, 32), strict=True)
                    }
                )
            compiled.append(self._core.compile_model(graph, "CPU", self._config))
        with self._lock:
            self._compiled[key] = compiled
            self._compiled.move_to_end(key)
            while len(self._compiled) > self.max_shapes:
                self._compiled.popitem(last=False)
        return compiled

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            images: 1x3xHxW float32, normalised, zero-padded; H, W multiples of 32 in
                [SIDE_MIN, SIDE_MAX] (``m2fp.engines.network_input``).

        Returns:
            class logits 1xQx(K+1) and mask logits 1xQxH/4xW/4, float32.

        Raises:
            ValueError: ``images`` breaks the contract above.
        """
        height, width = check_network_input(images)
        ov = _openvino()
        stages = self.compiled(height, width)
        array = np.ascontiguousarray(images.detach().cpu().numpy())
        requests = [stage.create_infer_request() for stage in stages]
        requests[0].infer({0: ov.Tensor(array, shared_memory=True)})
        for previous, request in zip(requests, requests[1:]):
            # the backbone's output tensors become the head's inputs without a copy
            for index in range(len(previous.model_outputs)):
                request.set_input_tensor(index, previous.get_output_tensor(index))
            request.infer()
        last = requests[-1]
        class_logits = torch.from_numpy(np.array(last.get_output_tensor(0).data))
        mask_logits = torch.from_numpy(np.array(last.get_output_tensor(1).data))
        return class_logits, mask_logits
