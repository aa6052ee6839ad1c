"""Forward-pass variants of the R101 network on a 640x960 input, timed interleaved.

What BENCHMARKS.md's "what each step gained" table comes from. Variants are run round-robin
(A, B, C, A, B, C, ...) so that a change in machine load hits all of them alike; the median per
variant is printed. Candidates that change no code path of the package (jit freeze of the
backbone, torch.compile) are tried here only.

Usage: .venv/bin/python benchmarks/bench_forward_variants.py [--rounds 5] [--variants ...]
Compare with the engine before this work by running the same script with
``PYTHONPATH=<checkout of 0829c0e>/src`` and ``--variants nchw``.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable

import torch

from m2fp.build import build_model, preset
from m2fp.modeling import ms_deform_attn

SEED = 0


def build_variants(names: list[str]) -> dict[str, Callable[[], object]]:
    torch.manual_seed(SEED)
    base = build_model(preset("m2fp_r101_cihp")).eval()
    x = torch.randn(1, 3, 640, 960)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    cl = copy.deepcopy(base).to(memory_format=torch.channels_last)
    variants: dict[str, Callable[[], object]] = {}
    if "nchw" in names:
        variants["nchw"] = lambda: base(x)
    if "channels_last" in names:
        variants["channels_last"] = lambda: cl(x_cl)
    if "channels_last_grid_sample" in names:
        grid = copy.deepcopy(cl)
        for module in grid.modules():
            if isinstance(module, ms_deform_attn.MSDeformAttn):
                module.sampler = ms_deform_attn.ms_deform_attn_sample_grid
        variants["channels_last_grid_sample"] = lambda: grid(x_cl)
    if "int8" in names:
        # rejected candidate: dynamic int8 quantisation of the deformable encoder's linears
        from torch.ao.quantization import quantize_dynamic

        quantized = copy.deepcopy(cl)
        encoder = quantized.sem_seg_head.pixel_decoder.transformer
        quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        variants["int8"] = lambda: quantized(x_cl)
    if "jit_freeze_backbone" in names:
        head = cl.sem_seg_head
        with torch.no_grad():
            traced = torch.jit.trace(copy.deepcopy(cl.backbone), x_cl, strict=False)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        variants["jit_freeze_backbone"] = lambda: head(frozen(x_cl))
    if "compile" in names:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        compiled = torch.compile(copy.deepcopy(cl))
        start = time.perf_counter()
        with torch.no_grad():
            compiled(x_cl)
        print(f"torch.compile: first call (compilation) {time.perf_counter() - start:.0f} s")
        variants["compile"] = lambda: compiled(x_cl)
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["nchw", "channels_last", "channels_last_grid_sample", "int8"],
    )
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = build_variants(args.variants)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    loads = []
    with torch.inference_mode():
        for fn in variants.values():
            fn()  # warm-up
        for _ in range(args.rounds):
            for name, fn in variants.items():
                loads.append(os.getloadavg()[0])
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
    print(f"{torch.get_num_threads()} threads, 1-minute load {min(loads):.2f}-{max(loads):.2f}")
    for name, times in samples.items():
        print(
            f"{name:28s} median {statistics.median(times):6.2f} s  "
            f"min {min(times):6.2f} s  ({len(times)} runs)"
        )


if __name__ == "__main__":
    main()
