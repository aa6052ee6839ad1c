"""Resume: the driver of ``m2fp batch`` SIGKILLed halfway, the same command run again parses
only what has no complete output, rewrites nothing, and leaves no corrupt or temporary file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from tests.batch.conftest import PHOTOS, ray, run_m2fp, size_flags, summary_of, write_photos

DEADLINE = 120


def _poll(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {DEADLINE} s")
        time.sleep(0.02)


def test_a_killed_job_resumes_with_only_the_remainder(tmp_path, ray_address, visible_model_dir):
    write_photos(tmp_path / "in")
    out = tmp_path / "out"
    command = ["batch", str(tmp_path / "in"), "--out", str(out), "--ray-address", ray_address,
               "--model", str(visible_model_dir), *size_flags(), "--skip-existing"]  # fmt: skip
    driver = subprocess.Popen(
        [sys.executable, "-m", "m2fp", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _poll(lambda: any(out.rglob("*.json")), "first output")
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait(timeout=DEADLINE)
    # the dead driver's actor is gone once the cluster has its CPUs back: nothing writes now
    _poll(lambda: ray.available_resources().get("CPU") == 2, "actor released")
    done = {path: path.stat().st_mtime_ns for path in out.rglob("*.json")}
    assert 0 < len(done) < PHOTOS, "the driver was not killed halfway"

    again = run_m2fp(*command)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = summary_of(again)
    assert (summary["skipped"], summary["parsed"]) == (len(done), PHOTOS - len(done))
    assert {path: path.stat().st_mtime_ns for path in done} == done  # none parsed twice
    outputs = sorted(out.rglob("*.json"))
    assert len(outputs) == PHOTOS
    for summary_file in outputs:
        json.loads(summary_file.read_text())
        stem = summary_file.with_suffix("")
        for suffix in ("_vis.png", "_labels.png"):
            Image.open(f"{stem}{suffix}").verify()
    assert [p for p in out.rglob(".*") if p.is_file()] == []
