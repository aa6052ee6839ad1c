"""Progress of ``m2fp parse`` on stderr, kept apart from the JSON lines on stdout.

On a terminal both streams reach the same screen: a result line printed while the bar is
drawn would land on the bar's line (``50%|███| 1/2{"image": ...}``). Every stdout line
therefore goes through ``report_line``, which clears the bars, writes the line whole and
redraws them. A single image (no bar before) gets one on a terminal too, redrawn every
``TICK_SECONDS`` so its elapsed time moves while the network runs; off a terminal (a log, a
pipe) nothing is drawn for one image and the bar is never redrawn by the clock.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType

from tqdm import tqdm

TICK_SECONDS = 0.5


def progress_bar(*, total: int | None, unit: str) -> tqdm:
    """The bar on stderr: for one known image only when stderr is a terminal."""
    quiet = total is not None and total < 2 and not sys.stderr.isatty()
    return tqdm(total=total, unit=unit, disable=quiet, file=sys.stderr)


def report_line(text: str) -> None:
    """One whole line on stdout, never inside a bar's line on the same terminal."""
    tqdm.write(text, file=sys.stdout)
    sys.stdout.flush()


class Ticking:
    """Redraws ``bar`` every ``TICK_SECONDS`` while the block runs (on a terminal only), so
    its elapsed time moves during a long image."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Ticking:
        if not self.bar.disable and sys.stderr.isatty():
            self.thread = threading.Thread(target=self._tick, name="m2fp-progress", daemon=True)
            self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()

    def _tick(self) -> None:
        while not self.stop.wait(TICK_SECONDS):
            self.bar.refresh()
