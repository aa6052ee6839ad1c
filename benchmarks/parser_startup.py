"""Process start to a ready parser, per model form, for ``bench_engines.py``'s start-up column:
R101 (seeded random weights, no download) from a ``model.safetensors`` directory, an encrypted
``.m2fp`` file, the official layout's ``pytorch_model.pt``, and a directory with an OpenVINO
package beside the weights (``write_forms``, ``measure_startup``).

Each form is loaded by a fresh ``python -c`` (Python start, imports, skeleton built on the
meta device, weights read, ``HumanParser`` ready on the CPU) timed from the parent, round-robin
after one warm-up round that fills the page cache; medians reported, with the child's own split
(seconds to import m2fp and torch, seconds in ``from_pretrained``). Ready is when the child
reports the parser built; its exit afterwards is reported apart. (``bench_startup.py`` measures
the torch-free slim runtime's start-up instead.)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import sys, time
started = time.perf_counter()
from pathlib import Path
from m2fp import HumanParser, ParserOptions
from m2fp.protection.keys import read_key_file
imported = time.perf_counter()
path, key_file, engine, precision = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
key = read_key_file(Path(key_file)) if key_file else None
options = ParserOptions(device="cpu", engine=engine, precision=precision)
parser = HumanParser.from_pretrained(path, options=options, key=key)
print(imported - started, time.perf_counter() - imported, flush=True)
"""


# name -> (model path, key file or None, engine, precision)
Form = tuple[Path, Path | None, str, str]


def start_once(path: Path, key_file: Path | None, engine: str, precision: str) -> tuple:
    """(process start to ready, imports, from_pretrained, process start to exit) in seconds.

    Ready is when the child's one line (printed with the parser built) reaches the parent;
    the exit after it (freeing the network, interpreter teardown) is reported apart.
    """
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(key_file or ""), engine, precision],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = child.stdout.readline()
    ready = time.perf_counter() - started
    _, errors = child.communicate()
    exited = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"start-up child failed: {errors.strip()}")
    imports, from_pretrained = (float(v) for v in line.split())
    return ready, imports, from_pretrained, exited


def write_forms(work: Path, config: dict, state: dict, packages: dict | None = None) -> dict:
    """The forms of one model: safetensors directory, ``.pt`` directory, ``.m2fp`` file and,
    for each ``packages`` entry (precision -> ``OpenVINOPackage`` converted from ``state``),
    a safetensors directory with that package beside the weights."""
    import dataclasses
    import hashlib

    import torch
    from safetensors.torch import save_file

    from m2fp.engines.openvino_package import package_file_name
    from m2fp.protection.convert import encrypt_model_dir
    from m2fp.protection.keys import generate_key, write_key_file

    forms: dict[str, Form] = {}
    for name, weights in (("safetensors", "model.safetensors"), ("pt", "pytorch_model.pt")):
        directory = work / name
        directory.mkdir(exist_ok=True)
        (directory / "configuration.json").write_text(json.dumps({"model": config}))
        if name == "safetensors":
            save_file(state, str(directory / weights))
        else:
            torch.save({"model": state}, directory / weights)
        forms[name] = (directory, None, "torch", "fp32")
    key_file = work / "bench.key"
    key_file.unlink(missing_ok=True)
    write_key_file(key_file, generate_key())
    from m2fp.protection.keys import read_key_file

    encrypted = work / "r101.m2fp"
    encrypted.unlink(missing_ok=True)
    encrypt_model_dir(forms["safetensors"][0], key=read_key_file(key_file), out=encrypted)
    forms["m2fp"] = (encrypted, key_file, "torch", "fp32")
    weights = forms["safetensors"][0] / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    for precision, package in (packages or {}).items():
        directory = work / f"openvino_{precision}"
        directory.mkdir(exist_ok=True)
        for name in ("configuration.json", "model.safetensors"):
            (directory / name).write_bytes((forms["safetensors"][0] / name).read_bytes())
        stamped = dataclasses.replace(package, weights_sha256=digest)
        (directory / package_file_name(precision)).write_bytes(stamped.to_bytes())
        forms[f"openvino {precision}"] = (directory, None, "openvino", precision)
    return forms


def measure_startup(forms: dict, rounds: int) -> dict[str, dict[str, float]]:
    """Medians per form over ``rounds`` round-robin rounds, after one warm-up round."""
    for where in forms.values():  # warm-up: page cache, .pyc files
        start_once(*where)
    runs: dict[str, list[tuple[float, ...]]] = {name: [] for name in forms}
    for _ in range(rounds):
        for name, where in forms.items():
            runs[name].append(start_once(*where))
    return {
        name: {
            "ready_seconds": round(statistics.median(r[0] for r in rs), 2),
            "imports_seconds": round(statistics.median(r[1] for r in rs), 2),
            "from_pretrained_seconds": round(statistics.median(r[2] for r in rs), 2),
            "exit_seconds": round(statistics.median(r[3] for r in rs), 2),
        }
        for name, rs in runs.items()
    }
