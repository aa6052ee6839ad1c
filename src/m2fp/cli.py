"""The ``m2fp`` command. Heavy imports happen inside subcommands so ``--help`` stays instant.

Every failure the user can cause ends in one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from m2fp.errors import M2FPError, ModelNotFoundError
from m2fp.model_location import HOW_TO_GET, resolve_model_path

EXIT_FAILED = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """A failure to report as one line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _model_path(explicit: str | None) -> Path:
    path = resolve_model_path(explicit)
    if path is None or not path.exists():
        raise CLIError(HOW_TO_GET, EXIT_USAGE)
    return path


def cmd_parse(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from m2fp.predictor import HumanParser

    model_path = _model_path(args.model)
    parser = HumanParser.from_pretrained(model_path, min_size=args.min_size, max_size=args.max_size)
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
    return EXIT_FAILED if failures else 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from m2fp.model_info import describe

    print(json.dumps(describe(_model_path(args.path)), indent=2))
    return 0


def cmd_model_download(args: argparse.Namespace) -> int:
    from m2fp.download import download_model
    from m2fp.model_location import default_model_dir

    dest = Path(args.dest) if args.dest else default_model_dir()
    download_model(dest, base_url=args.base_url, revision=args.revision)
    print(f"model saved to {dest}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from m2fp.server.settings import SettingsError, load_settings

    try:
        settings = load_settings(model=str(_model_path(args.model)))
    except SettingsError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None

    import uvicorn

    from m2fp.server.app import create_app, load_parser
    from m2fp.server.audit_log import log_config

    try:
        parser = load_parser(settings)
    except M2FPError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    uvicorn.run(
        create_app(settings, parser=parser),
        host=args.host,
        port=args.port,
        proxy_headers=False,
        server_header=False,
        date_header=True,
        access_log=False,
        log_config=log_config(),
    )
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError("must be between 1 and 65535")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="m2fp", description="Multi-person human parsing (M2FP).")
    commands = parser.add_subparsers(dest="command", required=True)

    parse = commands.add_parser("parse", help="parse images and write masks, labels and JSON")
    parse.add_argument("images", nargs="+", help="JPEG or PNG files")
    parse.add_argument("--model", help="model directory (default: $M2FP_MODEL or the cache)")
    parse.add_argument("--out", required=True, help="output directory")
    parse.add_argument("--min-size", type=_positive, default=640)
    parse.add_argument("--max-size", type=_positive, default=1333)
    parse.add_argument("--alpha", type=_fraction, default=0.6, help="overlay opacity")
    parse.set_defaults(handler=cmd_parse)

    model = commands.add_parser("model", help="inspect, download or protect model files")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    info = model_commands.add_parser("info", help="config, parameters, classes and sha256")
    info.add_argument("path", nargs="?", help="model directory")
    info.set_defaults(handler=cmd_model_info)

    download = model_commands.add_parser("download", help="fetch the official ModelScope files")
    download.add_argument("--dest", help="target directory (default: the cache)")
    download.add_argument("--base-url", default=None, help="ModelScope hub base URL")
    download.add_argument("--revision", default=None, help="model revision")
    download.set_defaults(handler=cmd_model_download)

    serve = commands.add_parser("serve", help="run the web service (REST API and WebUI)")
    serve.add_argument("--model", help="model directory (default: $M2FP_MODEL or the cache)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8000)
    serve.set_defaults(handler=cmd_serve)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CLIError as exc:
        print(f"m2fp: {exc}", file=sys.stderr)
        return exc.code
    except ModelNotFoundError as exc:
        print(f"m2fp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except M2FPError as exc:
        print(f"m2fp: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("m2fp: interrupted", file=sys.stderr)
        return 130


def main() -> None:
    sys.exit(run())
