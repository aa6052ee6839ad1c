"""Engines side by side: PyTorch eager fp32/bf16, OpenVINO fp32/bf16/int8; R101, 640x960.

In one process and one run: the conversion (torch.export + OpenVINO) and int8 quantisation
times, the package size, loading a package from bytes and compiling it for one shape, then the
forward of every engine timed round-robin (eager, fp32, int8, eager, ...; medians after one
warm-up each, and the median of each round's eager/engine ratio, which a machine whose speed
drifts during the run disturbs less), then end to end (``HumanParser`` on the photo's bytes:
decode, preprocess, forward, post-processing) for each engine the same way, and the accuracy
figures:
- network: relative error ||engine - eager|| / ||eager|| of class and mask logits, on the
  benchmark photo and ``--photos`` more (max over photos);
- res5: the same for the backbone's last map (mean over the photos), the figure int8 is
  judged by, since the random network's logits are chaotic;
- the same figures for eager itself in its other memory layout (NCHW instead of channels-last):
  float rounding alone, the floor any "exact" engine is judged against;
- label map: pixel agreement of the parsed label map with eager fp32's, on the benchmark's
  trained-like model (``bench_pipeline.realistic_model``) over the same photos;
- perturbation gain: how much each random network amplifies a small error by itself (1% noise
  added to res2 in fp32, the relative change of res5), which int8's res5 error must be read
  against: the trained-like network is chaotic, the plain seeded one is not;
- int8, eager bf16 and OpenVINO bf16 res5 error on the plain seeded R101 (default
  initialisation), the network issue 14's backbone-feature figures were measured on (int8
  quantised with the same recipe and scenes);
- seeded-photo label map: on that same seeded R101, each engine's whole parse (its own fp32
  package, int8 package and bf16 compilation of it) against eager fp32 on the photos: pixels
  equal, pixels whose fp32 top-2 class margin is below the engine's own error (coin flips,
  ``label_agreement``), and which classes changed. ``--accuracy-only`` runs just this and the
  res5 figures (no timing, no start-up; minutes instead of the whole run).
int8 quantises the backbone, and the head's matmuls too where the CPU has VNNI/AMX-INT8
(``m2fp.engines.int8.quantized_parts``); its res5 figures are the backbone's.
bf16 (eager autocast; OpenVINO: the fp32 package, both graphs compiled for bf16) is
measured only on a CPU with native bf16 (avx512_bf16 or amx_bf16): elsewhere both emulate
it, slower than fp32, and the rows say "not measured" and why.
The calibration set is ``m2fp.engines.calibration`` (drawn scenes); the evaluation photos are
``bench_pipeline.synthetic_photo`` (other drawings), so int8 is never judged on its
calibration images.

Start-up: process start to a ready parser (``parser_startup``: a fresh ``python -c`` per
start, medians of ``--startup-rounds``) for the same weights as a ``model.safetensors``
directory, a ``.m2fp`` file and ``pytorch_model.pt`` (eager), and as a directory with the fp32
or int8 package beside the weights (OpenVINO; compiling for a shape happens at the first parse
of that shape and is reported apart).

Usage: .venv/bin/python benchmarks/bench_engines.py [--rounds 5] [--photos 2] [--calibration 32]
       .venv/bin/python benchmarks/bench_engines.py --accuracy-only [--photos 3] [--no-int8]
Needs m2fp[int8]. Prints the CPU's flags and the 1-minute load: measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_pipeline import SEED, network_input, realistic_model, synthetic_photo
from label_agreement import agreement_rows, describe
from parser_startup import measure_startup, write_forms

from m2fp import HumanParser, ParserOptions
from m2fp.build import build_model, preset
from m2fp.compute.cpu_features import BF16_FLAGS, bf16_units, cpu_flags
from m2fp.compute.options import Precision
from m2fp.compute.precision import compute
from m2fp.engines.calibration import DEFAULT_SCENES, calibration_inputs
from m2fp.engines.int8 import (
    DEFAULT_SMOOTH_QUANT_ALPHA,
    quantize_backbone_graph,
    quantize_package,
    quantized_parts,
)
from m2fp.engines.openvino_convert import convert_backbone, convert_fp32
from m2fp.engines.openvino_engine import OpenVINOEngine
from m2fp.engines.openvino_package import OpenVINOPackage, import_openvino
from m2fp.modeling.m2fp import M2FP

# through m2fp's import: OpenVINO's usage telemetry refused before OpenVINO loads
ov = import_openvino()

NCHW = "eager, NCHW layout (float-rounding floor)"
PERTURBATION = 0.01  # relative noise at res2 for perturbation_gain
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "avx_vnni",
    "amx_bf16",
    "amx_int8",
)
BF16_ENGINES = ("eager bf16", "openvino bf16")

NO_BF16 = f"not measured: no {'/'.join(BF16_FLAGS)}"


def cpu_description() -> str:
    text = Path("/proc/cpuinfo").read_text()
    lines = text.splitlines()
    model = next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
    flags = set(next(line for line in lines if line.startswith("flags")).split())
    have = [f for f in ISA_FLAGS if f in flags]
    lacking = [f for f in ISA_FLAGS if f not in flags]
    return f"{model}, {os.cpu_count()} CPUs; has {' '.join(have)}; lacks {' '.join(lacking)}"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def relative_error(actual, expected) -> float:
    """||actual - expected|| / ||expected|| of two tensors or arrays (the parser's forward
    returns host numpy arrays, the eager network torch tensors)."""
    actual, expected = (
        torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in (actual, expected)
    )
    return float((actual - expected).norm() / expected.norm())


def parser_input(batch: torch.Tensor) -> torch.Tensor:
    """The layout HumanParser.forward feeds its channels-last network."""
    return batch.contiguous(memory_format=torch.channels_last)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def graph_res5(graph, batches: list[torch.Tensor], hint: str = "f32") -> list[torch.Tensor]:
    """res5 of an OpenVINO backbone graph for each input, compiled once (at ``hint``: f32,
    or bf16 as engine openvino bf16 compiles its backbone)."""
    compiled = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": hint})
    return [torch.from_numpy(compiled(x.numpy())[compiled.outputs[3]]) for x in batches]


def eager_bf16_res5(model: M2FP, batches: list[torch.Tensor]) -> list[torch.Tensor]:
    """res5 of the eager backbone under bf16 autocast (as engine torch bf16 runs it), fp32."""
    with compute(Precision.BF16):
        return [model.backbone(parser_input(x))["res5"].float() for x in batches]


def perturbation_gain(model: M2FP, batch: torch.Tensor, noise: float = PERTURBATION) -> float:
    """How much the fp32 network itself amplifies a small error: Gaussian noise of relative
    size ``noise`` added to res2, returned as the relative change of res5 it causes.

    int8's res5 error can only be read against this: a network that turns 1% noise at res2
    into 30% at res5 (a chaotic random one) shows a large res5 error for any approximation.
    """
    backbone = model.backbone
    with torch.inference_mode():
        res2 = backbone.res2(backbone.stem(batch))
        res5 = backbone.res5(backbone.res4(backbone.res3(res2)))
        generator = torch.Generator().manual_seed(SEED)
        scale = noise * res2.norm() / res2.numel() ** 0.5
        shaken = res2 + scale * torch.randn(res2.shape, generator=generator)
        moved = backbone.res5(backbone.res4(backbone.res3(shaken)))
    return relative_error(moved, res5)


def seeded_model() -> M2FP:
    """The plain seeded R101 (``torch.manual_seed(SEED)``, default initialisation): the network
    issue 14's backbone-feature figures were measured on."""
    torch.manual_seed(SEED)
    return build_model(preset("m2fp_r101_cihp")).eval()


def seeded_figures(
    seeded: M2FP, photos: list[bytes], calibration: list[torch.Tensor], alpha: float, bf16: bool
) -> dict[str, float]:
    """res5 error of the int8 recipe (and, with ``bf16``, of eager and OpenVINO bf16) on the
    seeded R101 (``seeded_model``), and that network's perturbation gain."""
    inputs = [network_input(seeded, photo) for photo in photos]
    with torch.inference_mode():
        references = [seeded.backbone(x)["res5"] for x in inputs]
    quantized = quantize_backbone_graph(
        convert_backbone(seeded), calibration, smooth_quant_alpha=alpha
    )
    figures = {"gain": perturbation_gain(seeded, inputs[0])}

    def mean_error(res5: list[torch.Tensor]) -> float:
        return float(np.mean([relative_error(r, e) for r, e in zip(res5, references, strict=True)]))

    figures["openvino int8"] = mean_error(graph_res5(quantized, inputs))
    if bf16:
        figures["eager bf16"] = mean_error(eager_bf16_res5(seeded, inputs))
        graph = convert_backbone(seeded)
        figures["openvino bf16"] = mean_error(graph_res5(graph, inputs, hint="bf16"))
    return figures


def engine_parser(
    model: M2FP,
    engine: str,
    precision: str,
    *,
    threads: int,
    package: OpenVINOPackage | None = None,
) -> HumanParser:
    """A whole parser of ``model`` (the R101's classes) on ``engine`` in ``precision``, from
    ``package`` for the OpenVINO engine: what each row's end-to-end figures run."""
    options = ParserOptions(engine=engine, precision=precision, threads=threads)
    return HumanParser(
        model=model,
        class_names=tuple(preset("m2fp_r101_cihp")["classes"]),
        ins_score_thr=0.3,
        options=options,
        openvino_package=package,
    )


def seeded_label_maps(
    seeded: M2FP,
    photos: list[bytes],
    calibration: list[torch.Tensor] | None,
    *,
    alpha: float,
    bf16: bool,
    threads: int,
) -> dict[str, str]:
    """Each engine's label map against eager fp32's on ``photos``, on the seeded R101: eager
    bf16 and OpenVINO bf16 (where the CPU has native bf16) and OpenVINO int8 (the recipe the
    product uses: ``quantized_parts`` of this CPU; skipped when ``calibration`` is None),
    each parsing the photo's bytes whole. Returns one ``label_agreement.describe`` line per
    engine, which says how much of the fp32 map is labelled: the plain seeded R101's class
    probabilities stay below 0.15 (untrained head), and a pixel is pasted only where instance
    score (<= class probability) x mask probability exceeds 0.5, so its maps come out all
    background and the agreement is vacuous (see BENCHMARKS.md); a trained or head-pinned
    network is needed."""
    class_names = tuple(preset("m2fp_r101_cihp")["classes"])
    package = convert_fp32(seeded)

    def parser(engine: str, precision: str, openvino_package=None) -> HumanParser:
        return engine_parser(seeded, engine, precision, threads=threads, package=openvino_package)

    parsers = {"eager": parser("torch", "fp32")}
    if bf16:
        parsers["eager bf16"] = parser("torch", "bf16")
        parsers["openvino bf16"] = parser("openvino", "bf16", package)
    if calibration is not None:
        int8 = quantize_package(
            package, calibration, smooth_quant_alpha=alpha, parts=quantized_parts(cpu_flags())
        )
        parsers["openvino int8"] = parser("openvino", "int8", int8)
    rows = agreement_rows(parsers, photos, reference="eager")
    lines = {name: describe(row, class_names) for name, row in rows.items()}
    lines.setdefault("openvino int8", "not measured: --no-int8")
    if not bf16:
        lines.update(dict.fromkeys(BF16_ENGINES, NO_BF16))
    return lines


def print_seeded(seeded: dict[str, float], label_maps: dict[str, str], bf16: bool) -> None:
    """The seeded-R101 figures: res5 error and label-map agreement of every fast engine."""
    print(f"int8 res5 rel. error on the seeded R101 (same recipe): {seeded['openvino int8']:.2%}")
    for name in BF16_ENGINES:
        figure = f"{seeded[name]:.2%}" if bf16 else NO_BF16
        print(f"{name} res5 rel. error on the seeded R101: {figure}")
    for name in (*BF16_ENGINES, "openvino int8"):
        print(f"{name} label map vs eager fp32 on the seeded R101: {label_maps[name]}")


def accuracy_only(args: argparse.Namespace, threads: int, bf16: bool) -> None:
    """The seeded-R101 accuracy figures alone: res5 errors and label-map agreement (with
    ``--no-int8``: the bf16 label maps only, without the minutes of int8 quantisation)."""
    loads = [os.getloadavg()[0]]
    seeded = seeded_model()
    photos = [synthetic_photo(960, 640, SEED + k) for k in range(args.photos + 1)]
    calibration = None
    if not args.no_int8:
        calibration = calibration_inputs(
            args.calibration,
            pixel_mean=seeded.pixel_mean,
            pixel_std=seeded.pixel_std,
            min_size=640,
            max_size=1333,
        )
        figures = seeded_figures(seeded, photos, calibration, args.alpha, bf16)
        loads.append(os.getloadavg()[0])
    label_maps = seeded_label_maps(
        seeded, photos, calibration, alpha=args.alpha, bf16=bf16, threads=threads
    )
    loads.append(os.getloadavg()[0])
    print(f"{len(photos)} seeded photos (960x640); 1-minute load {min(loads):.2f}-{max(loads):.2f}")
    if args.no_int8:
        for name in (*BF16_ENGINES, "openvino int8"):
            print(f"{name} label map vs eager fp32 on the seeded R101: {label_maps[name]}")
        return
    print(
        f"perturbation gain ({PERTURBATION:.0%} noise at res2 -> res5 change, fp32): "
        f"seeded {figures['gain']:.1%}"
    )
    print_seeded(figures, label_maps, bf16)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    print(f"CPU: {cpu_description()}")
    print(f"torch {torch.__version__}, OpenVINO {ov.get_version()}, {threads} threads")
    bf16 = bool(bf16_units(cpu_flags()))
    if not bf16:
        print(f"eager bf16, openvino bf16: {NO_BF16} (emulated bf16 is slower than fp32)")
    if args.accuracy_only:
        accuracy_only(args, threads, bf16)
        return
    loads = [os.getloadavg()[0]]

    photo = synthetic_photo(960, 640, SEED)
    model, build_s = timed(lambda: realistic_model(photo))
    print(f"trained-like R101 built in {build_s:.0f} s")
    class_names = tuple(preset("m2fp_r101_cihp")["classes"])
    photos = [photo] + [synthetic_photo(960, 640, SEED + k) for k in range(1, args.photos + 1)]
    inputs = [network_input(model, p) for p in photos]
    batch = inputs[0]
    print(f"input {tuple(batch.shape)}; {len(photos)} evaluation photos")

    # the same network in eager's other memory layout (NCHW, before HumanParser makes it
    # channels-last) differs by float rounding only: the floor of what "exact" can mean here
    with torch.inference_mode():
        res5_eager = [model.backbone(x)["res5"] for x in inputs]
        nchw_outputs = [model(x) for x in inputs]

    rss_before = rss_mb()
    fp32_package, convert_s = timed(lambda: convert_fp32(model))
    data, serialise_s = timed(fp32_package.to_bytes)
    print(f"fp32: converted in {convert_s:.1f} s, package {len(data) / 2**20:.0f} MB")

    def load_fp32():
        return OpenVINOEngine(package=OpenVINOPackage.from_bytes(data), num_threads=threads)

    fp32_engine, load_s = timed(load_fp32)
    _, compile_s = timed(lambda: fp32_engine.compiled(*batch.shape[-2:]))
    rss_fp32 = rss_mb()
    _, second_compile_s = timed(lambda: fp32_engine.compiled(batch.shape[-1], batch.shape[-2]))
    rss_second = rss_mb()
    print(
        f"fp32: load from bytes {load_s:.2f} s, compile for {tuple(batch.shape[-2:])} "
        f"{compile_s:.1f} s (another shape {second_compile_s:.1f} s, "
        f"+{rss_second - rss_fp32:.0f} MB RSS); RSS +{rss_fp32 - rss_before:.0f} MB"
    )

    calibration, calibration_s = timed(
        lambda: calibration_inputs(
            args.calibration,
            pixel_mean=model.pixel_mean,
            pixel_std=model.pixel_std,
            min_size=640,
            max_size=1333,
        )
    )
    int8_parts = quantized_parts(cpu_flags())
    int8_package, quantize_s = timed(
        lambda: quantize_package(
            fp32_package, calibration, smooth_quant_alpha=args.alpha, parts=int8_parts
        )
    )
    int8_data = int8_package.to_bytes()
    int8_engine, int8_load_s = timed(
        lambda: OpenVINOEngine(package=OpenVINOPackage.from_bytes(int8_data), num_threads=threads)
    )
    _, int8_compile_s = timed(lambda: int8_engine.compiled(*batch.shape[-2:]))
    print(
        f"int8: {args.calibration} calibration scenes drawn in {calibration_s:.1f} s, "
        f"quantised ({' and '.join(int8_parts)}) in {quantize_s:.0f} s (SmoothQuant alpha "
        f"{args.alpha}), package "
        f"{len(int8_data) / 2**20:.0f} MB, load {int8_load_s:.2f} s, compile {int8_compile_s:.1f} s"
    )
    loads.append(os.getloadavg()[0])

    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        packages = {"fp32": fp32_package, "int8": int8_package}
        forms = write_forms(Path(work), preset("m2fp_r101_cihp"), state, packages)
        del state
        startup = measure_startup(forms, args.startup_rounds)
    print(f"start-up: {startup}")
    loads.append(os.getloadavg()[0])
    ready = {
        "eager": startup["safetensors"],
        "openvino fp32": startup["openvino fp32"],
        "openvino int8": startup["openvino int8"],
    }

    parser = HumanParser(model=model, class_names=class_names, ins_score_thr=0.3)
    engines = {"eager": parser._forward}
    # each engine's whole parser, for end to end: the same weights and the same packages
    parsers = {"eager": parser}

    def parser_of(engine: str, precision: str, package=None) -> HumanParser:
        return engine_parser(model, engine, precision, threads=threads, package=package)

    if bf16:
        parsers["eager bf16"] = parser_of("torch", "bf16")
        engines["eager bf16"] = parsers["eager bf16"]._forward
    engines["openvino fp32"] = fp32_engine
    parsers["openvino fp32"] = parser_of("openvino", "fp32", fp32_package)
    if bf16:
        bf16_engine = OpenVINOEngine(
            package=OpenVINOPackage.from_bytes(data), precision="bf16", num_threads=threads
        )
        _, bf16_compile_s = timed(lambda: bf16_engine.compiled(*batch.shape[-2:]))
        print(f"bf16 (OpenVINO, from the fp32 package): compile {bf16_compile_s:.1f} s")
        engines["openvino bf16"] = bf16_engine
        parsers["openvino bf16"] = parser_of("openvino", "bf16", fp32_package)
    engines["openvino int8"] = int8_engine
    parsers["openvino int8"] = parser_of("openvino", "int8", int8_package)
    samples: dict[str, list[float]] = {name: [] for name in engines}
    with torch.inference_mode():
        for fn in engines.values():
            fn(batch)
        for _ in range(args.rounds):
            for name, fn in engines.items():
                loads.append(os.getloadavg()[0])
                samples[name].append(timed(lambda fn=fn: fn(batch))[1])
    medians = {name: statistics.median(times) for name, times in samples.items()}
    # each round's eager time over the engine's, taken seconds apart: steadier than the ratio
    # of medians on a machine whose speed drifts during the run
    round_ratios = {
        name: statistics.median(e / t for e, t in zip(samples["eager"], times, strict=True))
        for name, times in samples.items()
    }
    # end to end, the same way: one warm-up parse each (compiles OpenVINO's shape), then rounds
    whole: dict[str, list[float]] = {name: [] for name in parsers}
    for each in parsers.values():
        each(photo)
    for _ in range(args.rounds):
        for name, each in parsers.items():
            loads.append(os.getloadavg()[0])
            whole[name].append(timed(lambda each=each: each(photo))[1])
    whole_medians = {name: statistics.median(times) for name, times in whole.items()}
    del parsers
    # printed at once, so that the timing survives a failure in the accuracy part below
    print(f"forward medians: {json.dumps({k: round(v, 3) for k, v in medians.items()})}")
    print(
        f"forward per-round ratios: {json.dumps({k: round(v, 3) for k, v in round_ratios.items()})}"
    )
    print(f"end-to-end medians: {json.dumps({k: round(v, 3) for k, v in whole_medians.items()})}")

    # accuracy: network outputs and label maps on every photo, res5 of each backbone
    accuracy: dict[str, dict[str, float]] = {}
    for index, (picture_bytes, x) in enumerate(zip(photos, inputs, strict=True)):
        picture = parser.load_image(picture_bytes)
        resized, _ = parser._preprocess(picture)
        outputs = {name: fn(x) for name, fn in engines.items()}
        outputs[NCHW] = nchw_outputs[index]
        maps = {
            name: parser._postprocess(*out, picture, resized, x).label_map
            for name, out in outputs.items()
        }
        eager_logits, eager_masks = outputs["eager"]
        for name in (NCHW, *[name for name in engines if name != "eager"]):
            row = accuracy.setdefault(name, {"logits": 0.0, "masks": 0.0, "agree": []})
            row["logits"] = max(row["logits"], relative_error(outputs[name][0], eager_logits))
            row["masks"] = max(row["masks"], relative_error(outputs[name][1], eager_masks))
            row["agree"].append(float((maps[name] == maps["eager"]).mean()))
        del outputs, maps
        print(f"photo {index}: parsed by every engine")
    with torch.inference_mode():
        res5_layout = [
            relative_error(model.backbone(parser_input(x))["res5"], ref)
            for x, ref in zip(inputs, res5_eager, strict=True)
        ]
    accuracy[NCHW]["res5"] = float(np.mean(res5_layout))
    # each engine's res5 on every photo, computed as that engine computes its backbone
    res5_of = {
        "openvino fp32": lambda: graph_res5(fp32_package.models()["backbone"], inputs),
        "openvino int8": lambda: graph_res5(int8_package.models()["backbone"], inputs),
    }
    if bf16:
        res5_of["eager bf16"] = lambda: eager_bf16_res5(model, inputs)
        res5_of["openvino bf16"] = lambda: graph_res5(
            fp32_package.models()["backbone"], inputs, "bf16"
        )
    for name, res5 in res5_of.items():
        errors = [relative_error(r, ref) for r, ref in zip(res5(), res5_eager, strict=True)]
        accuracy[name]["res5"] = float(np.mean(errors))
        accuracy[name]["res5_each"] = errors
    trained_like_gain = perturbation_gain(model, inputs[0])
    seeded_r101 = seeded_model()
    seeded = seeded_figures(seeded_r101, photos, calibration, args.alpha, bf16)
    label_maps = seeded_label_maps(
        seeded_r101, photos, calibration, alpha=args.alpha, bf16=bf16, threads=threads
    )
    del seeded_r101
    loads.append(os.getloadavg()[0])

    print(f"\n1-minute load during the run: {min(loads):.2f}-{max(loads):.2f} (own threads too)")
    print(
        "\n| engine | forward (median) | min | vs eager | per-round ratio | end to end (median) "
        "| vs eager | logits rel. err. | masks rel. err. "
        "| res5 rel. err. | label-map agreement | start-up (process start to ready) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in [*medians, NCHW]:
        if name == "openvino fp32" and not bf16:
            print(f"| eager bf16 | {NO_BF16} |" + " |" * 10)
        row = accuracy.get(name)
        errors = (
            "- | - | - | -"
            if row is None
            else f"{row['logits']:.1e} | {row['masks']:.1e} | {row['res5']:.1e} "
            f"| {np.mean(row['agree']):.3%} (min {min(row['agree']):.3%})"
        )
        timing = (
            "- | - | - | -"
            if name not in medians
            else f"{medians[name]:.2f} s | {min(samples[name]):.2f} s "
            f"| {medians['eager'] / medians[name]:.2f}x | {round_ratios[name]:.2f}x"
        )
        end_to_end = "- | -"
        if name in whole_medians:
            seconds = whole_medians[name]
            end_to_end = f"{seconds:.2f} s | {whole_medians['eager'] / seconds:.2f}x"
        start = f"{ready[name]['ready_seconds']:.2f} s" if name in ready else "-"
        print(f"| {name} | {timing} | {end_to_end} | {errors} | {start} |")
        if name == "openvino fp32" and not bf16:
            print(f"| openvino bf16 | {NO_BF16} |" + " |" * 10)
    print(
        f"\nres5 rel. error per photo, int8: "
        f"{', '.join(f'{e:.2%}' for e in accuracy['openvino int8']['res5_each'])}"
    )
    print(
        f"perturbation gain ({PERTURBATION:.0%} noise at res2 -> res5 change, fp32): "
        f"trained-like {trained_like_gain:.1%}, seeded {seeded['gain']:.1%}"
    )
    print_seeded(seeded, label_maps, bf16)
    print(
        "\n| start-up step | time |\n| --- | --- |\n"
        f"| convert to fp32 package (torch.export + OpenVINO, once) | {convert_s:.1f} s |\n"
        f"| serialise package to bytes ({len(data) / 2**20:.0f} MB) | {serialise_s:.2f} s |\n"
        f"| int8: quantise the {' and '.join(int8_parts)} ({args.calibration} scenes, once) "
        f"| {quantize_s:.0f} s |\n"
        f"| load fp32 package from bytes | {load_s:.2f} s |\n"
        f"| compile fp32 for 640x960 (once per shape) | {compile_s:.1f} s |\n"
        f"| load int8 package from bytes ({len(int8_data) / 2**20:.0f} MB) "
        f"| {int8_load_s:.2f} s |\n"
        f"| compile int8 for 640x960 | {int8_compile_s:.1f} s |"
    )
    print(
        "\n| start-up, process start to | ready parser | of which imports | from_pretrained "
        "| exit |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, row in startup.items():
        print(
            f"| {name} | {row['ready_seconds']:.2f} s | {row['imports_seconds']:.2f} s "
            f"| {row['from_pretrained_seconds']:.2f} s | {row['exit_seconds']:.2f} s |"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds after a warm-up")
    parser.add_argument("--photos", type=int, default=2, help="evaluation photos besides one")
    parser.add_argument("--calibration", type=int, default=DEFAULT_SCENES, help="int8 scenes")
    parser.add_argument("--alpha", type=float, default=DEFAULT_SMOOTH_QUANT_ALPHA)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: keep)")
    parser.add_argument("--startup-rounds", type=int, default=3, help="starts per form")
    parser.add_argument("--workdir", default=None, help="where the model forms are written")
    parser.add_argument(
        "--accuracy-only",
        action="store_true",
        help="only the seeded-R101 res5 errors and label-map agreement (no timing, no start-up)",
    )
    parser.add_argument(
        "--no-int8", action="store_true", help="with --accuracy-only: the bf16 label maps only"
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
