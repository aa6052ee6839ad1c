"""``m2fp model download``: the official files from the ModelScope hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from m2fp.download import download_model
from m2fp.model_location import default_model_dir


def download(args: argparse.Namespace) -> int:
    dest = Path(args.dest) if args.dest else default_model_dir()
    download_model(dest, base_url=args.base_url, revision=args.revision)
    print(f"model saved to {dest}")
    return 0
