"""One real local Ray for every batch test (2 CPUs, no dashboard, a 200 MB object store),
started in this process and stopped after; the photos the jobs parse; the runs of the
``m2fp`` command the tests compare."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import GOLDEN, golden_sizes

ray = pytest.importorskip("ray", reason="the batch job needs m2fp[ray]")

PHOTOS = 24
COMMAND_DEADLINE = 180


@pytest.fixture(scope="session")
def ray_address() -> str:
    """The address of a local Ray cluster this process is the first driver of."""
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 10**6,
        logging_level="WARNING",
        log_to_driver=False,
    )
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


def write_photos(folder: Path, count: int = PHOTOS) -> list[Path]:
    """``count`` photos (the golden photo turned, cropped and mirrored: people at several
    sizes and places), half JPEG at the top, half PNG in a subfolder."""
    base = Image.open(GOLDEN / "image.png").convert("RGB")
    written = []
    for index in range(count):
        picture = base.rotate(index * 7, expand=index % 3 == 0)
        if index % 2:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        picture = picture.crop((index % 5, 0, picture.width, picture.height - index % 4))
        if index < count // 2:
            path = folder / f"top_{index:02d}.jpg"
        else:
            path = folder / "sub" / f"deep_{index:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
        written.append(path)
    return written


def size_flags() -> list[str]:
    """The golden model's input sizes, as flags of parse and batch."""
    min_size, max_size = golden_sizes()
    return ["--min-size", str(min_size), "--max-size", str(max_size)]


def run_m2fp(*args: str, timeout: float = COMMAND_DEADLINE) -> subprocess.CompletedProcess:
    """``m2fp ARGS`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "m2fp", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def summary_of(process: subprocess.CompletedProcess) -> dict:
    """The summary JSON line ``m2fp batch`` ends its stdout with."""
    return json.loads(process.stdout.strip().splitlines()[-1])


def ray_daemons() -> set[int]:
    """PIDs of this machine's Ray daemons (a raylet and a GCS server per local cluster)."""
    pids = set()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in {"raylet", "gcs_server"}:
                pids.add(int(comm.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return pids


class DaemonWatch:
    """Ray daemons that appear while a block runs, looked for every 50 ms from a thread
    (a local Ray takes seconds to start: it cannot come and go unseen)."""

    def __init__(self) -> None:
        self.before = ray_daemons()
        self.started: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self.started |= ray_daemons() - self.before

    def __enter__(self) -> DaemonWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.started |= ray_daemons() - self.before


def wait_for_exit(pids: set[int], deadline: float = 30) -> set[int]:
    """Those of ``pids`` still running after ``deadline`` seconds (``ray.shutdown()``
    signals its daemons; they exit soon after)."""
    end = time.monotonic() + deadline
    while ray_daemons() & pids and time.monotonic() < end:
        time.sleep(0.2)
    return ray_daemons() & pids
