"""An actor pool that cannot start is one line from ``m2fp batch`` and exit code 1, never
Ray's traceback, and the job's local Ray is stopped: the pool not started in time, and an
actor whose model does not load (an ``.m2fp`` whose first chunk authenticates, so the driver's
config check passes, but whose later chunk was modified)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from m2fp.batch.job import BatchJob, actor_failure
from tests.batch.conftest import DaemonWatch, run_m2fp, size_flags, wait_for_exit, write_photos


def run_failing(root: Path, *flags: str) -> tuple[list[str], str]:
    """``m2fp batch`` on 2 photos that must fail: its ``m2fp:`` lines and whole stderr, once
    the job's own Ray daemons are gone."""
    write_photos(root / "in", count=2)
    with DaemonWatch() as watch:
        done = run_m2fp("batch", str(root / "in"), "--out", str(root / "out"), *size_flags(),
                        "--threads", "2", *flags)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert watch.started, "no Ray of its own was seen"
    assert wait_for_exit(watch.started) == set()
    return [line for line in done.stderr.splitlines() if line.startswith("m2fp:")], done.stderr


def test_a_pool_not_started_in_time_is_one_line(tmp_path, visible_model_dir):
    lines, _ = run_failing(
        tmp_path, "--model", str(visible_model_dir), "--actor-start-timeout", "0.05"
    )
    assert len(lines) == 1
    assert "the actor pool did not start within 0.05 s" in lines[0]
    assert "--actor-start-timeout" in lines[0]


def test_an_actor_whose_model_does_not_load_is_one_line(tmp_path, encrypted_model, key_file):
    model = tmp_path / "tiny.m2fp"
    shutil.copyfile(encrypted_model, model)
    data = bytearray(model.read_bytes())
    data[-40] ^= 1  # inside the last chunk: the first authenticates, the driver goes on
    model.write_bytes(data)
    lines, _ = run_failing(tmp_path, "--model", str(model), "--key-file", str(key_file))
    assert len(lines) == 1
    assert "a parsing actor failed: the .m2fp file was modified or corrupted" in lines[0]


@pytest.mark.parametrize("seconds", [0, -1, float("nan")])
def test_the_start_timeout_is_positive(seconds):
    with pytest.raises(ValueError, match="actor_start_timeout"):
        BatchJob(source="in", actor=None, actor_start_timeout=seconds)  # type: ignore[arg-type]


def test_a_failure_is_its_last_line_without_our_class_name_or_the_traceback():
    text = "The actor died because of an error raised in its creation task\nTraceback (…)\n"
    ours = RuntimeError(text + "m2fp.errors.IntegrityError: the file was modified")
    assert actor_failure(ours) == "a parsing actor failed: the file was modified"
    theirs = RuntimeError(text + "MemoryError: out of memory")
    assert actor_failure(theirs) == "a parsing actor failed: MemoryError: out of memory"
