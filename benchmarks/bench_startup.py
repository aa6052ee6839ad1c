"""Process start to a ready parser: R101 (seeded random weights, no download) from a
``model.safetensors`` directory, an encrypted ``.m2fp`` file and the official layout's
``pytorch_model.pt``.

Each form is loaded by a fresh ``python -c`` (Python start, imports, skeleton built on the
meta device, weights read, ``HumanParser`` ready on the CPU) timed from the parent, round-robin
``--rounds`` times after one warm-up round that fills the page cache; medians reported, with
the child's own split (seconds to import m2fp and torch, seconds in ``from_pretrained``).

    .venv/bin/python benchmarks/bench_startup.py [--rounds 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys, time
started = time.perf_counter()
from pathlib import Path
from m2fp import HumanParser, ParserOptions
from m2fp.protection.keys import read_key_file
imported = time.perf_counter()
path, key_file = Path(sys.argv[1]), sys.argv[2]
key = read_key_file(Path(key_file)) if key_file else None
parser = HumanParser.from_pretrained(path, options=ParserOptions(device="cpu"), key=key)
print(imported - started, time.perf_counter() - imported)
"""


def start_once(path: Path, key_file: Path | None) -> tuple[float, float, float]:
    """(process start to ready, imports, from_pretrained) in seconds."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(key_file or "")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return time.perf_counter() - started, float(out[0]), float(out[1])


def write_forms(work: Path) -> dict[str, tuple[Path, Path | None]]:
    """The three forms of one seeded R101 model."""
    import torch
    from safetensors.torch import save_file

    from m2fp.build import build_model, m2fp_r101_cihp
    from m2fp.protection.convert import encrypt_model_dir
    from m2fp.protection.keys import generate_key, write_key_file

    torch.manual_seed(0)
    config = m2fp_r101_cihp()
    state = build_model(config).state_dict()
    forms = {}
    for name, weights in (("safetensors", "model.safetensors"), ("pt", "pytorch_model.pt")):
        directory = work / name
        directory.mkdir(exist_ok=True)
        (directory / "configuration.json").write_text(json.dumps({"model": config}))
        if name == "safetensors":
            save_file(state, str(directory / weights))
        else:
            torch.save({"model": state}, directory / weights)
        forms[name] = (directory, None)
    key_file = work / "bench.key"
    key_file.unlink(missing_ok=True)
    write_key_file(key_file, generate_key())
    from m2fp.protection.keys import read_key_file

    encrypted = work / "r101.m2fp"
    encrypted.unlink(missing_ok=True)
    encrypt_model_dir(forms["safetensors"][0], key=read_key_file(key_file), out=encrypted)
    forms["m2fp"] = (encrypted, key_file)
    return forms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", help="keep the files here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.workdir or scratch)
        work.mkdir(parents=True, exist_ok=True)
        forms = write_forms(work)
        for where in forms.values():  # warm-up: page cache, .pyc files
            start_once(*where)
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in forms}
        for _ in range(args.rounds):
            for name, where in forms.items():
                runs[name].append(start_once(*where))
        report = {
            name: {
                "ready_seconds": round(statistics.median(r[0] for r in rs), 2),
                "imports_seconds": round(statistics.median(r[1] for r in rs), 2),
                "from_pretrained_seconds": round(statistics.median(r[2] for r in rs), 2),
            }
            for name, rs in runs.items()
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
