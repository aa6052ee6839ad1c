"""Start-up of a replica: process start to a parser that answers, with and without PyTorch.

Each form runs in a fresh interpreter, timed from before the interpreter starts; ``ready`` is
a ``HumanParser`` loaded (or torch imported), ``first parse`` the first 960x640 photo (OpenVINO
compiles per input shape at its first use, so it is reported apart), ``second`` the next one:

- ``slim .m2fp``: ``HumanParser.from_pretrained`` of an encrypted ``.m2fp`` with its fp32
  package and key file, ``engine="openvino"``, torch refused by an import hook (what the slim
  runtime runs; the child checks torch never loaded).
- ``slim directory``: the same from the model directory (the weights hashed, not parsed).
- ``torch import``: ``import torch`` alone, the cost every torch form pays first.
- ``torch parser``: ``HumanParser.from_pretrained`` on the torch engine (checkpoint loaded).

Usage: .venv/bin/python benchmarks/bench_startup.py MODEL_DIR [--runs 3]
MODEL_DIR holds weights and ``openvino_fp32.ovpkg`` (``m2fp model export --format openvino``);
the ``.m2fp`` and its key are made from it in a temporary directory.
Measure on a quiet machine: the 1-minute load is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.utils.without_torch import command_without_torch

PARSER = """
import json, sys, time
import numpy as np
from m2fp import HumanParser, ParserOptions
from m2fp.protection.keys import read_key_file
key = read_key_file(sys.argv[3]) if sys.argv[3] != "-" else None
options = ParserOptions(engine=sys.argv[2])
parser = HumanParser.from_pretrained(sys.argv[1], options=options, key=key)
ready = time.time()
photo = np.random.default_rng(0).integers(0, 256, (640, 960, 3), dtype=np.uint8)
parser(photo)
first = time.time()
parser(photo)
print(json.dumps({"ready": ready, "first": first - ready, "second": time.time() - first,
                  "torch": "torch" in sys.modules}))
"""
TORCH_IMPORT = """
import json, sys, time
import torch
print(json.dumps({"ready": time.time(), "torch": "torch" in sys.modules}))
"""


def run_form(command: list[str]) -> dict:
    started = time.time()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    # the slim forms print the torch check's line after the figures
    result = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    result["ready"] -= started
    return result


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "m2fp", *args], check=True, capture_output=True)


def seconds(results: list[dict], field: str) -> str:
    if field not in results[0]:
        return "-"
    return f"{statistics.median(r[field] for r in results):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per form")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        key, envelope = Path(scratch) / "model.key", Path(scratch) / "model.m2fp"
        cli("model", "keygen", "--out", str(key))
        cli("model", "encrypt", args.model_dir, "--key-file", str(key), "--out", str(envelope))
        forms = {
            "slim .m2fp": [*command_without_torch(PARSER), str(envelope), "openvino", str(key)],
            "slim directory": [*command_without_torch(PARSER), args.model_dir, "openvino", "-"],
            "torch import": [sys.executable, "-c", TORCH_IMPORT],
            "torch parser": [sys.executable, "-c", PARSER, args.model_dir, "torch", "-"],
        }
        print("| form | ready (median) | min | first parse 960x640 | second | torch loaded |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, command in forms.items():
            results = [run_form(command) for _ in range(args.runs)]
            ready = [r["ready"] for r in results]
            print(
                f"| {name} | {statistics.median(ready):.2f} s | {min(ready):.2f} s "
                f"| {seconds(results, 'first')} | {seconds(results, 'second')} "
                f"| {results[0]['torch']} |"
            )
    print(f"\n1-minute load: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
