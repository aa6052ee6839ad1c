"""Every ``m2fp`` subcommand and its arguments: standard library only, so ``m2fp --help``
and argument errors never wait for torch.

Each subcommand names its handler as ``"module:function"`` inside ``m2fp.cli``; ``run``
imports that module only when the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from m2fp.cli.compute_arguments import add_compute_arguments, option_rule
from m2fp.cli.parse_arguments import (
    add_input_arguments,
    add_output_arguments,
    add_reading_arguments,
    check_output_arguments,
    check_parse_arguments,
)
from m2fp.cli.serve_banner import DEFAULT_LOG_FORMAT, LOG_FORMATS
from m2fp.compute.parser_options import check_max_size, check_min_size
from m2fp.defaults import (
    DEFAULT_ACTOR_START_TIMEOUT_S,
    DEFAULT_ALPHA,
    DEFAULT_CALIBRATION_SCENES,
    DEFAULT_MAX_SIZE,
    DEFAULT_MIN_SIZE,
    DEFAULT_ONNX_OPSET,
)
from m2fp.weights.download import DEFAULT_BASE_URL
from m2fp.weights.location import DEFAULT_HUB_MODEL, HUB_MODELS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
SCAN_TIMEOUT = 30
MODEL_HELP = "model directory or .m2fp file (default: $M2FP_MODEL or the cache)"


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


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError("must be a number of 0 or more")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _add_defaulted(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flag: str,
    *,
    type: Callable[[str], object],  # argparse's own name for it
    default: object,
    help: str,  # argparse's own name for it
) -> None:
    """An option whose help ends with its default, written from the default itself so the
    two cannot disagree."""
    parser.add_argument(flag, type=type, default=default, help=f"{help} (default {default})")


def _add_key_file(parser: argparse.ArgumentParser) -> None:
    """``--key-file``: the key of an encrypted model."""
    parser.add_argument(
        "--key-file", help="model key file (default: $M2FP_MODEL_KEY_FILE or $M2FP_MODEL_KEY)"
    )


def _add_json_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the whole report as JSON, for scripts (default: a readable summary)",
    )


def _add_parse(commands: argparse._SubParsersAction) -> None:
    parse = commands.add_parser("parse", help="parse images and write masks, labels and JSON")
    parse.add_argument("images", nargs="*", help="JPEG or PNG files, or directories of them")
    _add_parsing_options(parse)
    add_output_arguments(parse)
    add_input_arguments(parse)
    parse.set_defaults(handler="parse_command:parse", check=check_parse_arguments(parse))


def _add_batch(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser(
        "batch", help="parse a dataset on Ray (a local Ray, or a cluster's): resumable"
    )
    batch.add_argument(
        "src",
        metavar="SRC",
        help="a folder (walked recursively), a .txt/.csv/.parquet list of paths, an image, "
        "or a filesystem URI of one (s3://...)",
    )
    _add_parsing_options(batch)
    batch.add_argument(
        "--format",
        dest="form",
        choices=["files", "parquet"],
        default="files",
        help="files: what m2fp parse --out writes; parquet: one row per image (part-*.parquet) "
        "(default: files)",
    )
    ray = batch.add_argument_group("ray")
    ray.add_argument(
        "--ray-address",
        help="the Ray cluster to join: auto or ray://HOST:PORT (default: start a local Ray "
        "on this machine and stop it after)",
    )
    _add_defaulted(ray, "--actors", type=_positive, default=1, help="parsing actors")
    ray.add_argument(
        "--gpus-per-actor",
        type=_non_negative,
        default=None,
        help="GPUs per actor (default: 1 where the cluster has one for each actor, else 0)",
    )
    _add_defaulted(
        ray,
        "--actor-start-timeout",
        type=_positive_seconds,
        default=DEFAULT_ACTOR_START_TIMEOUT_S,
        help="seconds the actors may take to start (placed on the cluster, model loaded) "
        "before the job fails",
    )
    add_output_arguments(batch, format_flag="--mask-format")
    add_reading_arguments(batch.add_argument_group("inputs"))
    batch.set_defaults(
        handler="batch_command:batch",
        check=lambda args: check_output_arguments(batch, args, format_flag="--mask-format"),
    )


def _add_parsing_options(parse: argparse.ArgumentParser) -> None:
    """Model, output folder, input sizes, overlay and compute flags of parse and batch."""
    parse.add_argument("--model", help=MODEL_HELP)
    _add_key_file(parse)
    parse.add_argument("--out", required=True, help="output directory")
    _add_defaulted(
        parse,
        "--min-size",
        type=option_rule(check_min_size),
        default=DEFAULT_MIN_SIZE,
        help="short side of the network input",
    )
    _add_defaulted(
        parse,
        "--max-size",
        type=option_rule(check_max_size),
        default=DEFAULT_MAX_SIZE,
        help="bound of the network input's long side",
    )
    _add_defaulted(
        parse,
        "--alpha",
        type=_fraction,
        default=DEFAULT_ALPHA,
        help="opacity of the class colours in <name>_vis.png, 0 to 1",
    )
    add_compute_arguments(parse, batch=True)
    parse.add_argument(
        "--flip",
        action="store_true",
        help="also parse the mirrored photo and average (test-time augmentation, ~2x time)",
    )


def _add_model(commands: argparse._SubParsersAction) -> None:
    model = commands.add_parser("model", help="inspect, download or protect model files")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    info = model_commands.add_parser(
        "info", help="check the weights fit the network; print config, parameters, classes, sha256"
    )
    info.add_argument("path", nargs="?", help=MODEL_HELP)
    _add_key_file(info)
    _add_json_report(info)
    add_compute_arguments(info)
    info.set_defaults(handler="model_commands:info")

    download = model_commands.add_parser("download", help="fetch the official ModelScope files")
    download.add_argument(
        "--model",
        choices=list(HUB_MODELS),
        default=DEFAULT_HUB_MODEL,
        help="multi: several people per photo (CIHP, default); single: one person per photo (LIP)",
    )
    download.add_argument("--dest", help="target directory (default: the cache)")
    download.add_argument(
        "--base-url", default=None, help=f"ModelScope hub base URL (default {DEFAULT_BASE_URL})"
    )
    download.add_argument("--revision", default=None, help="model revision (default: per model)")
    download.set_defaults(handler="download_command:download")

    keygen = model_commands.add_parser("keygen", help="create a new 256-bit model key")
    where = keygen.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="new key file, created with mode 0600 (or --stdout)")
    where.add_argument("--stdout", action="store_true", help="print the key once instead")
    keygen.set_defaults(handler="key_commands:keygen")

    encrypt = model_commands.add_parser(
        "encrypt", help="encrypt a model directory into one .m2fp file (AES-256-GCM)"
    )
    encrypt.add_argument("dir", help="model directory (configuration.json plus weights)")
    _add_key_file(encrypt)
    encrypt.add_argument("--out", required=True, help="the .m2fp file to create")
    encrypt.set_defaults(handler="model_commands:encrypt")

    verify = model_commands.add_parser(
        "verify", help="check an .m2fp file's key, tags and hash; print its info"
    )
    verify.add_argument("file", help=".m2fp file")
    _add_key_file(verify)
    _add_json_report(verify)
    verify.set_defaults(handler="model_commands:verify")

    rekey = model_commands.add_parser("rekey", help="re-encrypt an .m2fp file under a new key")
    rekey.add_argument("file", help=".m2fp file")
    rekey.add_argument("--key-file", required=True, help="key file of the current key")
    rekey.add_argument("--new-key-file", required=True, help="key file of the new key")
    rekey.add_argument("--out", required=True, help="the new .m2fp file to create")
    rekey.set_defaults(handler="model_commands:rekey")

    export = model_commands.add_parser(
        "export",
        help="convert the network once: an ONNX file, or the OpenVINO package the openvino "
        "engine loads (beside the weights, or inside a new .m2fp file)",
    )
    export.add_argument("path", nargs="?", help=MODEL_HELP)
    export.add_argument(
        "--format",
        choices=["onnx", "openvino"],
        required=True,
        help="onnx: one portable .onnx file; openvino: the package the openvino engine loads",
    )
    export.add_argument(
        "--out",
        help="onnx: the .onnx file (required); openvino: default MODEL_DIR/openvino_<precision>"
        ".ovpkg, where the loader looks; for an encrypted model a new .m2fp file (required)",
    )
    _add_key_file(export)
    export.add_argument(
        "--precision",
        choices=["fp32", "int8"],
        default="fp32",
        help="openvino: fp32 (exact, default) or int8 (an approximation: the backbone "
        "quantised, calibrated on drawn scenes)",
    )
    _add_defaulted(
        export,
        "--opset",
        type=_positive,
        default=DEFAULT_ONNX_OPSET,
        help="onnx: opset, 17 or newer",
    )
    _add_defaulted(
        export,
        "--calibration",
        type=_positive,
        default=DEFAULT_CALIBRATION_SCENES,
        help="int8: drawn calibration scenes",
    )
    export.set_defaults(handler="export_command:export")


def _add_serve(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the web service (REST API and WebUI)")
    serve.add_argument("--model", help=MODEL_HELP)
    serve.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only)",
    )
    _add_defaulted(serve, "--port", type=_port, default=DEFAULT_PORT, help="port to listen on")
    _add_key_file(serve)
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=DEFAULT_LOG_FORMAT,
        help="auto: on a terminal one human line with the URL first, then JSON log lines; "
        "json: JSON log lines only (default: auto; not a terminal: JSON only)",
    )
    add_compute_arguments(serve, from_environment=True)
    serve.set_defaults(handler="serve_command:serve")


def _add_scan(commands: argparse._SubParsersAction) -> None:
    scan = commands.add_parser(
        "scan", help="check a running deployment from outside (TLS, headers, CORS, uploads...)"
    )
    scan.add_argument("url", help="the deployment, e.g. https://m2fp.example.org")
    scan.add_argument("--json", action="store_true", help="print the report as JSON")
    scan.add_argument("--checks", help="comma list of checks to run (default: all but rate_limit)")
    scan.add_argument(
        "--check-rate-limit",
        action="store_true",
        help="also check the rate limit (spends the scanner's whole quota)",
    )
    scan.add_argument(
        "--http-url", help="plain-HTTP address that must redirect (default: http://HOST)"
    )
    scan.add_argument(
        "--ca-file", help="CA bundle for the deployment's certificate (default: the system's)"
    )
    scan.add_argument(
        "--alert-webhook",
        help="https URL receiving a Slack-style summary of failures (default: $M2FP_ALERT_WEBHOOK, "
        "or the file $M2FP_ALERT_WEBHOOK_FILE names)",
    )
    scan.add_argument(
        "--api-key-file",
        help="file holding an API key for the upload probes (default: $M2FP_SCAN_API_KEY)",
    )
    _add_defaulted(
        scan, "--timeout", type=_positive, default=SCAN_TIMEOUT, help="seconds per request"
    )
    scan.set_defaults(handler="scan_command:scan")


class _Parser(argparse.ArgumentParser):
    """Runs the chosen command's ``check`` (combinations argparse cannot express) after
    parsing, so those usage errors too come before anything heavy is imported."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed = super().parse_args(args, namespace)
        check = getattr(parsed, "check", None)
        if check is not None:
            check(parsed)
        return parsed


def build_parser() -> argparse.ArgumentParser:
    """The ``m2fp`` argument parser."""
    parser = _Parser(prog="m2fp", description="Human parsing (M2FP).")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_parse(commands)
    _add_batch(commands)
    _add_model(commands)
    _add_serve(commands)
    _add_scan(commands)
    return parser
