"""Decoding untrusted uploads in warm worker processes that can be stopped.

A Python thread cannot be killed, so a decode that runs long in one would keep its CPU after
its request has been answered. The server decodes in ``decode_worker`` processes instead, fed
over pipes (never files): each decode runs under a CPU limit and a memory limit the worker
sets itself, and under a wall-clock deadline the pool enforces by killing the worker
(SIGKILL). A killed or crashed worker is replaced at once, by the request that caused it.

Workers are started ahead and reused (one per concurrent decode): starting a Python process
with Pillow costs ~60-100 ms of CPU, a round trip to a warm worker ~1 ms plus copying the
decoded pixels back (the figures are in the docs). The worker never imports torch.

``decode_image``'s structural checks run in the worker too, so a scan bomb is refused there in
milliseconds; the limits are the backstop for what no check foresees.
"""

from __future__ import annotations

import os
import queue
import select
import signal
import subprocess  # nosec B404 # starts our own decode worker, a fixed argv, no shell
import sys
import threading
import time
from dataclasses import dataclass

from PIL import Image

from m2fp.errors import ImageError
from m2fp.imaging.decode_worker import ANSWER, READY, REQUEST, TOO_COSTLY

# what one decode may cost: the goal is 2 s of CPU and 300 MB of memory per upload; the
# address-space budget is larger than the RSS goal because allocators reserve more than they
# touch (measured peaks are ~260 MB for the worst files within the limits, docs/_incoming)
DECODE_CPU_SECONDS = 2.0
DECODE_MEMORY_BYTES = 768 * 1024 * 1024
# a decode answered later than this is stopped whatever its CPU (a loaded machine is slower)
DECODE_WALL_SECONDS = 10.0
# a worker that is not ready by then is a broken installation, not a slow one
START_SECONDS = 30.0
WORKER_COMMAND = (sys.executable, "-I", "-m", "m2fp.imaging.decode_worker")


def _too_costly() -> ImageError:
    return ImageError("too_costly", TOO_COSTLY)


def _text(field: bytes) -> str:
    return field.rstrip(b"\0").decode("ascii", "replace")


class _WorkerLost(Exception):
    """The worker died, or missed the deadline and was killed."""

    def __init__(self, *, deadline: bool) -> None:
        super().__init__("decode worker lost")
        self.deadline = deadline


@dataclass(frozen=True)
class DecodedImage:
    """A decode's outcome and what it cost in the worker.

    Attributes:
        image: upright RGB, metadata-free, longer side at most the ``max_side`` asked for.
        cpu_seconds: CPU time of the decode in the worker.
    """

    image: Image.Image
    cpu_seconds: float


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(  # nosec B603 # fixed argv: this interpreter and our module
            WORKER_COMMAND,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
            close_fds=True,
        )
        self._out = self.process.stdout.fileno()  # type: ignore[union-attr]
        try:
            ready = self.read(len(READY), time.monotonic() + START_SECONDS)
        except _WorkerLost:
            self.kill()
            raise RuntimeError("the image decode worker did not start") from None
        if ready != READY:
            self.kill()
            raise RuntimeError("the image decode worker did not start")

    def read(self, size: int, deadline: float) -> bytearray:
        """``size`` bytes from the worker, or ``_WorkerLost`` at EOF or past ``deadline``."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._out], [], [], remaining)[0]:
                raise _WorkerLost(deadline=True)
            count = os.readv(self._out, [view[got:]])
            if count == 0:
                raise _WorkerLost(deadline=False)
            got += count
        return buffer

    def decode(
        self,
        data: bytes,
        *,
        max_pixels: int,
        max_side: int | None,
        budget: tuple[float, int],
        deadline: float,
    ) -> DecodedImage:
        cpu_seconds, memory_bytes = budget
        header = REQUEST.pack(max_pixels, max_side or 0, cpu_seconds, memory_bytes, len(data))
        stdin = self.process.stdin
        assert stdin is not None  # nosec B101 # narrows the type: Popen was given stdin=PIPE
        try:
            stdin.write(header)
            stdin.write(data)
            stdin.flush()
        except OSError:
            raise _WorkerLost(deadline=False) from None
        answer = ANSWER.unpack(self.read(ANSWER.size, deadline))
        ok, width, height, cpu_ns, kind, message = answer
        if not ok:
            raise ImageError(_text(kind), _text(message))
        if width * height > max_pixels:  # the worker's own answer, checked all the same
            raise _WorkerLost(deadline=False)
        pixels = self.read(width * height * 3, deadline)
        image = Image.frombytes("RGB", (width, height), bytes(pixels))
        return DecodedImage(image=image, cpu_seconds=cpu_ns / 1e9)

    def kill(self) -> int:
        """Stop the process (SIGKILL) and return how it ended (negative: the signal)."""
        if self.process.poll() is None:
            self.process.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        return self.process.wait()


class DecodePool:
    """Warm decode workers, one per decode that may run at the same time.

    Args:
        workers: decodes at the same time (the server's inference concurrency).
        cpu_seconds: CPU one decode may use before its worker is killed.
        memory_bytes: address space one decode may add before it fails.
        wall_seconds: time one decode may take before its worker is killed.
    """

    def __init__(
        self,
        *,
        workers: int,
        cpu_seconds: float = DECODE_CPU_SECONDS,
        memory_bytes: int = DECODE_MEMORY_BYTES,
        wall_seconds: float = DECODE_WALL_SECONDS,
    ) -> None:
        if workers < 1 or cpu_seconds <= 0 or memory_bytes <= 0 or wall_seconds <= 0:
            raise ValueError("a decode pool needs at least one worker and positive limits")
        self.workers = workers
        self.budget = (cpu_seconds, memory_bytes)
        self.wall_seconds = wall_seconds
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._closed = False

    def start(self) -> None:
        """Start the workers that are not running yet (blocking; call off the event loop)."""
        while True:
            with self._lock:
                if self._closed or self._started >= self.workers:
                    return
                self._started += 1
            try:
                self._idle.put(_Worker())
            except BaseException:
                with self._lock:
                    self._started -= 1
                raise

    def decode(
        self,
        data: bytes,
        *,
        max_pixels: int,
        max_side: int | None,
        deadline_seconds: float | None = None,
    ) -> DecodedImage:
        """``decode_image`` in a worker, bounded in CPU, memory and time.

        Args:
            data: the encoded file.
            max_pixels, max_side: as ``decode_image``.
            deadline_seconds: stop sooner than ``wall_seconds`` (the request's own deadline).

        Raises:
            ImageError: ``decode_image``'s refusals; ``too_costly`` when the decode passed a
                limit (its worker is killed and replaced); ``corrupt`` when the worker crashed.
        """
        self.start()
        limit = (
            self.wall_seconds
            if deadline_seconds is None
            else min(self.wall_seconds, max(0.0, deadline_seconds))
        )
        worker = self._idle.get()
        try:
            return worker.decode(
                data,
                max_pixels=max_pixels,
                max_side=max_side,
                budget=self.budget,
                deadline=time.monotonic() + limit,
            )
        except _WorkerLost as lost:
            ended = worker.kill()
            worker = _Worker()
            if lost.deadline or ended in (-signal.SIGXCPU, -signal.SIGKILL):
                raise _too_costly() from None
            raise ImageError("corrupt", "the image could not be decoded") from None
        finally:
            self._give_back(worker)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            closed = self._closed
        if closed:
            worker.kill()
        else:
            self._idle.put(worker)

    def close(self) -> None:
        """Stop every idle worker; busy ones stop when their decode ends."""
        with self._lock:
            self._closed = True
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return
