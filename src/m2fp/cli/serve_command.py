"""``m2fp serve``: settings checked, model loaded, then uvicorn; a bad setting or model is
one line and exit code 2 before anything listens."""

from __future__ import annotations

import argparse
import sys

from m2fp.cli.errors import EXIT_USAGE, CLIError
from m2fp.cli.model_lookup import model_path
from m2fp.cli.serve_banner import banner_line, wants_banner
from m2fp.compute.memory import bound_heap_growth
from m2fp.errors import M2FPError
from m2fp.server.app import create_app, load_parser
from m2fp.server.serving import connection_budget, serve_app
from m2fp.server.settings import Settings, SettingsError, load_settings


def serve(args: argparse.Namespace) -> int:
    bound_heap_growth()  # before the model and the threads allocate anything
    try:
        settings = load_settings(
            model=str(model_path(args.model)),
            model_key_file=args.key_file,
            device=args.device,
            engine=args.engine,
            precision=args.precision,
            threads=args.threads,
        )
    except SettingsError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    try:
        connection_budget(settings.max_connections)  # before the model: fail fast
    except ValueError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    try:
        parser = load_parser(settings)
    except M2FPError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    try:
        serve_app(
            create_app(settings, parser=parser),
            settings,
            host=args.host,
            port=args.port,
            on_listening=_banner(args.log_format, settings),
        )
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", 1) from None
    return 0


def _banner(log_format: str, settings: Settings):
    """The callback printing the human line on a terminal's stderr, or None."""
    if not wants_banner(log_format, sys.stderr):
        return None

    def show(url: str) -> None:
        print(banner_line(url, settings), file=sys.stderr, flush=True)

    return show
