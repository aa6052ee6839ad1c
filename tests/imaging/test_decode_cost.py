"""What decoding one hostile upload costs: peak extra RSS and CPU time per image kind, each
decoded in a fresh process the way the server decodes an upload (``max_side`` at the server's
default), against the pen test's goal of 2 CPU-seconds and 300 MB (issue 21, items 1, 2, 6).

A benchmark-style test: the memory figures are nearly deterministic (the decoded buffers), the
CPU bound holds with a wide margin (the costliest kind takes ~0.6 s on a loaded Sapphire
Rapids core); both are the goal itself, not a tuned threshold.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from m2fp.scan.hostile_images import flat_png, scan_bomb, short_data_jpeg
from m2fp.server.settings import Settings

MAX_EXTRA_RSS = 300 * 1024 * 1024
MAX_CPU_SECONDS = 2.0
SIDE = 7071  # 7071x7071 is just under the default 50-megapixel limit
MAX_SIDE = Settings.model_fields["max_side"].default

MEASURE = """
import json, sys, time
from m2fp.errors import ImageError
from m2fp.imaging.decoder import decode_image

def status(field):
    with open("/proc/self/status") as lines:
        return next(int(l.split()[1]) * 1024 for l in lines if l.startswith(field))

data = open(sys.argv[1], "rb").read()
max_side = int(sys.argv[2])
before, started = status("VmRSS:"), time.process_time()
try:
    outcome = "x".join(map(str, decode_image(data, max_side=max_side).size))
except ImageError as exc:
    outcome = exc.kind
cpu = time.process_time() - started
# VmHWM, not ru_maxrss, which starts at the forking parent's peak
peak = status("VmHWM:")
print(json.dumps({"extra_rss": peak - before, "cpu": cpu, "outcome": outcome}))
"""


def _encoded(image: Image.Image, fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _rgb(side: int = SIDE) -> Image.Image:
    return Image.linear_gradient("L").resize((side, side)).convert("RGB")


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encoded(_rgb(), "JPEG", subsampling=0, quality=90, exif=exif)


# kind -> (the file, what the decode must end in: the picture's size or the refusal's kind)
KINDS: dict[str, tuple[Callable[[], bytes], str]] = {
    "scan bomb, 1000 scans": (lambda: scan_bomb(7000, 1000), "too_many_scans"),
    "short-data JPEG 7000x7000": (short_data_jpeg, "corrupt"),
    "flat RGB PNG 7071x7071": (flat_png, f"{MAX_SIDE}x{MAX_SIDE}"),
    "16-bit grey PNG": (
        lambda: _encoded(Image.new("I;16", (SIDE, SIDE), 1000), "PNG"),
        f"{MAX_SIDE}x{MAX_SIDE}",
    ),
    "palette PNG": (
        lambda: _encoded(_rgb().quantize(16), "PNG"),
        f"{MAX_SIDE}x{MAX_SIDE}",
    ),
    "RGBA PNG": (
        lambda: _encoded(Image.new("RGBA", (SIDE, SIDE), (1, 2, 3, 200)), "PNG"),
        f"{MAX_SIDE}x{MAX_SIDE}",
    ),
    "progressive 4:2:0 JPEG": (
        lambda: _encoded(_rgb(), "JPEG", progressive=True, subsampling=2, quality=90),
        f"{MAX_SIDE}x{MAX_SIDE}",
    ),
    "progressive 4:4:4 JPEG 5000x5000": (
        lambda: _encoded(_rgb(5000), "JPEG", progressive=True, subsampling=0, quality=90),
        f"{MAX_SIDE}x{MAX_SIDE}",
    ),
    "progressive 4:4:4 JPEG 7071x7071": (
        lambda: _encoded(_rgb(), "JPEG", progressive=True, subsampling=0, quality=90),
        "too_large",
    ),
    "CMYK JPEG": (
        lambda: _encoded(_rgb().convert("CMYK"), "JPEG", quality=90),
        f"{MAX_SIDE}x{MAX_SIDE}",
    ),
    "EXIF-rotated 4:4:4 JPEG": (_exif_rotated, f"{MAX_SIDE}x{MAX_SIDE}"),
}


def measure(path: Path) -> dict[str, object]:
    """Peak extra RSS (bytes), CPU seconds and outcome of one decode in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(MAX_SIDE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_decode_of_each_hostile_kind_stays_within_the_goal(kind: str, tmp_path: Path) -> None:
    build, outcome = KINDS[kind]
    path = tmp_path / "upload"
    path.write_bytes(build())
    cost = measure(path)
    print(f"{kind}: +{cost['extra_rss'] / 2**20:.0f} MB, {cost['cpu']:.2f} s, {cost['outcome']}")
    assert cost["outcome"] == outcome
    assert cost["extra_rss"] <= MAX_EXTRA_RSS, f"{kind}: +{cost['extra_rss'] / 2**20:.0f} MB"
    assert cost["cpu"] <= MAX_CPU_SECONDS, f"{kind}: {cost['cpu']:.2f} s of CPU"
