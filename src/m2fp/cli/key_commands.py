"""``m2fp model keygen``: a new model key (standard library only, so it starts instantly)."""

from __future__ import annotations

import argparse
from pathlib import Path

from m2fp.cli.terminal_text import escape_controls
from m2fp.protection.keys import encode_key, generate_key, key_id, write_key_file


def keygen(args: argparse.Namespace) -> int:
    key = generate_key()
    if args.stdout:
        print(encode_key(key))
        return 0
    write_key_file(Path(args.out), key)
    print(f"key {key_id(key)} written to {escape_controls(args.out)} (mode 0600)")
    return 0
