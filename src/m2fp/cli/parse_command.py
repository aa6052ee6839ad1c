"""``m2fp parse``: images in (files, directories, a watched directory or raw frames on stdin);
per image an overlay, a label map, the masks asked for and a JSON summary out, plus one JSON
line on stdout. A bad image is reported on one line and skipped; the exit code is 1 if any
failed."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from m2fp.batched_parsing import parse_in_batches
from m2fp.cli.errors import EXIT_FAILED, EXIT_USAGE, CLIError
from m2fp.cli.model_lookup import key_for, model_path
from m2fp.cli.output_options import check_request_fits, output_request
from m2fp.cli.parse_inputs import IncompleteFrameError, Item, collect, frames, watch
from m2fp.cli.progress import Ticking, progress_bar, report_line
from m2fp.cli.terminal_text import escape_controls
from m2fp.compute.memory import release_free_memory
from m2fp.compute.parser_options import ParserOptions
from m2fp.errors import M2FPError
from m2fp.imaging.input_file import InputFileError, read_input_file
from m2fp.predictor import HumanParser
from m2fp.results.output_files import OutputPlan, commit
from m2fp.results.parsing_result import ParsingResult


def parse(args: argparse.Namespace) -> int:
    """Parse every image; a bad one is reported on one line and the others still run."""
    out_dir = Path(args.out)
    plan = OutputPlan(request=output_request(args), alpha=args.alpha)
    # inputs are looked at before the model loads: a usage error should not wait for it
    folders = [Path(p) for p in [*args.images, args.watch] if p is not None and Path(p).is_dir()]
    if any(folder.resolve() == out_dir.resolve() for folder in folders):
        raise CLIError(
            "--out must not be a folder images are read from (use a subfolder)", EXIT_USAGE
        )
    items = collect(
        args.images,
        recursive=args.recursive,
        out_dir=out_dir,
        follow_symlinks=args.follow_symlinks,
    )
    if args.watch is not None and not Path(args.watch).is_dir():
        raise CLIError(f"--watch {args.watch}: not a directory", EXIT_USAGE)
    path = model_path(args.model)
    parser = HumanParser.from_pretrained(
        path,
        options=ParserOptions.from_fields(args),
        key=key_for(path, args.key_file),
    )
    check_request_fits(plan.request, parser.class_names)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = Run(
        parser,
        plan,
        out_dir,
        skip_existing=args.skip_existing,
        reading=Reading(max_bytes=args.max_file_size, follow_symlinks=args.follow_symlinks),
    )
    try:
        if args.watch is not None:
            return run.watching(Path(args.watch), recursive=args.recursive)
        if args.frames is not None:
            return run.frames(args.frames)
        return run.all(items)
    finally:
        parser.release_device_memory()


@dataclass(frozen=True)
class Reading:
    """How input files are read (``--max-file-size``, ``--follow-symlinks``)."""

    max_bytes: int
    follow_symlinks: bool


class Run:
    """Parses items one by one, writes their outputs and reports each on stdout (one JSON
    line: ``image``, ``status`` ok/skipped/failed, ``outputs``, ``persons``, ``seconds`` or
    ``error``) and failures on stderr."""

    def __init__(
        self,
        parser: HumanParser,
        plan: OutputPlan,
        out_dir: Path,
        *,
        skip_existing: bool,
        reading: Reading,
    ) -> None:
        self.parser = parser
        self.plan = plan
        self.out_dir = out_dir
        self.skip_existing = skip_existing
        self.reading = reading
        self.failures = 0

    def all(self, items: list[Item]) -> int:
        """A known list: a progress bar with its ETA."""
        progress = progress_bar(total=len(items), unit="image")
        self._each(items, progress)
        return EXIT_FAILED if self.failures else 0

    def frames(self, size: tuple[int, int]) -> int:
        """Raw frames from stdin until it ends."""
        progress = progress_bar(total=None, unit="frame")
        try:
            self._each(frames(sys.stdin.buffer, size), progress)
        except IncompleteFrameError as exc:
            progress.write(f"m2fp: {escape_controls(str(exc))}", file=sys.stderr)
            self.failures += 1
        return EXIT_FAILED if self.failures else 0

    def watching(self, directory: Path, *, recursive: bool) -> int:
        """New images in ``directory`` until Ctrl-C, which ends the run cleanly."""
        progress = progress_bar(total=None, unit="image")
        try:
            # one at a time: a new file is parsed at once, not when more arrive
            self._each(
                watch(
                    directory,
                    recursive=recursive,
                    out_dir=self.out_dir,
                    follow_symlinks=self.reading.follow_symlinks,
                ),
                progress,
                batch_size=1,
            )
        except KeyboardInterrupt:
            progress.close()
            print(f"m2fp: stopped watching {escape_controls(str(directory))}", file=sys.stderr)
        return EXIT_FAILED if self.failures else 0

    def _each(
        self, items: Iterable[Item], progress: tqdm, *, batch_size: int | None = None
    ) -> None:
        """Parse ``items`` in batches (``parser.batch_size`` unless given), each reported as
        it is written; items whose outputs exist are skipped (``--skip-existing``)."""
        try:
            with Ticking(progress):
                todo = (item for item in items if not self._skipped(item, progress))
                started = time.perf_counter()
                batches = parse_in_batches(self.parser, todo, self._picture, batch_size=batch_size)
                for item, outcome in batches:
                    self._one(item, outcome, progress, started)
                    progress.update()
                    started = time.perf_counter()
        finally:
            progress.close()

    def _skipped(self, item: Item, progress: tqdm) -> bool:
        if not (self.skip_existing and self.plan.done(self.out_dir, item.stem)):
            return False
        _report({"image": item.name, "status": "skipped"})
        progress.update()
        return True

    def _one(
        self, item: Item, outcome: ParsingResult | M2FPError, progress: tqdm, started: float
    ) -> None:
        """Write and report one item; ``started``: when its batch (or the previous item's
        report) began, so ``seconds`` add up to the run."""
        try:
            if isinstance(outcome, M2FPError):
                raise outcome
            result = outcome
            files = self.plan.render(result, item.name, item.stem)
        except M2FPError as exc:
            self.failures += 1
            # an input file's refusal names the file itself
            line = str(exc) if isinstance(exc, InputFileError) else f"{item.name}: {exc}"
            progress.write(f"m2fp: {escape_controls(line)}", file=sys.stderr)
            _report({"image": item.name, "status": "failed", "error": str(exc)})
            return
        persons = len(result.persons)
        del result, outcome
        commit(self.out_dir, files)
        _report(
            {
                "image": item.name,
                "status": "ok",
                "outputs": [str(name) for name in files],
                "persons": persons,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
        # this process owns its heap: hand the activations and masks back between images
        release_free_memory()

    def _picture(self, item: Item) -> Image.Image:
        """The item's upright RGB image (a frame is one already); a file is read within
        ``--max-file-size`` and the symlink rule (``m2fp.imaging.input_file``)."""
        if item.refused is not None:
            raise item.refused
        if item.frame is not None:
            assert item.size is not None  # nosec B101 # narrows the type; frames() sets size with frame
            return Image.frombytes("RGB", item.size, item.frame)
        assert item.path is not None  # nosec B101 # narrows the type; collect() sets path without frame
        data = read_input_file(
            item.path,
            max_bytes=self.reading.max_bytes,
            root=item.root,
            follow_symlinks=self.reading.follow_symlinks,
        )
        return self.parser.load_image(data)


def _report(line: dict[str, Any]) -> None:
    report_line(json.dumps(line))
