"""What a batch job has already written under ``--out``, and how it writes what is not
``m2fp parse``'s: Parquet parts and the failure records, each to a hidden temporary name and
renamed, so that an interrupted job (Ctrl-C, a SIGKILL of the driver, an actor's node lost)
leaves nothing half-written that a re-run would take as done.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Literal

from m2fp.batch.errors import BatchError
from m2fp.batch.parquet_rows import PART_GLOB
from m2fp.results.output_files import OutputPlan

Form = Literal["files", "parquet"]
FAILURES_FILE = "_failures.jsonl"


def write_atomically(target: Path, data: bytes) -> None:
    """``data`` into ``target``: written under a hidden name beside it, then renamed."""
    temporary = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
    try:
        with open(temporary, "xb") as out:
            out.write(data)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def remove_stale_temporaries(out_dir: Path) -> int:
    """Remove the hidden ``.*.part`` files an interrupted job left under ``out_dir`` (a
    writer killed between write and rename); returns how many. Only for a resumed job: two
    jobs must not write into one ``--out`` at once."""
    stale = [path for path in out_dir.rglob(".*.part") if path.is_file()]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return len(stale)


def new_part_path(out_dir: Path) -> Path:
    """A fresh ``part-<random>.parquet`` name under ``out_dir``."""
    return out_dir / f"part-{secrets.token_hex(8)}.parquet"


def done_stems(out_dir: Path, form: Form, plan: OutputPlan, stems: Iterable[str]) -> set[str]:
    """The ``stems`` with a complete output under ``out_dir``: every file of the ``files``
    form (``OutputPlan.done``), or a row in a Parquet part."""
    if form == "files":
        return {stem for stem in stems if plan.done(out_dir, PurePosixPath(stem))}
    import pyarrow.parquet as pq

    written: set[str] = set()
    for part in sorted(out_dir.glob(PART_GLOB)):
        written.update(pq.read_table(part, columns=["stem"]).column("stem").to_pylist())
    return written & set(stems)


def check_form(out_dir: Path, form: Form, *, skip_existing: bool) -> None:
    """A Parquet job writes only new parts: one without ``--skip-existing`` into a folder
    that has some would add rows a second time, so it is refused.

    Raises:
        BatchError: ``out_dir`` holds Parquet parts and ``skip_existing`` is off.
    """
    if form == "parquet" and not skip_existing and any(out_dir.glob(PART_GLOB)):
        raise BatchError(
            f"{out_dir} already holds Parquet parts: pass --skip-existing to resume, "
            "or choose an empty --out"
        )


def write_failures(out_dir: Path, records: list[dict[str, str]]) -> None:
    """This run's failure records, one JSON object a line (``path``, ``code``,
    ``message``), replacing the previous run's (those inputs were tried again)."""
    lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
    write_atomically(out_dir / FAILURES_FILE, lines.encode("utf-8"))
