"""The GPU check of issue 14, as one prepared script: parity of every CUDA precision with CPU
fp32, and images/s at 960x640.

The machine it runs on has PyTorch with CUDA and Python, and nothing can be installed there,
so the check imports only torch and the network's own modules (``m2fp.build``,
``m2fp.modeling``, ``m2fp.compute.precision``, ``m2fp.engines.torch_engine``; not the package's
``__init__``, which pulls PIL and numpy in). The golden models' weights and vectors are
``.npz`` files, so they are first turned into one torch file here:

    .venv/bin/python benchmarks/gpu_check.py prepare            # -> benchmarks/gpu_inputs.pt
    python benchmarks/gpu_check.py run --out "$OUT/gpu_check.json"   # on the GPU machine

``gpu_inputs.pt`` is git-ignored (6 MB of golden weights): carry it with the working tree. The
whole run takes a few minutes on an H200 (``--rounds`` sets the timed rounds per variant).

``run`` checks, for the golden multi- and single-person tiny models and the seeded R101
benchmark model (built there from ``torch.manual_seed``):
- parity: relative error ||gpu - cpu|| / ||cpu|| of class and mask logits against the same
  network in fp32 on the CPU of that machine, for fp32 (TF32 off: must be < 1e-4), tf32, fp16
  and bf16; for the golden models also the error against ModelScope's own
  vectors (relative);
- throughput: R101 at 960x640 (1x3x640x960 inputs), batch 1 and 8, for fp32, tf32 and bf16
  (and fp16), images/s as a median of timed rounds after warm-up, with peak GPU memory.
``--device cpu`` runs the same flow on the CPU (fp32 only, no R101 unless asked) for the
tests; the report says which precisions were skipped and why.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ROOT / "benchmarks" / "gpu_inputs.pt"
GOLDEN_MODELS = {"m2fp_tiny": "m2fp_tiny", "m2fp_lip_tiny": "m2fp_lip_tiny"}
PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
THROUGHPUT_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
BATCHES = (1, 8)
R101_INPUT = (640, 960)  # H, W: a 960x640 landscape photo
FP32_LIMIT = 1e-4  # relative, against CPU fp32


def import_network_modules() -> types.SimpleNamespace:
    """m2fp's torch-only modules; ``m2fp/__init__.py`` is lazy, so importing them pulls in
    nothing else (no Pillow, server or OpenVINO) on the GPU machine, where the checkout's
    ``src/`` may be all there is of m2fp (no install)."""
    if importlib.util.find_spec("m2fp") is None:
        sys.path.insert(0, str(ROOT / "src"))
    from m2fp.build import build_model, m2fp_r101_cihp
    from m2fp.compute.options import Precision
    from m2fp.engines.torch_engine import TorchEngine
    from m2fp.errors import PrecisionUnsupportedError

    return types.SimpleNamespace(
        build_model=build_model,
        r101_config=m2fp_r101_cihp,
        Precision=Precision,
        TorchEngine=TorchEngine,
        PrecisionUnsupportedError=PrecisionUnsupportedError,
    )


def prepare(out: Path) -> None:
    """The golden models as one torch file (config, weights, normalised input, ModelScope's
    logits); needs numpy, so it runs here, not on the GPU machine."""
    import numpy as np

    models = {}
    for name, folder in GOLDEN_MODELS.items():
        directory = ROOT / "tests" / "data" / folder
        config = json.loads((directory / "configuration.json").read_text())["model"]
        weights = np.load(directory / "weights.npz", allow_pickle=False)
        expected = np.load(directory / "expected.npz", allow_pickle=False)
        models[name] = {
            "config": config,
            "state_dict": {k: torch.from_numpy(weights[k]).contiguous() for k in weights.files},
            "input_tensor": torch.from_numpy(expected["input_tensor"]),
            "pred_logits": torch.from_numpy(expected["pred_logits"]),
            "pred_masks": torch.from_numpy(expected["pred_masks"]),
        }
    torch.save(models, out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB)")


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.double().cpu(), expected.double().cpu()
    return float((actual - expected).norm() / expected.norm())


def normalised(model, image: torch.Tensor) -> torch.Tensor:
    """A 3xHxW image in 0..255 as the network's 1x3xHxW input."""
    return ((image - model.pixel_mean) / model.pixel_std)[None]


def engine_for(m2fp, model, precision: str, device: torch.device):
    """The PyTorch engine at ``precision``, or the reason it cannot run here."""
    import copy

    try:
        return m2fp.TorchEngine(
            model=copy.deepcopy(model), precision=m2fp.Precision(precision), device=device
        ), None
    except m2fp.PrecisionUnsupportedError as exc:
        return None, str(exc)


def precisions_for(device: torch.device, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The precisions worth running on ``device``: all on CUDA, fp32 elsewhere (tf32 and
    fp16 are CUDA's; bf16 on a CPU is refused or slow)."""
    return wanted if device.type == "cuda" else ("fp32",)


def parity(m2fp, model, batch: torch.Tensor, device: torch.device, reference=None) -> dict:
    """Relative errors of each precision on ``device`` against CPU fp32 (and, with
    ``reference`` = ModelScope's logits, the relative error against those too)."""
    cpu, _ = engine_for(m2fp, model, "fp32", torch.device("cpu"))
    cpu_logits, cpu_masks = cpu(batch)
    report = {}
    for precision in PRECISIONS:
        if precision not in precisions_for(device, PRECISIONS):
            report[precision] = {"skipped": f"not run on {device.type}"}
            continue
        engine, refused = engine_for(m2fp, model, precision, device)
        if engine is None:
            report[precision] = {"skipped": refused}
            continue
        logits, masks = engine(batch.to(device))
        entry = {
            "class_logits_rel": relative_error(logits, cpu_logits),
            "mask_logits_rel": relative_error(masks, cpu_masks),
        }
        if reference is not None:
            entry["rel_vs_modelscope"] = max(
                relative_error(logits[0], reference[0]), relative_error(masks[0], reference[1])
            )
        if precision == "fp32":
            entry["exact"] = max(entry["class_logits_rel"], entry["mask_logits_rel"]) < FP32_LIMIT
        report[precision] = entry
        del engine
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return report


def throughput(
    m2fp, model, device: torch.device, batch_size: int, precision: str, rounds: int, warmup: int
) -> dict:
    """Images/s of the network alone at 960x640 (inputs already on the device)."""
    engine, refused = engine_for(m2fp, model, precision, device)
    if engine is None:
        return {"skipped": refused}
    batch = torch.randn(batch_size, 3, *R101_INPUT, generator=torch.Generator().manual_seed(1))
    batch = batch.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        engine(batch)
    sync()
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        engine(batch)
        sync()
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    entry = {"seconds_per_batch": median, "images_per_second": batch_size / median}
    if device.type == "cuda":
        entry["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    del engine, batch
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return entry


def run(args: argparse.Namespace) -> dict:
    m2fp = import_network_modules()
    device = torch.device(args.device)
    report: dict = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "parity": {},
        "throughput": {},
    }
    torch.set_grad_enabled(False)
    golden = torch.load(args.inputs, weights_only=True)
    for name, entry in golden.items():
        model = m2fp.build_model(entry["config"], empty=True)
        model.load_state_dict(entry["state_dict"], strict=True, assign=True)
        model.eval()
        batch = normalised(model, entry["input_tensor"])
        reference = (entry["pred_logits"], entry["pred_masks"])
        report["parity"][name] = parity(m2fp, model, batch, device, reference)
        print(name, json.dumps(report["parity"][name]), flush=True)
    if args.r101:
        torch.manual_seed(0)
        model = m2fp.build_model(m2fp.r101_config()).eval()
        image = torch.rand(3, *R101_INPUT, generator=torch.Generator().manual_seed(2)) * 255
        report["parity"]["r101_seeded"] = parity(m2fp, model, normalised(model, image), device)
        print("r101", json.dumps(report["parity"]["r101_seeded"]), flush=True)
        for precision in precisions_for(device, THROUGHPUT_PRECISIONS):
            for batch_size in args.batches:
                key = f"{precision}_batch{batch_size}"
                report["throughput"][key] = throughput(
                    m2fp, model, device, batch_size, precision, args.rounds, args.warmup
                )
                print(key, json.dumps(report["throughput"][key]), flush=True)
    return report


def table(report: dict) -> str:
    """The report as the Markdown rows BENCHMARKS.md takes."""
    lines = ["| model | precision | class logits rel. | mask logits rel. | vs ModelScope |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for name, precisions in report["parity"].items():
        for precision, entry in precisions.items():
            if "skipped" in entry:
                continue
            modelscope = entry.get("rel_vs_modelscope")
            lines.append(
                f"| {name} | {precision} | {entry['class_logits_rel']:.1e} | "
                f"{entry['mask_logits_rel']:.1e} | "
                + ("-" if modelscope is None else f"{modelscope:.1e}")
                + " |"
            )
    if report["throughput"]:
        lines += ["", "| R101 960x640 | s / batch | images/s | peak GPU memory |"]
        lines.append("| --- | --- | --- | --- |")
        for key, entry in report["throughput"].items():
            if "skipped" in entry:
                lines.append(f"| {key} | skipped: {entry['skipped']} | | |")
                continue
            memory = entry.get("peak_gpu_memory_gib")
            lines.append(
                f"| {key} | {entry['seconds_per_batch']:.4f} | {entry['images_per_second']:.1f} | "
                + ("-" if memory is None else f"{memory:.1f} GiB")
                + " |"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="write the golden models as one torch file")
    prep.add_argument("--out", type=Path, default=INPUTS)
    check = commands.add_parser("run", help="parity and throughput on --device")
    check.add_argument("--device", default="cuda:0")
    check.add_argument("--inputs", type=Path, default=INPUTS)
    check.add_argument("--out", type=Path, help="write the JSON report here")
    check.add_argument(
        "--r101",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the R101 parity and throughput (default: on CUDA only)",
    )
    check.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    check.add_argument("--rounds", type=int, default=10)
    check.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    if args.command == "run" and args.r101 is None:
        args.r101 = args.device.startswith("cuda")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "prepare":
        prepare(args.out)
        return 0
    report = run(args)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    print(table(report))
    exact = all(p["fp32"].get("exact", True) for p in report["parity"].values() if "fp32" in p)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
