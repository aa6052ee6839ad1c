"""``m2fp batch``: a dataset parsed on Ray Data (``m2fp.batch``), resumable with
``--skip-existing``. Prints Ray Data's progress, then the closing summary on one line on
stderr and as one JSON line on stdout; the exit code is 1 if any input failed (each is a
record in ``DST/_failures.jsonl``), 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from m2fp.cli.errors import EXIT_FAILED, EXIT_USAGE, CLIError
from m2fp.cli.model_lookup import model_path
from m2fp.cli.output_options import check_request_fits, output_request
from m2fp.compute.parser_options import ParserOptions
from m2fp.errors import MissingExtraError
from m2fp.protection.keys import KEY_ENV, KEY_FILE_ENV, MISSING_KEY, read_key_file
from m2fp.results.output_files import OutputPlan

RAY_MISSING = "m2fp batch needs Ray: pip install 'm2fp[ray]'"


def _key_file(path: Path, given: str | None) -> str | None:
    """The key file each actor reads: ``--key-file``, else ``$M2FP_MODEL_KEY_FILE``; a key
    in ``$M2FP_MODEL_KEY`` is refused (it would have to travel to the actors). Its key is
    read once here too (``_classes``), so that a bad key fails before the cluster is asked
    for anything."""
    if not path.is_file():
        return None
    key_file = given or os.environ.get(KEY_FILE_ENV)
    if not key_file:
        if os.environ.get(KEY_ENV):
            raise CLIError(
                f"m2fp batch reads the key from a file in each actor: pass --key-file or set "
                f"{KEY_FILE_ENV} instead of {KEY_ENV}",
                EXIT_USAGE,
            )
        raise CLIError(MISSING_KEY, EXIT_USAGE)
    return str(Path(key_file).resolve())


def _classes(path: Path, key_file: str | None) -> tuple[str, ...]:
    """The model's classes from its config alone: no network is built and no Ray started
    to learn them. An encrypted model's header is authenticated with its key (read from the
    key file here, in the driver's memory only: it goes into no actor config)."""
    from m2fp.weights.loader import model_config

    key = read_key_file(Path(key_file)) if key_file else None
    return tuple(model_config(path, key=key)["classes"])


def batch(args: argparse.Namespace) -> int:
    """Run the job; a usage problem (no model, no key, outputs the model cannot make, an
    unknown input) exits 2."""
    try:
        from m2fp.batch.actor import ActorConfig
        from m2fp.batch.errors import BatchError
        from m2fp.batch.job import BatchJob, run_batch, summary_json
    except ImportError as exc:
        if exc.name in {"ray", "pyarrow"} or (exc.name or "").startswith(("ray.", "pyarrow.")):
            raise MissingExtraError(RAY_MISSING) from None
        raise
    path = model_path(args.model)
    key_file = _key_file(path, args.key_file)
    request = output_request(args)
    # what the model cannot make is refused as ``m2fp parse`` refuses it, before Ray starts
    # or DST is created: not once per image by every actor
    check_request_fits(request, _classes(path, key_file))
    config = ActorConfig(
        model=str(path.resolve()),
        key_file=key_file,
        options=ParserOptions.from_fields(args),
        plan=OutputPlan(request=request, alpha=args.alpha),
        out_dir=str(Path(args.out).resolve()),
        form=args.form,
        max_bytes=args.max_file_size,
        follow_symlinks=args.follow_symlinks,
    )
    job = BatchJob(
        source=args.src,
        actor=config,
        actors=args.actors,
        gpus_per_actor=args.gpus_per_actor,
        threads=args.threads,
        skip_existing=args.skip_existing,
        ray_address=args.ray_address,
        actor_start_timeout=args.actor_start_timeout,
    )
    try:
        summary = run_batch(job)
    except BatchError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    print(f"m2fp batch: {summary.line()}", file=sys.stderr)
    print(summary_json(summary), flush=True)
    return EXIT_FAILED if summary.failed else 0
