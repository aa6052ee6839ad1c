"""The stateful Ray Data worker of a batch job: the callable class ``map_batches`` runs in a
pool of actors. Each actor loads the model once (an encrypted ``.m2fp`` with the key read
here, from the key file path the job names: the key itself never enters the object store,
the runtime environment or a log), then for each batch of inputs reads and decodes every
image as ``m2fp parse`` does (``read_source``, ``HumanParser.load_image``: the one safe
decoder, same size and pixel limits), parses them (``parse_in_batches``) and writes each
result atomically itself. What goes back to the driver is one small status row per input,
with the actor's fixed cost (model load), its threads and the input's share of the call's
time, so that the summary can tell start-up from the steady rate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from m2fp.batch.outputs import Form, new_part_path, write_atomically
from m2fp.batch.parquet_rows import result_row, rows_table
from m2fp.batch.sources import Source, read_source
from m2fp.batched_parsing import parse_in_batches
from m2fp.compute.memory import release_free_memory
from m2fp.compute.parser_options import ParserOptions
from m2fp.errors import M2FPError
from m2fp.results.output_files import OutputPlan, commit


@dataclass(frozen=True)
class ActorConfig:
    """What every actor is built with (pickled to the actors: paths, never key bytes).

    Attributes:
        model: model directory or ``.m2fp`` file, as each actor's node sees it.
        key_file: the key file of an encrypted model, read by each actor; None otherwise.
        options: parser options (``threads``: this actor's share of its node's cores).
        plan: the outputs of the ``files`` form.
        out_dir: where results are written.
        form: ``files`` or ``parquet``.
        max_bytes: the largest input file read.
        follow_symlinks: take files whose symlinks lead out of the input folder.
    """

    model: str
    key_file: str | None
    options: ParserOptions
    plan: OutputPlan
    out_dir: str
    form: Form
    max_bytes: int
    follow_symlinks: bool


def failure_code(exc: M2FPError) -> str:
    """A short reason code: an image error's ``kind``, else the exception's class in
    snake case (``PersonNotFoundError`` -> ``person_not_found``)."""
    kind = getattr(exc, "kind", None)
    if isinstance(kind, str):
        return kind
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class ParseActor:
    """Parses batches of ``Source`` rows (columns ``name``, ``stem``, ``path``, ``root``)."""

    def __init__(self, config: ActorConfig) -> None:
        import torch

        from m2fp.predictor import HumanParser
        from m2fp.protection.keys import read_key_file

        started = time.perf_counter()
        self.config = config
        model = Path(config.model)
        key = read_key_file(Path(config.key_file)) if config.key_file and model.is_file() else None
        self.parser = HumanParser.from_pretrained(model, options=config.options, key=key)
        del key
        self.out_dir = Path(config.out_dir)
        self.options = {
            **{k: str(v) for k, v in dataclasses.asdict(config.options).items()},
            "label_set": config.plan.request.label_set,
        }
        self.actor = f"{os.uname().nodename}:{os.getpid()}"
        # the fixed cost an actor pays once (the model load), apart from its per-image work
        self.load_seconds = time.perf_counter() - started
        self.threads = torch.get_num_threads()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        started = time.perf_counter()
        sources = [
            Source(name=str(n), stem=str(s), path=str(p), root=str(r))
            for n, s, p, r in zip(
                batch["name"], batch["stem"], batch["path"], batch["root"], strict=True
            )
        ]
        read: dict[str, bytes] = {}

        def load(source: Source) -> Image.Image:
            data = read_source(
                source,
                max_bytes=self.config.max_bytes,
                follow_symlinks=self.config.follow_symlinks,
            )
            read[source.stem] = data
            return self.parser.load_image(data)

        statuses: dict[str, list[Any]] = {"path": [], "status": [], "code": [], "message": []}
        rows: list[dict[str, Any]] = []
        for source, outcome in parse_in_batches(self.parser, sources, load):
            code = message = ""
            try:
                if isinstance(outcome, M2FPError):
                    raise outcome
                self._write(source, outcome, read.pop(source.stem), rows)
            except M2FPError as exc:
                code, message = failure_code(exc), str(exc)
            statuses["path"].append(source.path)
            statuses["status"].append("failed" if code else "ok")
            statuses["code"].append(code)
            statuses["message"].append(message)
        if rows:
            sink = pa.BufferOutputStream()
            pq.write_table(rows_table(rows), sink)
            write_atomically(new_part_path(self.out_dir), sink.getvalue().to_pybytes())
        # the actor owns its heap: hand the activations and masks back between batches
        release_free_memory()
        count = len(sources)
        statuses["actor"] = [self.actor] * count
        statuses["peak_rss_bytes"] = [peak_rss_bytes()] * count
        statuses["load_seconds"] = [self.load_seconds] * count
        statuses["threads"] = [self.threads] * count
        # each input's share of this call: read, decode, parse and write, the steady work
        statuses["seconds"] = [(time.perf_counter() - started) / count] * count
        return statuses

    def _write(self, source: Source, result: Any, data: bytes, rows: list[dict[str, Any]]) -> None:
        """The ``files`` form is committed at once; a Parquet row joins the batch's part."""
        plan = self.config.plan
        if self.config.form == "files":
            commit(self.out_dir, plan.render(result, source.name, PurePosixPath(source.stem)))
            return
        rows.append(
            result_row(
                result,
                source=dataclasses.asdict(source),
                data=data,
                digest=hashlib.sha256(data).hexdigest(),
                plan=plan,
                options=self.options,
                model_sha256=self.parser.weights_sha256,
            )
        )
