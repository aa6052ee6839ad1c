"""The GPU check of issue 14, as one prepared script: parity of every CUDA precision with CPU
fp32, images/s at 960x640, and what only hardware shows (issue 29).

The parity and throughput entries import only torch and the network's own modules
(``m2fp.build``, ``m2fp.modeling``, ``m2fp.compute.precision``, ``m2fp.engines.torch_engine``);
the hardware entries use the package as a user does (``HumanParser``, the weights loader),
which needs numpy and pillow: the GPU image has both. The golden models' weights and vectors
are ``.npz`` files, so they are first turned into one torch file here:

    .venv/bin/python benchmarks/gpu_check.py prepare            # -> benchmarks/gpu_inputs.pt
    python benchmarks/gpu_check.py run --out "$OUT/gpu_check.json"   # on the GPU machine

``gpu_inputs.pt`` is git-ignored (about 12 MB of golden weights, twice: as tensors and as
safetensors files): carry it with the working tree. The whole run takes a few minutes on an
H200 (``--rounds`` sets the timed rounds per variant).

``run`` checks, for the golden multi- and single-person tiny models and the seeded R101
benchmark model (built there from ``torch.manual_seed``):
- parity: relative error ||gpu - cpu|| / ||cpu|| of class and mask logits against the same
  network in fp32 on the CPU of that machine, for fp32 (TF32 off: must be < 1e-4), tf32, fp16
  and bf16; for the golden models also the error against ModelScope's own
  vectors (relative);
- throughput: R101 at 960x640 (1x3x640x960 inputs), batch 1 and 8, for fp32, tf32 and bf16
  (and fp16), images/s as a median of timed rounds after warm-up, with peak GPU memory;
- hardware: weights loaded straight to the device, batch 8 equal to batch 1, two threads
  sharing one model, host-device syncs per forward (``torch.cuda.set_sync_debug_mode``), the
  single-person semantic map on the device against the CPU's, and the out-of-memory split
  under a real memory cap (``torch.cuda.set_per_process_memory_fraction``).

Every entry is written to the report the moment it is known (a crash or the device's time
limit keeps what was measured), and each runs on its own: one that fails records
``{"error": repr(exc)}`` and the others still run; the exit code is 1 then.
``--device cpu`` runs the same flow on the CPU (fp32 only, no R101 unless asked) for the
tests; the report says which entries were skipped and why.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
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
    """m2fp's torch-only modules (the package's ``__init__`` imports nothing until asked)."""
    sys.path.insert(0, str(ROOT / "src"))  # the carried tree, installed or not
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
    logits, and for the hardware entries the model directory's files and the photo as
    bytes); needs numpy and safetensors, so it runs here."""
    import numpy as np
    from safetensors.torch import save

    models = {}
    for name, folder in GOLDEN_MODELS.items():
        directory = ROOT / "tests" / "data" / folder
        config = json.loads((directory / "configuration.json").read_text())["model"]
        weights = np.load(directory / "weights.npz", allow_pickle=False)
        expected = np.load(directory / "expected.npz", allow_pickle=False)
        models[name] = {
            "config": config,
            "state_dict": weights_state(weights),
            "input_tensor": torch.from_numpy(expected["input_tensor"]),
            "pred_logits": torch.from_numpy(expected["pred_logits"]),
            "pred_masks": torch.from_numpy(expected["pred_masks"]),
            # a ModelScope directory (configuration.json, model.safetensors) and the photo
            "files": {
                "configuration.json": _as_bytes((directory / "configuration.json").read_bytes()),
                "model.safetensors": _as_bytes(save(weights_state(weights))),
            },
            "photo_png": _as_bytes((directory / "image.png").read_bytes()),
        }
    torch.save(models, out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB)")


def weights_state(weights) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(weights[k]).contiguous() for k in weights.files}


def _as_bytes(data: bytes) -> torch.Tensor:
    """Bytes as a uint8 tensor: what ``torch.load(weights_only=True)`` reads back."""
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.double().cpu(), expected.double().cpu()
    return float((actual - expected).norm() / expected.norm())


def normalised(model, image: torch.Tensor) -> torch.Tensor:
    """A 3xHxW image in 0..255 as the network's 1x3xHxW input."""
    return ((image - model.pixel_mean) / model.pixel_std)[None]


class Report:
    """The JSON report, written whole (atomically) after every entry, so a run cut short by
    a crash or the device's time limit still leaves everything measured until then."""

    def __init__(self, out: Path | None, header: dict) -> None:
        self.out = out
        self.data: dict = {**header, "parity": {}, "throughput": {}, "hardware": {}}
        self.write()

    def record(self, section: str, key: str, entry: dict, *, model: str | None = None) -> None:
        place = self.data[section] if model is None else self.data[section].setdefault(model, {})
        place[key] = entry
        label = key if model is None else f"{model} {key}"
        print(f"{section} {label}", json.dumps(entry), flush=True)
        self.write()

    def write(self) -> None:
        if self.out is None:
            return
        partial = self.out.with_name(self.out.name + ".partial")
        partial.write_text(json.dumps(self.data, indent=2))
        os.replace(partial, self.out)

    def failed(self) -> bool:
        """Any entry that raised, or fp32 that is not exact."""
        entries = [e for models in self.data["parity"].values() for e in models.values()]
        entries += [*self.data["throughput"].values(), *self.data["hardware"].values()]
        inexact = [e for e in entries if e.get("exact") is False or e.get("agree") is False]
        return any("error" in e for e in entries) or bool(inexact)


def isolated(m2fp, device: torch.device, check: Callable[[], dict]) -> dict:
    """One entry on its own: a refused precision is skipped with its reason, any other
    failure is recorded as ``repr(exc)`` and the run goes on to the next entry."""
    try:
        return check()
    except m2fp.PrecisionUnsupportedError as exc:
        return {"skipped": str(exc)}
    except Exception as exc:  # one variant's failure must not end the check
        return {"error": repr(exc)}
    finally:
        release(device)


def release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def engine_for(m2fp, model, precision: str, device: torch.device):
    """The PyTorch engine at ``precision`` on a copy of ``model``.

    Raises:
        PrecisionUnsupportedError: the device cannot run it.
    """
    import copy

    return m2fp.TorchEngine(
        model=copy.deepcopy(model), precision=m2fp.Precision(precision), device=device
    )


def precisions_for(device: torch.device, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The precisions worth running on ``device``: all on CUDA, fp32 elsewhere (tf32 and
    fp16 are CUDA's; bf16 on a CPU is refused or slow)."""
    return wanted if device.type == "cuda" else ("fp32",)


def parity(
    m2fp, model, batch: torch.Tensor, device: torch.device, precision: str, cpu, reference=None
) -> dict:
    """Relative errors of ``precision`` on ``device`` against CPU fp32 (``cpu``: its class
    and mask logits), and with ``reference`` (ModelScope's logits) against those too."""
    engine = engine_for(m2fp, model, precision, device)
    logits, masks = engine(batch.to(device))
    entry = {
        "class_logits_rel": relative_error(logits, cpu[0]),
        "mask_logits_rel": relative_error(masks, cpu[1]),
    }
    if reference is not None:
        entry["rel_vs_modelscope"] = max(
            relative_error(logits[0], reference[0]), relative_error(masks[0], reference[1])
        )
    if precision == "fp32":
        entry["exact"] = max(entry["class_logits_rel"], entry["mask_logits_rel"]) < FP32_LIMIT
    return entry


def parity_entries(report: Report, m2fp, name: str, model, batch, device, reference=None):
    """Every precision's parity entry of one model, each on its own."""
    cpu = engine_for(m2fp, model, "fp32", torch.device("cpu"))(batch)
    for precision in PRECISIONS:
        if precision not in precisions_for(device, PRECISIONS):
            entry = {"skipped": f"not run on {device.type}"}
        else:
            entry = isolated(
                m2fp,
                device,
                lambda p=precision: parity(m2fp, model, batch, device, p, cpu, reference),
            )
        report.record("parity", precision, entry, model=name)


def throughput(
    m2fp, model, device: torch.device, batch_size: int, precision: str, rounds: int, warmup: int
) -> dict:
    """Images/s of the network alone at 960x640 (inputs already on the device)."""
    engine = engine_for(m2fp, model, precision, device)
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
    return entry


# hardware entries: what a CPU test can only fake


def batch_equals_single(m2fp, model, device: torch.device) -> dict:
    """Batch 8 gives each input what it gets alone (other kernels, same values)."""
    engine = engine_for(m2fp, model, "fp32", device)
    inputs = torch.randn(8, 3, 128, 160, generator=torch.Generator().manual_seed(3)).to(device)
    logits, masks = engine(inputs)
    alone = [engine(inputs[i : i + 1]) for i in range(8)]
    errors = [
        max(relative_error(logits[i], one[0][0]), relative_error(masks[i], one[1][0]))
        for i, one in enumerate(alone)
    ]
    return {"max_rel": max(errors), "agree": max(errors) < FP32_LIMIT}


def threads_share_a_model(m2fp, model, device: torch.device) -> dict:
    """Two threads running one engine at once get what each gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    engine = engine_for(m2fp, model, "fp32", device)
    generator = torch.Generator().manual_seed(4)
    inputs = [torch.randn(1, 3, 128, 160, generator=generator).to(device) for _ in range(8)]
    alone = [engine(x) for x in inputs]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(engine, inputs))
    errors = [
        max(relative_error(a[0], b[0]), relative_error(a[1], b[1]))
        for a, b in zip(together, alone, strict=True)
    ]
    return {"max_rel": max(errors), "agree": max(errors) < FP32_LIMIT}


def syncs_per_forward(m2fp, model, device: torch.device) -> dict:
    """How often one forward waits for the GPU (each wait stops the CPU queueing ahead)."""
    import warnings

    if device.type != "cuda":
        return {"skipped": "synchronisations are CUDA's"}
    engine = engine_for(m2fp, model, "fp32", device)
    inputs = torch.randn(1, 3, 128, 160).to(device)
    engine(inputs)  # warm-up: cuDNN's algorithm search synchronises once per shape
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            engine(inputs)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    where = sorted({str(w.message).splitlines()[0][:120] for w in caught})
    return {"syncs": len(caught), "kinds": where}


def model_directory(entry: dict, folder: Path) -> Path:
    """The golden model's ModelScope directory, written from the prepared bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in entry["files"].items():
        (folder / name).write_bytes(data.numpy().tobytes())
    return folder


def weights_to_device(entry: dict, folder: Path, device: torch.device) -> dict:
    """The loader puts every weight on the device, equal to the file's."""
    from m2fp.weights.loader import load_model

    loaded = load_model(model_directory(entry, folder), device=device)
    state = loaded.model.state_dict()
    devices = sorted({str(t.device) for t in state.values()})
    equal = all(
        torch.equal(state[k].cpu(), v) for k, v in entry["state_dict"].items() if k in state
    )
    return {"devices": devices, "equal": equal, "agree": devices == [str(device)] and equal}


def parser_on(folder: Path, device: torch.device, **options):
    from m2fp import HumanParser, ParserOptions

    return HumanParser.from_pretrained(folder, options=ParserOptions(device=str(device), **options))


def photo(entry: dict):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(entry["photo_png"].numpy().tobytes())).convert("RGB")


def semantic_map_on_device(entry: dict, folder: Path, device: torch.device) -> dict:
    """The single-person semantic map computed on the device against the CPU's."""
    folder = model_directory(entry, folder)
    picture = photo(entry)
    ours = parser_on(folder, device)(picture).label_map
    cpu = parser_on(folder, torch.device("cpu"))(picture).label_map
    same = float((ours == cpu).mean())
    classes = len(set(cpu.ravel().tolist()))
    return {"same_pixels": same, "cpu_classes": classes, "agree": same >= 0.999}


def out_of_memory_split(entry: dict, folder: Path, device: torch.device) -> dict:
    """A real out-of-memory under a memory cap: batch 8 is split until it fits, with each
    photo's result as alone; a photo too large even alone is its own error."""
    if device.type != "cuda":
        return {"skipped": "the memory cap is CUDA's"}
    from m2fp.errors import DeviceMemoryError

    folder = model_directory(entry, folder)
    parser = parser_on(folder, device, batch_size=8, min_size=640, max_size=1024)
    pictures = [photo(entry)] * 8
    alone = [parser.parse_upright(p) for p in pictures[:1]]
    release(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    parser.parse_upright(pictures[0])
    one = torch.cuda.max_memory_allocated(device) - base
    total = torch.cuda.get_device_properties(device).total_memory
    calls: list[int] = []
    engine = parser.engine

    def counted(images):
        calls.append(int(images.shape[0]))
        return engine(images)

    parser.engine = counted
    try:
        release(device)
        torch.cuda.set_per_process_memory_fraction(min(1.0, (base + 3 * one) / total), device)
        outcomes = parser.parse_upright_each(pictures)
        release(device)
        torch.cuda.set_per_process_memory_fraction(min(1.0, (base + one // 4) / total), device)
        too_large = parser.parse_upright_each(pictures[:1])
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        parser.engine = engine
    results = [o for o in outcomes if not isinstance(o, DeviceMemoryError)]
    same = min(float((r.label_map == alone[0].label_map).mean()) for r in results) if results else 0
    return {
        "one_photo_mib": one / 2**20,
        "engine_calls": calls,
        "results": len(results),
        "same_pixels": same,
        "too_large_alone": type(too_large[0]).__name__,
        "agree": len(results) == 8
        and same >= 0.999
        and isinstance(too_large[0], DeviceMemoryError),
    }


def run(args: argparse.Namespace, report: Report) -> None:
    import tempfile

    m2fp = import_network_modules()
    device = torch.device(args.device)
    torch.set_grad_enabled(False)
    golden = torch.load(args.inputs, weights_only=True)
    models = {}
    for name, entry in golden.items():
        model = m2fp.build_model(entry["config"], empty=True)
        model.load_state_dict(entry["state_dict"], strict=True, assign=True)
        models[name] = model.eval()
        batch = normalised(model, entry["input_tensor"])
        reference = (entry["pred_logits"], entry["pred_masks"])
        parity_entries(report, m2fp, name, model, batch, device, reference)
    multi, single = models["m2fp_tiny"], golden["m2fp_lip_tiny"]
    with tempfile.TemporaryDirectory() as scratch:
        hardware: dict[str, Callable[[], dict]] = {
            "weights_to_device": lambda: weights_to_device(
                golden["m2fp_tiny"], Path(scratch) / "w", device
            ),
            "batch8_equals_batch1": lambda: batch_equals_single(m2fp, multi, device),
            "two_threads_one_model": lambda: threads_share_a_model(m2fp, multi, device),
            "syncs_per_forward": lambda: syncs_per_forward(m2fp, multi, device),
            "semantic_map": lambda: semantic_map_on_device(single, Path(scratch) / "s", device),
            "out_of_memory_split": lambda: out_of_memory_split(
                golden["m2fp_tiny"], Path(scratch) / "o", device
            ),
        }
        for key, check in hardware.items():
            report.record("hardware", key, isolated(m2fp, device, check))
    if args.r101:
        torch.manual_seed(0)
        model = m2fp.build_model(m2fp.r101_config()).eval()
        image = torch.rand(3, *R101_INPUT, generator=torch.Generator().manual_seed(2)) * 255
        parity_entries(report, m2fp, "r101_seeded", model, normalised(model, image), device)
        for precision in precisions_for(device, THROUGHPUT_PRECISIONS):
            for batch_size in args.batches:
                entry = isolated(
                    m2fp,
                    device,
                    lambda p=precision, b=batch_size: throughput(
                        m2fp, model, device, b, p, args.rounds, args.warmup
                    ),
                )
                report.record("throughput", f"{precision}_batch{batch_size}", entry)


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
    if report.get("hardware"):
        lines += ["", "| hardware check | result |", "| --- | --- |"]
        for key, entry in report["hardware"].items():
            lines.append(f"| {key} | {json.dumps(entry)} |")
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
    if not args.inputs.is_file():
        print(
            f"gpu_check: {args.inputs} is missing: run 'python benchmarks/gpu_check.py "
            "prepare' where the repository is installed and carry the file with the working "
            "tree (it is git-ignored)",
            file=sys.stderr,
        )
        return 2
    device = torch.device(args.device)
    report = Report(
        args.out,
        {
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        },
    )
    run(args, report)
    print(table(report.data))
    return 1 if report.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
