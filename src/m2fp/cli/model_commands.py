"""``m2fp model info|verify|encrypt|rekey``: commands that open or write weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from m2fp.cli.errors import EXIT_USAGE, CLIError
from m2fp.cli.model_lookup import model_path, required_key
from m2fp.loader import open_model
from m2fp.protection.keys import key_id, read_key_file


def _print_report(path: Path, key: bytes | None) -> None:
    """Open (and so check) the model, then print what it is."""
    with open_model(path, key=key) as weights:
        print(json.dumps(weights.describe(), indent=2))


def info(args: argparse.Namespace) -> int:
    """Config, parameters, classes and sha256, after checking the weights fit the network."""
    path = model_path(args.path)
    key = required_key(args.key_file) if path.is_file() else None
    _print_report(path, key)
    return 0


def verify(args: argparse.Namespace) -> int:
    """An ``.m2fp`` file's key, every chunk's tag and the hash, then its report."""
    path = Path(args.file)
    if not path.is_file():
        raise CLIError(f"{path.name} is not a file", EXIT_USAGE)
    _print_report(path, required_key(args.key_file))
    return 0


def encrypt(args: argparse.Namespace) -> int:
    # the cipher needs the crypto extra: imported only when encrypting
    from m2fp.protection.convert import encrypt_model_dir

    key = required_key(args.key_file)
    header = encrypt_model_dir(Path(args.dir), key=key, out=Path(args.out))
    print(
        f"encrypted to {args.out}: key id {header.key_id}, {header.chunk_count} chunk(s), "
        f"weights sha256 {header.plaintext_sha256}"
    )
    return 0


def rekey(args: argparse.Namespace) -> int:
    from m2fp.protection.convert import rekey_file

    old_key = read_key_file(Path(args.key_file))
    new_key = read_key_file(Path(args.new_key_file))
    rekey_file(Path(args.file), old_key=old_key, new_key=new_key, out=Path(args.out))
    print(f"re-encrypted to {args.out}: key id {key_id(old_key)} -> {key_id(new_key)}")
    return 0
