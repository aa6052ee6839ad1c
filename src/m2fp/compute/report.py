"""What a device, engine and precision choice means on this machine, checked without loading
a network: for ``m2fp model info`` (the server logs its loaded parser's own report)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from m2fp.compute.cpu_features import bf16_units, cpu_flags, vnni_units
from m2fp.compute.device import available_devices, describe_device, resolve_device
from m2fp.compute.options import ACCURACY, CAVEAT, Engine, check_compute
from m2fp.compute.parser_options import ParserOptions
from m2fp.compute.precision import check_precision, native_bf16, resolve_precision
from m2fp.compute.threads import plan_threads
from m2fp.engines.openvino_engine import check_openvino_bf16
from m2fp.engines.openvino_package import OPENVINO_MISSING
from m2fp.errors import MissingExtraError


def openvino_version() -> str | None:
    """The installed OpenVINO's version, without importing it; None when it is missing."""
    try:
        return importlib.metadata.version("openvino")
    except importlib.metadata.PackageNotFoundError:
        return None


def compute_report(options: ParserOptions) -> dict[str, Any]:
    """The device ``options.device`` resolves to and what it offers, with the engine and
    precision, checked as a parser would check them.

    Raises:
        ComputeChoiceError, DeviceUnavailableError, PrecisionUnsupportedError: the choice
            cannot run here (one line).
        ImportError: the OpenVINO engine without OpenVINO installed.
    """
    device = resolve_device(options.device, options.engine)
    check_compute(str(device), options.engine, options.precision)
    precision, why = resolve_precision(options.precision, options.engine, device)
    if options.engine is Engine.TORCH:
        check_precision(precision, device)
    elif openvino_version() is None:
        raise MissingExtraError(OPENVINO_MISSING)
    elif precision.value == "bf16":
        check_openvino_bf16(cpu_flags())
    fast = {} if why is None else {"requested_precision": "fast", "fast_because": why}
    return {
        **describe_device(device),
        "engine": options.engine.value,
        "precision": precision.value,
        **fast,
        "accuracy": ACCURACY[precision],
        **({"caveat": CAVEAT[precision]} if CAVEAT[precision] else {}),
        **plan_threads(options.threads).describe(),
        "available": {
            **available_devices(),
            "native_bf16_cpu": native_bf16(),
            "cpu_bf16_units": list(bf16_units(cpu_flags())),
            "cpu_int8_units": list(vnni_units(cpu_flags())),
            "openvino": openvino_version(),
        },
    }
