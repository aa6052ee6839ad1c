"""Start-up of a replica: process start to an engine that answers, with and without PyTorch.

Each form runs in a fresh interpreter, timed from before the interpreter starts:

- ``openvino-slim``: ``m2fp.engines.openvino_engine`` and the package of a model directory,
  torch never imported (what the slim runtime loads); first inference reported apart, since
  OpenVINO compiles per input shape at its first use.
- ``torch-import``: ``import torch`` alone, the cost every torch form pays first.
- ``torch-parser``: ``HumanParser.from_pretrained`` on the torch engine (checkpoint loaded).

Usage: .venv/bin/python benchmarks/bench_startup.py MODEL_DIR [--runs 3]
MODEL_DIR holds weights and ``openvino_fp32.ovpkg`` (``m2fp model export --format openvino``).
Measure on a quiet machine: the 1-minute load is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SLIM = """
import json, sys, time
from pathlib import Path
import numpy as np
from m2fp.engines.openvino_engine import OpenVINOEngine
from m2fp.engines.openvino_package import OpenVINOPackage, package_file_name
data = (Path(sys.argv[1]) / package_file_name("fp32")).read_bytes()
engine = OpenVINOEngine(package=OpenVINOPackage.from_bytes(data))
ready = time.time()
engine.infer(np.zeros((1, 3, 640, 960), np.float32))
first = time.time()
engine.infer(np.zeros((1, 3, 640, 960), np.float32))
print(json.dumps({"ready": ready, "first": first - ready, "second": time.time() - first,
                  "torch": "torch" in sys.modules}))
"""
TORCH_IMPORT = """
import json, sys, time
import torch
print(json.dumps({"ready": time.time(), "torch": "torch" in sys.modules}))
"""
TORCH_PARSER = """
import json, sys, time
from m2fp import HumanParser
parser = HumanParser.from_pretrained(sys.argv[1])
print(json.dumps({"ready": time.time(), "torch": "torch" in sys.modules}))
"""
FORMS = {"openvino-slim": SLIM, "torch-import": TORCH_IMPORT, "torch-parser": TORCH_PARSER}


def run_form(code: str, model_dir: str) -> dict:
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-c", code, model_dir], check=True, capture_output=True, text=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["ready"] -= started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per form")
    args = parser.parse_args()
    print("| form | ready (median) | min | first inference 960x640 | second | torch loaded |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, code in FORMS.items():
        results = [run_form(code, args.model_dir) for _ in range(args.runs)]
        ready = [r["ready"] for r in results]
        first = (
            f"{statistics.median(r['first'] for r in results):.2f} s"
            if "first" in results[0]
            else "-"
        )
        second = (
            f"{statistics.median(r['second'] for r in results):.2f} s"
            if "second" in results[0]
            else "-"
        )
        print(
            f"| {name} | {statistics.median(ready):.2f} s | {min(ready):.2f} s | {first} "
            f"| {second} | {results[0]['torch']} |"
        )
    print(f"\n1-minute load: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
