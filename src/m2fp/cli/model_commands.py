"""``m2fp model info|verify|encrypt|rekey``: commands that open or write weights."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from m2fp.cli.errors import EXIT_USAGE, CLIError
from m2fp.cli.model_lookup import model_path, required_key
from m2fp.cli.model_summary import summary_lines
from m2fp.cli.terminal_text import escape_controls
from m2fp.compute.options import Engine
from m2fp.compute.parser_options import ParserOptions
from m2fp.compute.report import compute_report
from m2fp.engines.openvino_package import attachment_name, packages_beside
from m2fp.errors import TORCH_MISSING, MissingExtraError
from m2fp.protection.keys import key_id, read_key_file
from m2fp.weights.model_report import model_report


def _print_report(
    path: Path, key: bytes | None, options: ParserOptions | None = None, *, as_json: bool
) -> None:
    """Open (and so check) the model, then print what it is, the OpenVINO packages that
    travel with it and, with ``options``, what they mean on this machine: a readable
    summary, or with ``as_json`` the whole report as JSON (what scripts read)."""
    report = model_report(path, key)
    if options is not None:
        report["compute"] = _compute(options)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        for line in summary_lines(path, report):
            print(escape_controls(line))


def _compute(options: ParserOptions) -> dict[str, Any]:
    """``compute_report``; on the slim runtime, where the default torch engine is not
    installed, the engine asked for and why it cannot run here instead of a refusal: the
    model is still described (``--engine openvino`` reports the engine that runs)."""
    try:
        return compute_report(options)
    except MissingExtraError as exc:
        if options.engine is not Engine.TORCH or str(exc) != TORCH_MISSING:
            raise
        return {"engine": options.engine.value, "unavailable": TORCH_MISSING}


def info(args: argparse.Namespace) -> int:
    """Config, parameters, classes and sha256, after checking the weights fit the network;
    the OpenVINO packages it has; what --device/--engine/--precision mean here."""
    options = ParserOptions.from_fields(args)
    path = model_path(args.path)
    key = required_key(args.key_file) if path.is_file() else None
    _print_report(path, key, options, as_json=args.json)
    return 0


def verify(args: argparse.Namespace) -> int:
    """An ``.m2fp`` file's key, every chunk's tag and the hash, then its report."""
    path = Path(args.file)
    if not path.is_file():
        raise CLIError(f"{path.name} is not a file", EXIT_USAGE)
    _print_report(path, required_key(args.key_file), as_json=args.json)
    return 0


def encrypt(args: argparse.Namespace) -> int:
    """The directory's weights, and the OpenVINO packages exported beside them (re-stamped
    for the re-serialised weights they now belong to), in one new ``.m2fp`` file."""
    # the cipher needs the crypto extra: imported only when encrypting
    from m2fp.protection.convert import encrypt_payload, model_dir_payload

    key = required_key(args.key_file)
    model_dir = Path(args.dir)
    payload = model_dir_payload(model_dir)
    attachments = {
        attachment_name(precision): replace(package, weights_sha256=payload.sha256).to_bytes()
        for precision, package in packages_beside(model_dir, payload.source_sha256).items()
    }
    header = encrypt_payload(payload, key=key, out=Path(args.out), attachments=attachments)
    carried = f", with {', '.join(attachments)}" if attachments else ""
    print(
        escape_controls(
            f"encrypted to {args.out}: key id {header.key_id}, {header.chunk_count} chunk(s), "
            f"weights sha256 {header.plaintext_sha256}{carried}"
        )
    )
    return 0


def rekey(args: argparse.Namespace) -> int:
    from m2fp.protection.convert import rekey_file

    old_key = read_key_file(Path(args.key_file))
    new_key = read_key_file(Path(args.new_key_file))
    rekey_file(Path(args.file), old_key=old_key, new_key=new_key, out=Path(args.out))
    print(
        escape_controls(
            f"re-encrypted to {args.out}: key id {key_id(old_key)} -> {key_id(new_key)}"
        )
    )
    return 0
