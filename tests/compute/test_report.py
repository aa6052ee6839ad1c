"""compute_report: what a device, engine and precision choice means here, checked as a parser
would check it, without loading a network."""

from __future__ import annotations

import pytest
import torch

from m2fp.compute import report as report_module
from m2fp.compute.parser_options import ParserOptions
from m2fp.compute.precision import native_bf16
from m2fp.compute.report import compute_report
from m2fp.errors import DeviceUnavailableError, MissingExtraError, PrecisionUnsupportedError


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_default_is_exact_fp32_on_the_cpu():
    report = compute_report(ParserOptions())
    assert {k: report[k] for k in ("device", "engine", "precision", "accuracy")} == {
        "device": "cpu",
        "engine": "torch",
        "precision": "fp32",
        "accuracy": "exact",
    }
    assert report["available"]["native_bf16_cpu"] is native_bf16()
    assert report["available"]["cuda"] == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_refused_where_none_exists():
    with pytest.raises(DeviceUnavailableError, match="device cuda was asked for"):
        compute_report(ParserOptions(device="cuda"))


@pytest.mark.skipif(native_bf16(), reason="this CPU has native bf16")
def test_bf16_refused_on_a_cpu_without_it():
    with pytest.raises(PrecisionUnsupportedError, match="native bf16"):
        compute_report(ParserOptions(device="cpu", precision="bf16"))


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bf16")
def test_bf16_reported_as_an_approximation_on_a_cpu_with_it():
    report = compute_report(ParserOptions(device="cpu", precision="bf16"))
    assert (report["device"], report["precision"], report["accuracy"]) == (
        "cpu",
        "bf16",
        "approximation",
    )


def test_openvino_without_the_extra(monkeypatch):
    monkeypatch.setattr(report_module, "openvino_version", lambda: None)
    with pytest.raises(MissingExtraError, match=r"m2fp\[openvino\]"):
        compute_report(ParserOptions(engine="openvino"))


def test_int8_is_reported_as_an_approximation():
    pytest.importorskip("openvino")
    report = compute_report(ParserOptions(engine="openvino", precision="int8"))
    assert (report["device"], report["accuracy"]) == ("cpu", "approximation")
    assert report["available"]["openvino"]
