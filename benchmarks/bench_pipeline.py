"""End-to-end benchmark of m2fp: R101 config, seeded random weights, a 960x640 photo.

Prints one table per precision: stage times (decode, preprocess, forward, post-processing, PNG
encoding of the visualisation and the label map), the end-to-end median over several runs (the
warm-up run excluded), the achieved GFLOP/s against the measured matmul roof, the ratio to
ModelScope's reference figure, and the label-map agreement of each fast precision with fp32.
Then post-processing alone on synthetic confident outputs, and the peak RSS of a fresh process
handling one 1920x1280 image.

Random weights give near-uniform class scores and flat masks, so nothing would reach
post-processing. ``realistic_model`` makes them behave like a trained network instead (see
BENCHMARKS.md): BatchNorm statistics measured on the photo, then the class head and the last
mask-embedding layer scaled so class logits have std 8 and mask logits std 4, and the
"no object" bias raised until 25 of the 100 queries prefer a real class.

Usage: .venv/bin/python benchmarks/bench_pipeline.py [--runs 5] [--precision fp32 bf16]
Measure on a quiet machine: the script prints the 1-minute load before each table.
"""

from __future__ import annotations

import argparse
import copy
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from m2fp import HumanParser, ParserOptions
from m2fp.build import build_model, preset
from m2fp.compute.memory import release_free_memory
from m2fp.compute.precision import Precision, native_bf16
from m2fp.modeling.m2fp import M2FP
from m2fp.processing.postprocess import measure_pass
from m2fp.processing.preprocess import resize, to_input_tensor
from m2fp.results.parsing_result import assemble

# ModelScope's own pipeline on this 2-core machine, R101, 960x640 (issue 6): 7.5-8 s in total,
# about 5.5 s of it in the network
REFERENCE_TOTAL_S = 7.75
REFERENCE_NETWORK_S = 5.5
CLASS_LOGIT_STD = 8.0
MASK_LOGIT_STD = 4.0
OBJECT_QUERIES = 25  # queries whose best class is not "no object", as in a trained model
SEED = 0


def load() -> float:
    return os.getloadavg()[0]


def synthetic_photo(width: int, height: int, seed: int) -> bytes:
    """A JPEG of a few person-like figures (head, torso, arms, legs) on a textured background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack(
        [
            90 + 60 * xx / width,
            110 + 50 * yy / height,
            140 - 40 * xx / width,
        ],
        axis=-1,
    )
    image = Image.fromarray(background.clip(0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(3, 6)):
        scale = rng.uniform(0.5, 1.0) * height / 3
        cx, top = rng.uniform(0.1, 0.9) * width, rng.uniform(0.05, 0.4) * height
        skin = tuple(int(v) for v in rng.integers(120, 230, 3))
        shirt = tuple(int(v) for v in rng.integers(0, 255, 3))
        trousers = tuple(int(v) for v in rng.integers(0, 160, 3))
        head = 0.18 * scale
        draw.ellipse((cx - head, top, cx + head, top + 2.2 * head), fill=skin)
        torso_top, torso_bottom = top + 2.2 * head, top + 2.2 * head + 0.9 * scale
        draw.rectangle((cx - 0.3 * scale, torso_top, cx + 0.3 * scale, torso_bottom), fill=shirt)
        for side in (-1, 1):
            arm_x = cx + side * 0.38 * scale
            draw.line((arm_x, torso_top, arm_x + side * 0.1 * scale, torso_bottom), skin, 14)
            leg_x = cx + side * 0.15 * scale
            draw.line((leg_x, torso_bottom, leg_x, torso_bottom + scale), trousers, 22)
    noise = rng.normal(0, 8, (height, width, 3))
    noisy = np.asarray(image.filter(ImageFilter.GaussianBlur(1.5)), dtype=np.float64) + noise
    buffer = io.BytesIO()
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def network_input(model: M2FP, photo: bytes) -> torch.Tensor:
    picture = Image.open(io.BytesIO(photo)).convert("RGB")
    resized = resize(picture, 640, 1333)
    return to_input_tensor(resized, model.pixel_mean, model.pixel_std, model.size_divisibility)


def realistic_model(photo: bytes) -> M2FP:
    """The R101 network with seeded weights that make confident, trained-looking outputs."""
    torch.manual_seed(SEED)
    model = build_model(preset("m2fp_r101_cihp"))
    return calibrate(model, network_input(model, photo))


def calibrate(model: M2FP, batch: torch.Tensor) -> M2FP:
    """``model`` (random weights) made to answer ``batch`` like a trained network, in place."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: after one batch, exactly its statistics
        norm.train()
    with torch.no_grad():
        model.backbone(batch)
    model.eval()
    with torch.no_grad():
        class_logits, mask_logits = model(batch)
        predictor = model.sem_seg_head.predictor
        class_scale = CLASS_LOGIT_STD / float(class_logits.std())
        predictor.class_embed.weight.mul_(class_scale)
        predictor.class_embed.bias.mul_(class_scale)
        # most queries of a trained model predict "no object" (the last class): raise its bias
        # until only OBJECT_QUERIES queries prefer a real class
        scaled = class_logits[0] * class_scale
        margins = (scaled[:, :-1].max(-1).values - scaled[:, -1]).sort(descending=True).values
        cut = OBJECT_QUERIES
        predictor.class_embed.bias[-1] += float(margins[cut - 1] + margins[cut]) / 2
        # a positive scale keeps the sign of every mask logit, so the decoder's attention masks
        # (logit < 0 blocked) and thus its queries are unchanged
        mask_scale = MASK_LOGIT_STD / float(mask_logits.std())
        last = predictor.mask_embed.layers[-1]
        last.weight.mul_(mask_scale)
        last.bias.mul_(mask_scale)
    return model


def counted_flops(model: M2FP, batch: torch.Tensor) -> float:
    """FLOPs of one forward as torch's FlopCounterMode counts them (convs, matmuls, SDPA)."""
    probe = copy.deepcopy(model).requires_grad_(False)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        probe(batch)
    return float(counter.get_total_flops())


def matmul_roof(dtype: torch.dtype, size: int, repeats: int) -> float:
    """GFLOP/s of a square matmul on all intra-op threads."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def run_pipeline(
    parser: HumanParser, photo: bytes, *, release: bool = True
) -> tuple[dict[str, float], object]:
    """One image through every stage ``HumanParser.__call__`` runs, then both PNG encodings.

    Returns seconds per stage and the result.
    """
    marks = [time.perf_counter()]
    picture = parser.load_image(photo)
    marks.append(time.perf_counter())
    resized, batch = parser._preprocess(picture)
    marks.append(time.perf_counter())
    class_logits, mask_logits = parser._forward(batch)
    marks.append(time.perf_counter())
    result = parser._postprocess(class_logits, mask_logits, picture, resized, batch)
    del batch, class_logits, mask_logits
    if release:  # what the CLI and the server do after each parse
        release_free_memory()
    marks.append(time.perf_counter())
    result.visualize(alpha=0.6)
    result.label_map_png()
    marks.append(time.perf_counter())
    stages = ("decode", "preprocess", "forward", "postprocess", "png")
    times = {name: marks[i + 1] - marks[i] for i, name in enumerate(stages)}
    times["end_to_end"] = marks[-1] - marks[0]
    return times, result


def bench_precision(
    parser: HumanParser, photo: bytes, runs: int
) -> tuple[dict[str, float], object, float]:
    run_pipeline(parser, photo)  # warm-up: oneDNN primitive creation, allocator growth
    samples, result, loads = [], None, []
    for _ in range(runs):
        loads.append(load())
        times, result = run_pipeline(parser, photo)
        samples.append(times)
    medians = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    medians["end_to_end_min"] = min(s["end_to_end"] for s in samples)
    return medians, result, max(loads)


def synthetic_outputs(
    queries: int, instances: int, mask_hw: tuple[int, int], seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Network outputs with ``instances`` confident queries (a third of them humans), each
    with an elliptical mask blob, and the rest unsure."""
    generator = torch.Generator().manual_seed(seed)
    num_classes = 21
    class_logits = torch.randn(queries, num_classes + 1, generator=generator)
    labels = torch.randint(1, num_classes - 1, (instances,), generator=generator)
    labels[: instances // 3] = num_classes - 1  # "Human"
    class_logits[torch.arange(instances), labels] += 8.0
    height, width = mask_hw
    yy, xx = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    mask_logits = torch.full((queries, height, width), -6.0)
    for q in range(instances):
        cy, cx = torch.rand(2, generator=generator) * torch.tensor([height, width])
        ry, rx = (0.05 + 0.25 * torch.rand(2, generator=generator)) * torch.tensor([height, width])
        distance = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        mask_logits[q] = 6.0 * (1.0 - distance)
    return class_logits, mask_logits


def bench_postprocess(output_hw: tuple[int, int], runs: int) -> tuple[float, int]:
    """Median seconds of measure_pass + assemble on synthetic outputs for one photo size."""
    height, width = output_hw
    class_names = tuple(preset("m2fp_r101_cihp")["classes"])
    picture = Image.new("RGB", (width, height))
    padded = (640, 960) if height <= width else (960, 640)
    class_logits, mask_logits = synthetic_outputs(100, 20, (padded[0] // 4, padded[1] // 4), 1)
    samples, count = [], 0
    for _ in range(runs + 1):
        start = time.perf_counter()
        parsed = measure_pass(
            class_logits.numpy(),
            mask_logits.numpy(),
            padded_size=padded,
            input_size=padded,
            output_size=output_hw,
            num_parsing=20,
            ins_score_thr=0.3,
        ).parsed()
        result = assemble(parsed, picture, class_names)
        samples.append(time.perf_counter() - start)
        count = len(parsed.parts) + len(parsed.humans)
        del result
    return statistics.median(samples[1:]), count


def _status(field: str) -> int:
    """A VmRSS/VmHWM line of /proc/self/status in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(precision: str, release: bool) -> None:
    """Run in a fresh process: idle RSS, peak RSS for one 1920x1280 image, RSS after."""
    photo_small = synthetic_photo(960, 640, SEED)
    model = realistic_model(photo_small)
    parser = HumanParser(
        model=model,
        class_names=tuple(preset("m2fp_r101_cihp")["classes"]),
        ins_score_thr=0.3,
        options=ParserOptions(precision=precision),
    )
    photo = synthetic_photo(1920, 1280, SEED + 1)
    # warm-up at the same size so the idle level includes oneDNN's primitive cache
    run_pipeline(parser, photo, release=release)
    gc.collect()
    release_free_memory()
    idle = _status("VmRSS")
    after, peak = [], 0
    for _ in range(2):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        times, result = run_pipeline(parser, photo, release=release)
        peak = max(peak, _status("VmHWM"))
        del result
        gc.collect()
        after.append(_status("VmRSS"))
        # what a server does once the response is sent: the result's masks and PNGs are gone
        if release:
            release_free_memory()
        after.append(_status("VmRSS"))
    print(json.dumps({"idle": idle, "peak": peak, "after": after, "seconds": times["end_to_end"]}))


def bench_memory(precision: str, release: bool) -> dict:
    command = [sys.executable, __file__, "--memory-child", precision]
    if not release:
        command.append("--no-release")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def mb(value: float) -> str:
    return f"{value / 2**20:,.0f} MB"


def main() -> None:
    args = parse_args()
    if args.memory_child:
        memory_child(args.memory_child, release=not args.no_release)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
        f"{torch.get_num_interop_threads()} inter-op threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16()}"
    )
    roof_fp32 = matmul_roof(torch.float32, 2048, 10)
    print(f"fp32 matmul roof (2048^3, measured now): {roof_fp32:.0f} GFLOP/s")
    if native_bf16():
        print(f"bf16 matmul roof: {matmul_roof(torch.bfloat16, 2048, 10):.0f} GFLOP/s")
    else:
        slow = matmul_roof(torch.bfloat16, 512, 1)
        print(f"bf16 matmul (no native bf16, 512^3): {slow:.1f} GFLOP/s")

    photo = synthetic_photo(960, 640, SEED)
    model = realistic_model(photo)
    flops = counted_flops(model, network_input(model, photo))
    print(f"forward: {flops / 1e9:.1f} GFLOP counted (conv, matmul, attention)")
    class_names = tuple(preset("m2fp_r101_cihp")["classes"])
    precisions = [Precision(p) for p in args.precision]
    agreement_photos = [synthetic_photo(960, 640, SEED + k) for k in range(args.agreement_images)]
    reference_maps: list[np.ndarray] = []
    rows = []
    for precision in precisions:
        if precision is Precision.BF16 and not native_bf16():
            print("bf16: skipped, this CPU has no native bf16 (see BENCHMARKS.md)")
            continue
        net = model if precision is Precision.FP32 else copy.deepcopy(model)
        parser = HumanParser(
            model=net,
            class_names=class_names,
            ins_score_thr=0.3,
            options=ParserOptions(precision=precision),
        )
        medians, result, max_load = bench_precision(parser, photo, args.runs)
        maps = [parser(p).label_map for p in agreement_photos]
        if precision is Precision.FP32:
            reference_maps = maps
            agreement = "-"
        elif reference_maps:
            pairs = zip(maps, reference_maps, strict=True)
            agreement = f"{np.mean([(a == b).mean() for a, b in pairs]):.2%}"
        else:
            agreement = "(no fp32 run)"
        instances = len(result.persons) + sum(len(p.parts) for p in result.persons)
        instances += len(result.unassigned_parts)
        rows.append((precision.value, medians, agreement, max_load, instances))
        if net is not model:
            del parser, net
            gc.collect()

    print()
    header = (
        "| precision | decode | preprocess | forward | postprocess | PNG | end to end (median) "
        "| min | GFLOP/s fwd | % fp32 roof | vs ModelScope | agreement | instances | max load |"
    )
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for name, m, agreement, max_load, instances in rows:
        gflops = flops / m["forward"] / 1e9
        print(
            f"| {name} | {m['decode'] * 1e3:.0f} ms | {m['preprocess'] * 1e3:.0f} ms "
            f"| {m['forward']:.2f} s | {m['postprocess'] * 1e3:.0f} ms | {m['png'] * 1e3:.0f} ms "
            f"| **{m['end_to_end']:.2f} s** | {m['end_to_end_min']:.2f} s | {gflops:.0f} "
            f"| {gflops / roof_fp32:.0%} | {REFERENCE_TOTAL_S / m['end_to_end']:.2f}x "
            f"| {agreement} | {instances} | {max_load:.2f} |"
        )
    print(
        f"\nModelScope reference: {REFERENCE_TOTAL_S} s end to end, {REFERENCE_NETWORK_S} s "
        "network (issue 6, same machine type)."
    )

    print("\npost-processing alone, synthetic outputs (100 queries, 20 confident):")
    for output_hw in ((640, 960), (1280, 1920)):
        seconds, count = bench_postprocess(output_hw, args.runs)
        print(f"  {output_hw[1]}x{output_hw[0]}: {seconds * 1e3:.0f} ms median, {count} instances")

    if not args.skip_memory:
        print("\nmemory, fresh process per line, one 1920x1280 image twice:")
        for precision in precisions:
            if precision is Precision.BF16 and not native_bf16():
                continue
            for release in (True, False):
                mem = bench_memory(precision.value, release)
                print(
                    f"  {precision.value}, release={release}: idle {mb(mem['idle'])}, "
                    f"peak {mb(mem['peak'])}, after each request (result dropped; then "
                    f"release_free_memory()) {', '.join(mb(a) for a in mem['after'])}"
                )
    print(f"\n1-minute load at the end: {load():.2f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up")
    parser.add_argument(
        "--precision",
        nargs="+",
        default=["fp32", "bf16"],
        choices=[p.value for p in Precision],
    )
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: keep)")
    parser.add_argument("--agreement-images", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--no-release", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
