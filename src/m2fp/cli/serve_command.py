"""``m2fp serve``: settings checked, model loaded, then uvicorn; a bad setting or model is
one line and exit code 2 before anything listens."""

from __future__ import annotations

import argparse

import uvicorn

from m2fp.cli.errors import EXIT_USAGE, CLIError
from m2fp.cli.model_lookup import model_path
from m2fp.errors import M2FPError
from m2fp.server.app import create_app, load_parser
from m2fp.server.ops.audit_log import log_config
from m2fp.server.settings import SettingsError, load_settings


def serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(
            model=str(model_path(args.model)),
            model_key_file=args.key_file,
            device=args.device,
            engine=args.engine,
            precision=args.precision,
        )
    except SettingsError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
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
