"""device: auto resolved, devices that are not here refused with one line (this machine has
no CUDA and no MPS; the CUDA side runs in benchmarks/gpu_check.py where a GPU is lent)."""

from __future__ import annotations

import pytest
import torch

from m2fp.compute.device import (
    HOST_CPU,
    available_devices,
    default_batch_size,
    describe_device,
    release_device_memory,
    resolve_device,
)
from m2fp.compute.options import ComputeChoiceError, Engine
from m2fp.errors import DeviceUnavailableError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@no_cuda
def test_auto_is_the_cpu_without_cuda():
    assert resolve_device("auto") == torch.device("cpu")
    assert available_devices()["auto"] == "cpu"
    assert available_devices()["cuda"] == []


def test_openvino_always_runs_on_the_host_cpu_without_a_torch_device():
    # not a torch.device: the slim runtime resolves it without PyTorch
    for asked in ("auto", "cpu"):
        device = resolve_device(asked, Engine.OPENVINO)
        assert device is HOST_CPU and str(device) == "cpu" and device.type == "cpu"
    assert describe_device(HOST_CPU) == {"device": "cpu"}
    assert default_batch_size(HOST_CPU) == 1
    release_device_memory(HOST_CPU)  # nothing to give back on the host


@no_cuda
@pytest.mark.parametrize("asked", ["cuda", "cuda:1"])
def test_cuda_asked_where_none_exists(asked):
    with pytest.raises(DeviceUnavailableError, match=f"device {asked} was asked for") as info:
        resolve_device(asked)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_asked_where_none_exists():
    with pytest.raises(DeviceUnavailableError, match="MPS is not available"):
        resolve_device("mps")


def test_bad_name_refused_before_looking():
    with pytest.raises(ComputeChoiceError):
        resolve_device("tpu")


def test_cpu_facts_and_batch_size():
    cpu = torch.device("cpu")
    assert describe_device(cpu) == {"device": "cpu"}
    assert default_batch_size(cpu) == 1
    assert default_batch_size(torch.device("cuda", 0)) == 8
    release_device_memory(cpu)  # nothing to give back, and no CUDA initialised
    assert not torch.cuda.is_initialized()
