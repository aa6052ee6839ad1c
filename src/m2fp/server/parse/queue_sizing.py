"""How many parses run at once and how many may wait, from the device the model runs on,
unless ``M2FP_MAX_CONCURRENCY`` / ``M2FP_MAX_QUEUE`` say otherwise.

- CPU (either engine): 1 running, 8 waiting. One parse at a time with every core is the
  fastest way through a CPU (BENCHMARKS.md, Threads); 8 parses of ~6 s (R101, 2 cores) wait
  less than the 60 s request timeout.
- CUDA: 2 running when the GPU has memory for two (``GPU_BYTES_PER_PARSE`` each), else 1;
  16 waiting per running slot. The GPU runs one network pass at a time anyway (one stream),
  so a second slot only lets one request's decoding and post-processing on the CPU overlap
  the other's network pass; more slots would only hold more activations. A GPU parse takes a
  fraction of a second, so a longer queue still drains well inside the timeout; each waiting
  request holds at most its upload (``M2FP_MAX_UPLOAD_BYTES``).
"""

from __future__ import annotations

from typing import NamedTuple

CPU_CONCURRENCY, CPU_QUEUE = 1, 8
CUDA_CONCURRENCY, CUDA_QUEUE_PER_SLOT = 2, 16
# a budget per running parse: R101 activations at the largest default input (1333 long
# side), fp32, flip, with room to spare
GPU_BYTES_PER_PARSE = 4 << 30


class QueueLimits(NamedTuple):
    concurrency: int
    queue: int


def queue_limits(
    *,
    device_type: str,
    gpu_memory_bytes: int | None = None,
    concurrency: int | None = None,
    queue: int | None = None,
) -> QueueLimits:
    """The limits for a model on ``device_type`` (``cpu``, ``cuda``, ``mps``); an explicit
    ``concurrency`` or ``queue`` (the settings) wins over the rule above.

    Args:
        device_type: ``torch.device.type`` of the parser.
        gpu_memory_bytes: the GPU's total memory (CUDA).
        concurrency, queue: the operator's settings, None for the device's rule.
    """
    if device_type == "cuda":
        fits = (gpu_memory_bytes or 0) // GPU_BYTES_PER_PARSE
        slots = concurrency or max(1, min(CUDA_CONCURRENCY, fits))
        return QueueLimits(slots, CUDA_QUEUE_PER_SLOT * slots if queue is None else queue)
    return QueueLimits(concurrency or CPU_CONCURRENCY, CPU_QUEUE if queue is None else queue)
