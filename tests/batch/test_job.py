"""``m2fp batch`` on a real local Ray against sequential ``m2fp parse``: the same files,
byte for byte, and each hostile input a failure record with its reason, the others parsed."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from m2fp.batch.job import BatchJob, batch_size
from tests.batch.conftest import (
    PHOTOS,
    DaemonWatch,
    run_m2fp,
    size_flags,
    summary_of,
    wait_for_exit,
    write_photos,
)

MAX_FILE = 200 << 10
HOSTILE = {
    "truncated.jpg": "corrupt",
    "notes.png": "unsupported_format",
    "sub/huge.png": "too_large",
    "sub/heavy.jpg": "file_too_large",
}


def write_hostile(folder: Path, photo: Path) -> None:
    """A truncated JPEG, a text file named .png, a PNG declaring 56 MP (over the decoder's
    50 MP bound, a few KB on disk) and a file over --max-file-size."""
    data = photo.read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "notes.png").write_text("not a photo\n")
    Image.new("1", (8000, 7000)).save(folder / "sub" / "huge.png")
    (folder / "sub" / "heavy.jpg").write_bytes(data[:4] + bytes(MAX_FILE))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, visible_model_dir):
    """The same folder through ``m2fp batch`` (one actor, 2 threads, no ``--ray-address``:
    a local Ray of its own, its daemons watched) and ``m2fp parse``."""
    root = tmp_path_factory.mktemp("batch_job")
    photos = write_photos(root / "in")
    write_hostile(root / "in", photos[0])
    flags = [
        "--model", str(visible_model_dir), *size_flags(), "--threads", "2",
        "--masks", "upper_clothes", "--agnostic", "upper_body", "--max-file-size", str(MAX_FILE),
    ]  # fmt: skip
    # side by side: the two commands' start-ups (imports, model load, Ray's start) overlap
    with DaemonWatch() as watch, ThreadPoolExecutor(max_workers=2) as pool:
        batch = pool.submit(run_m2fp, "batch", str(root / "in"), "--out", str(root / "batch"),
                            *flags)  # fmt: skip
        parse = pool.submit(run_m2fp, "parse", str(root / "in"), "--recursive", "--out",
                            str(root / "parse"), *flags)  # fmt: skip
        batch_done, parse_done = batch.result(), parse.result()
    return root, batch_done, parse_done, watch.started


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "_failures.jsonl"
    }


def test_the_files_form_is_byte_identical_to_m2fp_parse(runs):
    root, batch, parse, _ = runs
    assert batch.returncode == 1, batch.stderr[-2000:]
    assert parse.returncode == 1, parse.stderr[-2000:]
    ours, theirs = _files(root / "batch"), _files(root / "parse")
    assert sorted(ours) == sorted(theirs)
    # every photo: overlay, label map, one mask, one agnostic mask and its JSON
    assert len(ours) == PHOTOS * 5
    assert [name for name in ours if ours[name] != theirs[name]] == []
    labels = np.asarray(Image.open(root / "batch" / "sub" / f"deep_{PHOTOS - 1:02d}_labels.png"))
    assert len(np.unique(labels)) > 1  # the photos are parsed into parts, not all background


def test_hostile_inputs_are_failure_records_and_the_rest_is_parsed(runs):
    root, batch, _, _ = runs
    records = [
        json.loads(line) for line in (root / "batch" / "_failures.jsonl").read_text().splitlines()
    ]
    found = {str(Path(r["path"]).relative_to(root / "in")): r["code"] for r in records}
    assert found == HOSTILE
    assert all(r["message"] for r in records)
    summary = summary_of(batch)
    assert summary["images"] == PHOTOS + len(HOSTILE)
    assert (summary["parsed"], summary["failed"], summary["skipped"]) == (PHOTOS, 4, 0)
    assert summary["images_per_second"] > 0
    ((actor, memory),) = summary["actor_peak_rss_mib"].items()
    assert memory > 50
    # the fixed costs apart from the steady rate
    assert summary["actor_threads"] == {actor: 2} and summary["actor_load_seconds"][actor] > 0
    assert summary["steady_images_per_second"] > summary["images_per_second"]
    assert f"{PHOTOS + len(HOSTILE)} images: {PHOTOS} parsed, 0 skipped, 4 failed" in batch.stderr


def test_without_an_address_a_local_ray_is_started_and_stopped(runs):
    """``m2fp batch`` without ``--ray-address`` started a Ray of its own for the job (its
    daemons appeared while it ran) and leaves none of them running after it."""
    _, batch, _, started = runs
    assert started, "no Ray daemon of its own was seen while the job ran"
    assert summary_of(batch)["ray_start_seconds"] > 0
    assert wait_for_exit(started) == set()


@pytest.mark.parametrize(
    ("inputs", "actors", "expected"), [(24, 1, 8), (8, 2, 4), (6, 2, 3), (3, 4, 1), (100, 2, 8)]
)
def test_a_short_job_gives_every_actor_work(inputs, actors, expected):
    """Calls of at most an equal share per actor: 8 inputs in one call of 8 would leave the
    second of two actors idle (the 2x1 benchmark ran at one actor's rate)."""
    job = BatchJob(source="in", actor=None, actors=actors)  # type: ignore[arg-type]
    assert batch_size(job, inputs) == expected
