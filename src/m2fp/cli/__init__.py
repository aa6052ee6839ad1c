"""The ``m2fp`` command.

Arguments are parsed with the standard library alone (``arguments``); the module of the
command that runs is imported only then, so ``m2fp --help`` and ``m2fp model keygen`` never
load torch. Every failure the user can cause ends in one line on stderr and a non-zero exit
code: 2 for usage errors (a device, engine or precision that cannot run here too) and missing
models, 1 for everything else, 130 on Ctrl-C.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from m2fp.cli.arguments import build_parser
from m2fp.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CLIError
from m2fp.cli.terminal_text import escape_controls
from m2fp.compute.options import ComputeChoiceError
from m2fp.errors import DeviceUnavailableError, M2FPError, ModelNotFoundError, missing_torch


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code."""
    args = build_parser().parse_args(argv)
    module_name, _, function = args.handler.partition(":")
    try:
        handler = getattr(importlib.import_module(f"m2fp.cli.{module_name}"), function)
        return handler(args)
    except CLIError as exc:
        print(f"m2fp: {escape_controls(str(exc))}", file=sys.stderr)
        return exc.code
    except (ModelNotFoundError, ComputeChoiceError, DeviceUnavailableError) as exc:
        print(f"m2fp: {escape_controls(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except M2FPError as exc:
        print(f"m2fp: {escape_controls(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except ModuleNotFoundError as exc:
        # the slim runtime: a command that needs torch says which extra to install
        missing = missing_torch(exc)
        if missing is None:
            raise
        print(f"m2fp: {missing}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("m2fp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def main() -> None:
    try:
        code = run()
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (``m2fp model info | head``): not an error of ours, no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_FAILED
    sys.exit(code)
