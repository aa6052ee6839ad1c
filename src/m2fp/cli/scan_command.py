"""``m2fp scan URL``: one line per check (or ``--json``), exit code 1 on any failure, and a
Slack-style summary of the failures to ``--alert-webhook``.

The webhook must be https (http only to this machine): its URL carries a token, and the
summary names the weaknesses found. Neither it nor the API key is ever printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from m2fp.cli.errors import EXIT_FAILED, EXIT_USAGE, CLIError
from m2fp.cli.terminal_text import escape_controls
from m2fp.scan.runner import default_checks, run_scan
from m2fp.scan.target import target_for
from m2fp.server.ops.alerts import AlertWebhook
from m2fp.server.secret_file import SecretFileError, read_secret_file
from m2fp.url_policy import check_https_url

WEBHOOK_ENV = "M2FP_ALERT_WEBHOOK"
# the webhook as a mounted file (the scan CronJob's); an empty file means no webhook
WEBHOOK_FILE_ENV = "M2FP_ALERT_WEBHOOK_FILE"
API_KEY_ENV = "M2FP_SCAN_API_KEY"


def _checks(args: argparse.Namespace) -> list[str]:
    names = [n.strip() for n in args.checks.split(",") if n.strip()] if args.checks else None
    chosen = names or default_checks()
    if args.check_rate_limit and "rate_limit" not in chosen:
        chosen.append("rate_limit")
    return chosen


def _api_key(path: str | None) -> str | None:
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise CLIError(f"cannot read the API key file: {exc.strerror}", EXIT_USAGE) from None
    return os.environ.get(API_KEY_ENV) or None


def _webhook_from_environment() -> str | None:
    url, path = os.environ.get(WEBHOOK_ENV), os.environ.get(WEBHOOK_FILE_ENV)
    if not path:
        return url or None
    if url:
        raise CLIError(f"set only one of {WEBHOOK_ENV} and {WEBHOOK_FILE_ENV}", EXIT_USAGE)
    try:
        return read_secret_file(Path(path)) or None
    except SecretFileError as exc:
        raise CLIError(f"invalid {WEBHOOK_FILE_ENV}: {exc}", EXIT_USAGE) from None


def _webhook(url: str | None) -> AlertWebhook | None:
    url = url or _webhook_from_environment()
    if url is None:
        return None
    try:
        return AlertWebhook(url=check_https_url(url), min_interval=0)
    except ValueError as exc:
        raise CLIError(f"invalid --alert-webhook: {exc}", EXIT_USAGE) from None


def scan(args: argparse.Namespace) -> int:
    webhook = _webhook(args.alert_webhook)
    try:
        target = target_for(
            args.url,
            http_url=args.http_url,
            ca_file=args.ca_file,
            api_key=_api_key(args.api_key_file),
            timeout=float(args.timeout),
        )
    except ValueError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    try:
        report = run_scan(target, _checks(args))
    except ValueError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    print(report.to_json() if args.json else "\n".join(map(escape_controls, report.lines())))
    if report.passed:
        return 0
    if webhook is not None and not asyncio.run(webhook.send(report.alert_text())):
        print("m2fp: the alert webhook did not accept the summary", flush=True)
    return EXIT_FAILED
