"""compute_options: the one rule set for device, engine and precision, one line per refusal."""

from __future__ import annotations

import pytest

from m2fp.compute.options import (
    ACCURACY,
    ComputeChoiceError,
    Engine,
    Precision,
    check_compute,
    check_device,
    device_kind,
)


@pytest.mark.parametrize(
    ("asked", "normalised"),
    [("auto", "auto"), ("CPU", "cpu"), (" cuda ", "cuda"), ("cuda:1", "cuda:1"), ("mps", "mps")],
)
def test_device_names(asked, normalised):
    assert check_device(asked) == normalised


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "cpu:0", "mps:1", "cuda:1234", "", 3])
def test_bad_device_names(bad):
    with pytest.raises(ComputeChoiceError, match="device must be one of") as info:
        check_device(bad)
    assert info.value.fields == ("device",)


def test_device_kind():
    assert device_kind("cuda:3") == "cuda"
    assert device_kind("cpu") == "cpu"


@pytest.mark.parametrize(
    ("device", "engine", "precision"),
    [
        ("auto", "torch", "fp32"),
        ("cpu", "torch", "bf16"),
        ("cuda", "torch", "tf32"),
        ("cuda:0", "torch", "fp16"),
        ("cuda", "torch", "bf16"),
        ("mps", "torch", "fp32"),
        ("auto", "openvino", "fp32"),
        ("cpu", "openvino", "int8"),
    ],
)
def test_combinations_that_run(device, engine, precision):
    check_compute(device, engine, precision)


@pytest.mark.parametrize(
    ("device", "engine", "precision", "message", "fields"),
    [
        ("cuda", "openvino", "fp32", "openvino runs on the CPU", ("engine", "device")),
        ("mps", "openvino", "int8", "openvino runs on the CPU", ("engine", "device")),
        (
            "cpu",
            "openvino",
            "fp16",
            "fp32 \\(exact\\), bf16, int8 or fast",
            ("engine", "precision"),
        ),
        ("cpu", "torch", "int8", "engine openvino only", ("precision", "engine")),
        ("cuda", "torch", "int8", "engine openvino only", ("precision", "engine")),
        ("cpu", "torch", "tf32", "needs a CUDA device", ("precision", "device")),
        ("cpu", "torch", "fp16", "needs a CUDA device", ("precision", "device")),
        ("mps", "torch", "bf16", "not supported on mps", ("precision", "device")),
        ("cpu", "tensorrt", "fp32", "engine must be one of", ("engine",)),
        ("cpu", "torch", "int4", "precision must be one of", ("precision",)),
    ],
)
def test_refusals_are_one_line(device, engine, precision, message, fields):
    with pytest.raises(ComputeChoiceError, match=message) as info:
        check_compute(device, engine, precision)
    assert "\n" not in str(info.value)
    assert info.value.fields == fields


def test_only_fp32_is_exact():
    assert ACCURACY == {
        Precision.FP32: "exact",
        Precision.TF32: "approximation",
        Precision.FP16: "approximation",
        Precision.BF16: "approximation",
        Precision.INT8: "approximation",
        Precision.FAST: "approximation",
    }
    assert Engine("openvino") is Engine.OPENVINO


def test_the_module_is_torch_free():
    """--help and the settings use it: it must not pull torch in."""
    import subprocess
    import sys

    code = "import sys, m2fp.compute.options; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
