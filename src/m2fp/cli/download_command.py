"""``m2fp model download``: the official files of one model from the ModelScope hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from m2fp.cli.terminal_text import escape_controls
from m2fp.weights.download import download_model
from m2fp.weights.location import HUB_MODELS, default_model_dir


def download(args: argparse.Namespace) -> int:
    dest = Path(args.dest) if args.dest else default_model_dir(args.model)
    model = HUB_MODELS[args.model]
    download_model(dest, base_url=args.base_url, revision=args.revision, model=model)
    print(f"{model.model_id} saved to {escape_controls(str(dest))}")
    return 0
