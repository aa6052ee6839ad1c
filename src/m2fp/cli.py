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
KEY_FILE_HELP = "model key file (default: $M2FP_MODEL_KEY_FILE or $M2FP_MODEL_KEY)"


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


def _model_key(key_file: str | None) -> bytes | None:
    """The key from ``--key-file``, else from M2FP_MODEL_KEY_FILE / M2FP_MODEL_KEY."""
    from m2fp.protection.keys import key_from_environment, read_key_file

    if key_file:
        return read_key_file(Path(key_file))
    return key_from_environment()


def _required_key(key_file: str | None) -> bytes:
    from m2fp.errors import ModelKeyError
    from m2fp.protection.keys import MISSING_KEY

    key = _model_key(key_file)
    if key is None:
        raise ModelKeyError(MISSING_KEY)
    return key


def cmd_parse(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from m2fp.predictor import HumanParser

    model_path = _model_path(args.model)
    # a directory needs no key; only an encrypted file makes the key lookup (and its checks) run
    key = _model_key(args.key_file) if model_path.is_file() else None
    parser = HumanParser.from_pretrained(
        model_path,
        min_size=args.min_size,
        max_size=args.max_size,
        key=key,
        precision=args.precision,
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
    return EXIT_FAILED if failures else 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from m2fp.model_info import describe, describe_protected

    path = _model_path(args.path)
    if path.is_file():
        report = describe_protected(path, key=_required_key(args.key_file))
    else:
        report = describe(path)
    print(json.dumps(report, indent=2))
    return 0


def cmd_model_keygen(args: argparse.Namespace) -> int:
    from m2fp.protection.keys import encode_key, generate_key, key_id, write_key_file

    key = generate_key()
    if args.stdout:
        print(encode_key(key))
        return 0
    write_key_file(Path(args.out), key)
    print(f"key {key_id(key)} written to {args.out} (mode 0600)")
    return 0


def cmd_model_encrypt(args: argparse.Namespace) -> int:
    from m2fp.protection.convert import encrypt_model_dir

    key = _required_key(args.key_file)
    header = encrypt_model_dir(Path(args.dir), key=key, out=Path(args.out))
    print(
        f"encrypted to {args.out}: key id {header.key_id}, {header.chunk_count} chunk(s), "
        f"weights sha256 {header.plaintext_sha256}"
    )
    return 0


def cmd_model_verify(args: argparse.Namespace) -> int:
    from m2fp.model_info import describe_protected

    path = Path(args.file)
    if not path.is_file():
        raise CLIError(f"{path.name} is not a file", EXIT_USAGE)
    print(json.dumps(describe_protected(path, key=_required_key(args.key_file)), indent=2))
    return 0


def cmd_model_rekey(args: argparse.Namespace) -> int:
    from m2fp.protection.convert import rekey_file
    from m2fp.protection.keys import key_id, read_key_file

    old_key = read_key_file(Path(args.key_file))
    new_key = read_key_file(Path(args.new_key_file))
    rekey_file(Path(args.file), old_key=old_key, new_key=new_key, out=Path(args.out))
    print(f"re-encrypted to {args.out}: key id {key_id(old_key)} -> {key_id(new_key)}")
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
        settings = load_settings(model=str(_model_path(args.model)), model_key_file=args.key_file)
    except SettingsError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None

    import uvicorn

    from m2fp.server.app import create_app, load_parser
    from m2fp.server.ops.audit_log import log_config

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
    parse.add_argument(
        "--model", help="model directory or .m2fp file (default: $M2FP_MODEL or the cache)"
    )
    parse.add_argument("--key-file", help=KEY_FILE_HELP)
    parse.add_argument("--out", required=True, help="output directory")
    parse.add_argument("--min-size", type=_positive, default=640)
    parse.add_argument("--max-size", type=_positive, default=1333)
    parse.add_argument("--alpha", type=_fraction, default=0.6, help="overlay opacity")
    parse.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="fp32: exact (default); bf16: faster on CPUs with native bf16 (see BENCHMARKS.md)",
    )
    parse.set_defaults(handler=cmd_parse)

    model = commands.add_parser("model", help="inspect, download or protect model files")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    info = model_commands.add_parser("info", help="config, parameters, classes and sha256")
    info.add_argument("path", nargs="?", help="model directory or .m2fp file")
    info.add_argument("--key-file", help=KEY_FILE_HELP)
    info.set_defaults(handler=cmd_model_info)

    download = model_commands.add_parser("download", help="fetch the official ModelScope files")
    download.add_argument("--dest", help="target directory (default: the cache)")
    download.add_argument("--base-url", default=None, help="ModelScope hub base URL")
    download.add_argument("--revision", default=None, help="model revision")
    download.set_defaults(handler=cmd_model_download)

    keygen = model_commands.add_parser("keygen", help="create a new 256-bit model key")
    where = keygen.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="new key file, created with mode 0600")
    where.add_argument("--stdout", action="store_true", help="print the key once instead")
    keygen.set_defaults(handler=cmd_model_keygen)

    encrypt = model_commands.add_parser(
        "encrypt", help="encrypt a model directory into one .m2fp file (AES-256-GCM)"
    )
    encrypt.add_argument("dir", help="model directory (configuration.json plus weights)")
    encrypt.add_argument("--key-file", help=KEY_FILE_HELP)
    encrypt.add_argument("--out", required=True, help="the .m2fp file to create")
    encrypt.set_defaults(handler=cmd_model_encrypt)

    verify = model_commands.add_parser(
        "verify", help="check an .m2fp file's key, tags and hash; print its info"
    )
    verify.add_argument("file", help=".m2fp file")
    verify.add_argument("--key-file", help=KEY_FILE_HELP)
    verify.set_defaults(handler=cmd_model_verify)

    rekey = model_commands.add_parser("rekey", help="re-encrypt an .m2fp file under a new key")
    rekey.add_argument("file", help=".m2fp file")
    rekey.add_argument("--key-file", required=True, help="key file of the current key")
    rekey.add_argument("--new-key-file", required=True, help="key file of the new key")
    rekey.add_argument("--out", required=True, help="the new .m2fp file to create")
    rekey.set_defaults(handler=cmd_model_rekey)

    serve = commands.add_parser("serve", help="run the web service (REST API and WebUI)")
    serve.add_argument("--model", help="model directory (default: $M2FP_MODEL or the cache)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--key-file", help=KEY_FILE_HELP)
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
