"""queue_sizing: the queue sized from the device unless the operator set it."""

from __future__ import annotations

from m2fp.server.parse.queue_sizing import (
    CPU_CONCURRENCY,
    CPU_QUEUE,
    CUDA_QUEUE_PER_SLOT,
    GPU_BYTES_PER_PARSE,
    QueueLimits,
    queue_limits,
)


def test_cpu_runs_one_at_a_time():
    assert queue_limits(device_type="cpu") == QueueLimits(CPU_CONCURRENCY, CPU_QUEUE) == (1, 8)
    assert queue_limits(device_type="mps") == (1, 8)


def test_gpu_slots_from_its_memory():
    h200 = 139 << 30
    assert queue_limits(device_type="cuda", gpu_memory_bytes=h200) == (2, 2 * CUDA_QUEUE_PER_SLOT)
    small = GPU_BYTES_PER_PARSE + 1
    assert queue_limits(device_type="cuda", gpu_memory_bytes=small) == (1, CUDA_QUEUE_PER_SLOT)
    # memory unknown or too little for one budget: still one slot
    assert queue_limits(device_type="cuda") == (1, CUDA_QUEUE_PER_SLOT)


def test_the_operator_wins():
    assert queue_limits(device_type="cpu", concurrency=3, queue=0) == (3, 0)
    assert queue_limits(device_type="cuda", gpu_memory_bytes=80 << 30, concurrency=4) == (4, 64)
    assert queue_limits(device_type="cuda", gpu_memory_bytes=80 << 30, queue=5) == (2, 5)
