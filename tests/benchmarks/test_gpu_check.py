"""benchmarks/gpu_check.py, the script run where a GPU is lent, checked here on the CPU: it
prepares its inputs, runs without PIL and numpy (the GPU machine has only torch), finds the
golden models exact in fp32 and reports what it skipped and why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"
# what the GPU machine lacks: the script must not need it
WITHOUT = "import sys; sys.modules['numpy'] = sys.modules['PIL'] = None; "


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpu") / "gpu_inputs.pt"
    subprocess.run([sys.executable, str(SCRIPT), "prepare", "--out", str(out)], check=True)
    return out


def test_runs_with_torch_alone_and_reports(inputs, tmp_path):
    report_path = tmp_path / "report.json"
    argv = ["gpu_check.py", "run", "--device", "cpu", "--inputs", str(inputs), "--out",
            str(report_path)]  # fmt: skip
    code = (
        WITHOUT + f"sys.argv = {argv!r}; import runpy; "
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["device"] == "cpu" and report["throughput"] == {}  # R101 only on CUDA
    for name in ("m2fp_tiny", "m2fp_lip_tiny"):
        fp32 = report["parity"][name]["fp32"]
        assert fp32["exact"] is True and fp32["class_logits_rel"] < 1e-6
        assert fp32["rel_vs_modelscope"] < 1e-3
        for precision in ("tf32", "fp16", "bf16"):
            assert report["parity"][name][precision] == {"skipped": "not run on cpu"}
    assert "| m2fp_tiny | fp32 |" in proc.stdout


def test_options():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(SCRIPT.parent))
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
