"""``m2fp parse``: images in, overlay PNG, label-map PNG and JSON summary out, per image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from m2fp.cli.errors import EXIT_FAILED
from m2fp.cli.model_lookup import key_for, model_path
from m2fp.errors import M2FPError
from m2fp.memory import release_free_memory
from m2fp.parser_options import ParserOptions
from m2fp.predictor import HumanParser


def parse(args: argparse.Namespace) -> int:
    """Parse every image; a bad one is reported on one line and the others still run."""
    path = model_path(args.model)
    parser = HumanParser.from_pretrained(
        path,
        options=ParserOptions(
            min_size=args.min_size,
            max_size=args.max_size,
            precision=args.precision,
            flip=args.flip,
        ),
        key=key_for(path, args.key_file),
    )
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    images = [Path(p) for p in args.images]
    progress = tqdm(images, unit="image", disable=len(images) < 2, file=sys.stderr)
    for image_path in progress:
        try:
            result = parser(image_path)
        except M2FPError as exc:
            failures += 1
            progress.write(f"m2fp: {image_path.name}: {exc}", file=sys.stderr)
            continue
        stem = image_path.stem
        (out_dir / f"{stem}_vis.png").write_bytes(result.visualize(alpha=args.alpha))
        (out_dir / f"{stem}_labels.png").write_bytes(result.label_map_png())
        summary = {"image": image_path.name, **result.to_dict()}
        (out_dir / f"{stem}.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        del result
        # this process owns its heap: hand the activations and masks back between images
        release_free_memory()
    return EXIT_FAILED if failures else 0
