"""benchmarks/gpu_check.py, the script run where a GPU is lent, checked here on the CPU: it
prepares its inputs, finds the golden models exact in fp32, reports what it skipped and why,
keeps going past an entry that fails, leaves its report behind when it dies, and names a
missing input file."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"
HARDWARE = (
    "weights_to_device",
    "batch8_equals_batch1",
    "two_threads_one_model",
    "syncs_per_forward",
    "semantic_map",
    "out_of_memory_split",
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpu") / "gpu_inputs.pt"
    subprocess.run([sys.executable, str(SCRIPT), "prepare", "--out", str(out)], check=True)
    return out


def run_script(*argv: str, before: str = "pass") -> subprocess.CompletedProcess:
    """The script as ``python gpu_check.py ARGV``, after the Python statements ``before``."""
    args = ["gpu_check.py", *argv]
    code = (
        f"import sys; {before}; sys.argv = {args!r}; import runpy; "
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_runs_and_reports(inputs, tmp_path):
    report_path = tmp_path / "report.json"
    proc = run_script("run", "--device", "cpu", "--inputs", str(inputs), "--out", str(report_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["device"] == "cpu" and report["throughput"] == {}  # R101 only on CUDA
    for name in ("m2fp_tiny", "m2fp_lip_tiny"):
        fp32 = report["parity"][name]["fp32"]
        assert fp32["exact"] is True and fp32["class_logits_rel"] < 1e-6
        assert fp32["rel_vs_modelscope"] < 1e-3
        for precision in ("tf32", "fp16", "bf16"):
            assert report["parity"][name][precision] == {"skipped": "not run on cpu"}
    hardware = report["hardware"]
    assert tuple(hardware) == HARDWARE
    for key in ("weights_to_device", "batch8_equals_batch1", "two_threads_one_model"):
        assert hardware[key]["agree"] is True, hardware[key]
    assert hardware["semantic_map"]["agree"] is True
    assert hardware["semantic_map"]["cpu_classes"] >= 2  # the compared maps show classes
    for key in ("syncs_per_forward", "out_of_memory_split"):
        assert "CUDA" in hardware[key]["skipped"]
    assert "| m2fp_tiny | fp32 |" in proc.stdout
    assert "| weights_to_device |" in proc.stdout


def test_a_failing_entry_is_recorded_and_the_others_still_run(inputs, tmp_path):
    """Without numpy and PIL the package's entries fail on import: each records its error,
    the torch-only entries after them still run, and the exit code says something failed."""
    report_path = tmp_path / "report.json"
    proc = run_script(
        "run", "--device", "cpu", "--inputs", str(inputs), "--out", str(report_path),
        before="sys.modules['numpy'] = sys.modules['PIL'] = None",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["parity"]["m2fp_tiny"]["fp32"]["exact"] is True  # torch alone suffices
    hardware = report["hardware"]
    assert tuple(hardware) == HARDWARE
    assert hardware["weights_to_device"]["error"].startswith("ModuleNotFoundError(")
    assert "numpy" in hardware["semantic_map"]["error"].lower()
    assert hardware["two_threads_one_model"]["agree"] is True  # ran after the failure


def test_the_report_is_on_disk_after_every_entry(inputs, tmp_path):
    """The process dies in the middle (as at the device's time limit): what was measured
    until then is in the report."""
    report_path = tmp_path / "report.json"
    die = (
        "import os, torch; real_load = torch.load; "
        "torch.cuda.get_device_name = lambda *a: None; "
        "torch.load = lambda *a, **k: (setattr(sys.modules['__main__'], 'syncs_per_forward', "
        "lambda *a: os._exit(3)), real_load(*a, **k))[1]"
    )
    proc = run_script(
        "run", "--device", "cpu", "--inputs", str(inputs), "--out", str(report_path), before=die
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["parity"]["m2fp_lip_tiny"]["fp32"]["exact"] is True
    assert tuple(report["hardware"]) == HARDWARE[:3]  # everything before the death


def test_a_missing_input_file_is_named(tmp_path):
    missing = tmp_path / "gpu_inputs.pt"
    proc = run_script("run", "--device", "cpu", "--inputs", str(missing))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line, no traceback
    assert str(missing) in proc.stderr and "prepare" in proc.stderr and "carry" in proc.stderr


@pytest.fixture
def gpu_check(monkeypatch):
    """The script imported as a module, gone from ``sys.modules`` (and ``sys.path``) after the
    test, so no later test sees this import."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    try:
        yield importlib.import_module("gpu_check")
    finally:
        sys.modules.pop("gpu_check", None)


def test_options(gpu_check):
    args = gpu_check.parse_args(["run"])
    assert (args.device, args.r101, args.batches) == ("cuda:0", True, [1, 8])
    assert gpu_check.parse_args(["run", "--device", "cpu"]).r101 is False
    assert gpu_check.precisions_for(__import__("torch").device("cpu"), ("fp32", "bf16")) == (
        "fp32",
    )
    table = gpu_check.table(
        {
            "parity": {},
            "throughput": {
                "bf16_batch8": {
                    "seconds_per_batch": 0.1,
                    "images_per_second": 80.0,
                    "peak_gpu_memory_gib": 9.5,
                },
                "tf32_batch1": {"skipped": "tf32 needs an Ampere or newer GPU"},
            },
        }
    )
    assert "| bf16_batch8 | 0.1000 | 80.0 | 9.5 GiB |" in table
    assert "skipped: tf32 needs" in table
