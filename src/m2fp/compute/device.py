"""The device a parser runs on: ``auto`` resolved, what was asked checked against what exists.

``auto`` is the first CUDA device when PyTorch sees one, else the CPU (the OpenVINO engine
always runs on the CPU). Asking for a device that is not there is refused with one line
(``DeviceUnavailableError``) instead of failing later inside the network.

The OpenVINO engine's device is ``HOST_CPU``, not a ``torch.device``: the slim runtime has no
PyTorch, so torch is imported only where a torch device is asked for (the torch engine, CUDA,
MPS) and a torch-less install asking for one gets the one line naming ``m2fp[torch]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from m2fp.compute.options import Engine, check_device, device_kind
from m2fp.errors import DeviceUnavailableError, missing_torch

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class HostDevice:
    """The CPU as the OpenVINO engine sees it: what this package reads of a ``torch.device``
    (``type``, ``index``, its name), without PyTorch."""

    type: str = "cpu"
    index: None = None

    def __str__(self) -> str:
        return self.type


HOST_CPU = HostDevice()
# where a parser computes: a torch device, or the host CPU of the OpenVINO engine
Device = Union["torch.device", HostDevice]


def import_torch() -> Any:
    """``torch``, imported on first need.

    Raises:
        MissingExtraError: torch is not installed (the slim runtime): names ``m2fp[torch]``.
    """
    try:
        import torch
    except ImportError as exc:
        raise (missing_torch(exc) or exc) from None
    return torch


def _no_cuda_reason() -> str:
    import torch

    if torch.version.cuda is None:
        return f"this PyTorch ({torch.__version__}) is built without CUDA"
    return "no CUDA device is visible (CUDA_VISIBLE_DEVICES, driver)"


def resolve_device(device: str, engine: Engine | str = Engine.TORCH) -> Device:
    """The device that ``device`` means on this machine: ``HOST_CPU`` for the OpenVINO
    engine, else a ``torch.device``.

    Raises:
        ComputeChoiceError: ``device`` is not a device name.
        DeviceUnavailableError: the device asked for does not exist here.
        MissingExtraError: a torch device without torch installed.
    """
    text = check_device(device)
    kind = device_kind(text)
    if Engine(engine) is Engine.OPENVINO:
        return HOST_CPU
    torch = import_torch()
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceUnavailableError("device mps was asked for, but MPS is not available")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {text} was asked for, but {_no_cuda_reason()}")
    index = int(text.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceUnavailableError(
            f"device {text} was asked for, but only {count} CUDA device(s) are visible "
            f"(cuda:0 to cuda:{count - 1})"
        )
    return torch.device("cuda", index)


def describe_device(device: Device) -> dict[str, Any]:
    """Public facts about ``device`` for start-up logs and ``m2fp model info``: its name
    and, for CUDA, the GPU's model and memory."""
    report: dict[str, Any] = {"device": str(device)}
    if device.type == "cuda":
        import torch

        properties = torch.cuda.get_device_properties(device)
        report.update(gpu=properties.name, gpu_memory_bytes=int(properties.total_memory))
    return report


def available_devices() -> dict[str, Any]:
    """What this machine offers: CUDA devices by name, MPS, and what ``auto`` picks.

    Only torch sees GPUs, and only torch can use one: without it (the slim runtime) there are
    none to offer, and ``auto`` is the CPU the OpenVINO engine runs on.
    """
    try:
        import torch
    except ImportError:
        return {"auto": str(HOST_CPU), "cuda": [], "mps": False}
    cuda = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        "auto": str(resolve_device("auto")),
        "cuda": cuda,
        "mps": bool(torch.backends.mps.is_available()),
    }


def release_device_memory(device: Device) -> None:
    """Give the CUDA caching allocator's unused blocks back to the driver (other processes
    can use them); the next parse allocates again. Nothing to do on the CPU (the process heap
    is ``m2fp.compute.memory.release_free_memory``'s)."""
    if device.type != "cuda":
        return
    import torch

    if torch.cuda.is_initialized():
        with torch.cuda.device(device):
            torch.cuda.empty_cache()


# images per network call when ParserOptions.batch_size is None: a GPU needs several to be
# kept busy; a CPU gains nothing from batching but memory
CUDA_BATCH_SIZE = 8


def default_batch_size(device: Device) -> int:
    """The batch size ``HumanParser`` uses on ``device`` unless told otherwise."""
    return CUDA_BATCH_SIZE if device.type == "cuda" else 1
