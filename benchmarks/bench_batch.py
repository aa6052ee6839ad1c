"""Throughput of ``m2fp batch`` on Ray against sequential ``m2fp parse``, side by side, with
the fixed costs apart from the steady per-image rate.

One folder of synthetic photos is parsed by ``m2fp parse --threads T`` and by ``m2fp batch``
with each ``ACTORSxTHREADS`` configuration on a local Ray (started and stopped by the
command, as a user runs it). Each command is timed whole (wall: start-up, model load, Ray's
start included) and by its steady rate (parse: images / the sum of its per-image
``seconds``; batch: the summary's ``steady_images_per_second``, the pool's rate once its
actors run). *fixed* = wall - images / steady: what a job pays once whatever its size
(imports, model load; for batch also Ray's start, worker start, Ray Data's scheduling),
with Ray's start and the slowest actor's model load shown apart. The Ray overhead per image
is (batch wall - parse wall) / images against the parse run first (a second parse runs
last, to show how the load drifted); memory per actor is the summary's peak RSS per actor.

Usage: .venv/bin/python benchmarks/bench_batch.py [--model r101|tiny] [--images 8]
    [--configs 1x2 2x1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import SEED, load, realistic_model, synthetic_photo  # noqa: E402

from m2fp.build import preset  # noqa: E402

PHOTO_SIZE = (640, 480)


def model_dir(kind: str, folder: Path) -> tuple[Path, list[str]]:
    """A model directory of ``kind`` and the size flags to parse it with."""
    folder.mkdir(parents=True)
    if kind == "tiny":
        import numpy as np
        import torch

        golden = ROOT / "tests" / "data" / "m2fp_tiny"
        weights = np.load(golden / "weights.npz", allow_pickle=False)
        state = {k: torch.from_numpy(weights[k]).contiguous() for k in weights.files}
        (folder / "configuration.json").write_bytes((golden / "configuration.json").read_bytes())
        expected = json.loads((golden / "expected.json").read_text())
        sizes = ["--min-size", str(expected["min_size"]), "--max-size", str(expected["max_size"])]
    else:
        model = realistic_model(synthetic_photo(*PHOTO_SIZE, SEED))
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        config = {"framework": "pytorch", "model": preset("m2fp_r101_cihp")}
        (folder / "configuration.json").write_text(json.dumps(config))
        sizes = []
    save_file(state, str(folder / "model.safetensors"))
    return folder, sizes


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "m2fp", *command], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"m2fp {command[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["r101", "tiny"], default="r101")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--configs", nargs="+", default=["1x2", "2x1"])
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        model, sizes = model_dir(args.model, work / "model")
        (work / "in").mkdir()
        for index in range(args.images):
            (work / "in" / f"photo_{index:03d}.jpg").write_bytes(
                synthetic_photo(*PHOTO_SIZE, SEED + index)
            )
        common = ["--model", str(model), *sizes]
        print(f"{args.images} photos {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, model {args.model}, "
              f"{cores} cores, load {load():.2f}")  # fmt: skip
        print(f"{'run':<16}{'wall s':>7}{'images/s':>9}{'steady img/s':>13}{'fixed s':>8}"
              f"{'ray start s':>12}{'load s':>7}{'threads':>8}{'overhead s/img':>15}"
              "  actor peak MiB")  # fmt: skip

        def sequential(label: str) -> float:
            """``m2fp parse`` of the folder (run before and after the Ray runs: a load that
            changes during the benchmark shows as two different figures)."""
            wall, done = timed(
                [
                    "parse",
                    str(work / "in"),
                    "--out",
                    str(work / f"seq_{label}"),
                    "--threads",
                    str(cores),
                    *common,
                ]
            )
            lines = [json.loads(line) for line in done.stdout.splitlines() if line[:1] == "{"]
            busy = sum(line["seconds"] for line in lines)
            print(f"{'parse x' + str(cores) + ' ' + label:<16}{wall:>7.1f}"
                  f"{args.images / wall:>9.3f}{args.images / busy:>13.3f}{wall - busy:>8.1f}"
                  f"{'-':>12}{'-':>7}{cores:>8}{'-':>15}")  # fmt: skip
            return wall

        walls = [sequential("first")]
        for config in args.configs:
            actors, threads = config.split("x")
            out = work / f"ray_{config}"
            ray_wall, ray_done = timed(
                [
                    "batch",
                    str(work / "in"),
                    "--out",
                    str(out),
                    "--actors",
                    actors,
                    "--threads",
                    threads,
                    *common,
                ]
            )
            summary = json.loads(ray_done.stdout.strip().splitlines()[-1])
            memory = ", ".join(f"{m:.0f}" for m in summary["actor_peak_rss_mib"].values())
            threads_used = ",".join(str(t) for t in summary["actor_threads"].values())
            steady = summary["steady_images_per_second"]
            fixed = ray_wall - args.images / steady
            load_s = max(summary["actor_load_seconds"].values())
            overhead = (ray_wall - walls[0]) / args.images
            print(f"{'ray ' + config:<16}{ray_wall:>7.1f}{args.images / ray_wall:>9.3f}"
                  f"{steady:>13.3f}{fixed:>8.1f}{summary['ray_start_seconds']:>12.1f}"
                  f"{load_s:>7.1f}{threads_used:>8}{overhead:>15.2f}  {memory}")  # fmt: skip
        walls.append(sequential("last"))
        print(f"load after: {load():.2f}; overhead against the first parse")


if __name__ == "__main__":
    main()
