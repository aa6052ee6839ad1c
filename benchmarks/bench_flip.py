"""Cost of flip test-time augmentation (``ParserOptions(flip=True)``) on the R101 models.

Both ModelScope models at their real sizes, seeded random weights calibrated on the photo like
``bench_pipeline.py`` does (so post-processing has instances and classes to work on): the
multi-person model on a 960x640 photo (640 px network input), the single-person model on a
640x960 portrait (its fixed 384x512 input). Each run parses the photo end to end from its
bytes; flip off and on alternate, and the medians of ``--runs`` each are compared.

Usage: .venv/bin/python benchmarks/bench_flip.py [--runs 5] [--model multi single]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import torch
from bench_pipeline import SEED, calibrate, load, network_input, synthetic_photo
from PIL import Image

from m2fp import HumanParser, ParserOptions
from m2fp.build import build_model, preset
from m2fp.model_config import single_person_input_size
from m2fp.processing.centre_pad import centre_pad
from m2fp.processing.preprocess import to_input_tensor


def multi_person(photo: bytes, options: ParserOptions) -> HumanParser:
    torch.manual_seed(SEED)
    config = preset("m2fp_r101_cihp")
    model = build_model(config)
    calibrate(model, network_input(model, photo))
    return HumanParser.from_config(model, config, options=options)


def single_person(photo: bytes, options: ParserOptions) -> HumanParser:
    torch.manual_seed(SEED)
    config = preset("m2fp_r101_lip")
    model = build_model(config)
    picture = Image.open(io.BytesIO(photo)).convert("RGB")
    centred = centre_pad(picture, *single_person_input_size(config))
    batch = to_input_tensor(
        centred.image, model.pixel_mean, model.pixel_std, model.size_divisibility
    )
    calibrate(model, batch)
    return HumanParser.from_config(model, config, options=options)


BUILDERS = {"multi": (multi_person, (960, 640)), "single": (single_person, (640, 960))}


def bench(name: str, runs: int) -> dict[str, float]:
    builder, (width, height) = BUILDERS[name]
    photo = synthetic_photo(width, height, SEED)
    plain = builder(photo, ParserOptions())
    flipped = HumanParser(
        model=plain.model,
        class_names=plain.class_names,
        ins_score_thr=plain.ins_score_thr,
        options=ParserOptions(flip=True),
        single_person_size=plain.single_person_size,
    )
    timings: dict[str, list[float]] = {"off": [], "on": []}
    for parser in (plain, flipped):
        parser(photo)  # warm-up: oneDNN primitives for this shape
    for _ in range(runs):
        for key, parser in (("off", plain), ("on", flipped)):
            start = time.perf_counter()
            parser(photo)
            timings[key].append(time.perf_counter() - start)
    off, on = statistics.median(timings["off"]), statistics.median(timings["on"])
    return {"off": off, "on": on, "ratio": on / off}


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--runs", type=int, default=5)
    args.add_argument("--model", nargs="+", choices=list(BUILDERS), default=list(BUILDERS))
    options = args.parse_args()
    print(f"threads {torch.get_num_threads()}, 1-min load {load():.2f}")
    print("| model | flip off (s) | flip on (s) | ratio |")
    print("| --- | --- | --- | --- |")
    for name in options.model:
        r = bench(name, options.runs)
        print(f"| {name} | {r['off']:.2f} | {r['on']:.2f} | {r['ratio']:.2f}x |", flush=True)
    print(f"1-min load after {load():.2f}")


if __name__ == "__main__":
    main()
