"""Bounded inference: at most ``max_concurrency`` running, at most ``max_queue`` waiting.

Inference is CPU-bound and runs in worker threads of this queue's own pool, off the event loop.
A request that finds every slot and every queue place taken is refused at once (503
``overloaded``) instead of piling up memory and latency. Each request has a deadline,
``timeout`` seconds from the moment it joins the queue (waiting included): past it the request
gets 503 ``timeout``.

A Python thread cannot be killed. When a running inference misses its deadline, the thread
finishes the work and its result is dropped; its slot stays taken until then, so the queue never
admits more concurrent inferences than the CPU is really running and the load it reports stays
honest.

A request reserves its place (``reserve``) before its upload is read, so that a full queue
answers 503 at once instead of after receiving megabytes, and two requests reading their bodies
at the same time cannot both be promised the last place. A reservation counts against the
capacity until it runs or is released.

Retry-After estimates when a place frees: the work ahead of the client (running, queued and
reserved) divided by the slots, times a moving average of recent inference durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from m2fp.server.retry_later import RetryLater

T = TypeVar("T")

# Weight of the newest duration in the moving average behind Retry-After.
DURATION_SMOOTHING = 0.2
# Retry-After bounds, seconds: never "retry now", never "come back tomorrow".
MIN_RETRY_AFTER = 1
MAX_RETRY_AFTER = 120
# Beyond these a limit is a typo: each running inference holds hundreds of MB to GBs, a queue
# longer than this waits longer than any client, and a deadline past an hour is none.
MAX_CONCURRENCY = 64
MAX_QUEUE = 1000
MAX_TIMEOUT = 3600.0


class Overloaded(RetryLater):
    """Every slot and queue place is taken; ``retry_after``: whole seconds after which a place
    is likely to be free."""

    reason = "overloaded"


class InferenceTimeout(RetryLater):
    """The request's deadline passed while it waited or while its inference ran;
    ``retry_after``: whole seconds after which a place is likely to be free."""

    reason = "timeout"


def check_max_concurrency(slots: int) -> int:
    """``slots`` if it can be the number of inferences running at once, else ValueError."""
    if not 1 <= slots <= MAX_CONCURRENCY:
        raise ValueError(f"must be between 1 and {MAX_CONCURRENCY}")
    return slots


def check_max_queue(places: int) -> int:
    """``places`` if it can be the number of requests waiting for a slot, else ValueError."""
    if not 0 <= places <= MAX_QUEUE:
        raise ValueError(f"must be between 0 and {MAX_QUEUE}")
    return places


def check_timeout(seconds: float) -> float:
    """``seconds`` if it can be a request's deadline, else ValueError."""
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ValueError(f"must be more than 0 and at most {MAX_TIMEOUT:.0f} seconds")
    return seconds


class InferenceQueue:
    """Runs blocking inference calls in a bounded pool with a bounded wait queue.

    Its state is only touched from the event loop thread (worker threads report completion with
    ``call_soon_threadsafe``), so it needs no locks.
    """

    def __init__(
        self,
        *,
        max_concurrency: int,
        max_queue: int,
        timeout: float,
        initial_duration: float = 2.0,
    ) -> None:
        """
        Args:
            max_concurrency: inferences running at once.
            max_queue: requests allowed to wait for a slot.
            timeout: seconds from joining the queue to the response.
            initial_duration: seconds assumed per inference before any has been measured.

        Raises:
            ValueError: a limit is out of its range (``check_max_concurrency``,
                ``check_max_queue``, ``check_timeout``).
        """
        self.max_concurrency = check_max_concurrency(max_concurrency)
        self.max_queue = check_max_queue(max_queue)
        self.timeout = check_timeout(timeout)
        self._executor = ThreadPoolExecutor(
            max_workers=max_concurrency, thread_name_prefix="m2fp-inference"
        )
        self._running = 0
        self._reserved = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._mean_duration = initial_duration

    @property
    def running(self) -> int:
        """Slots taken, including inferences whose request has already timed out."""
        return self._running

    @property
    def depth(self) -> int:
        """Requests waiting for a slot (the queue-depth gauge)."""
        return len(self._waiters)

    def retry_after(self) -> int:
        """Seconds until a place is likely to be free, from the work ahead and recent durations."""
        ahead = (self._running + len(self._waiters) + self._reserved) / self.max_concurrency
        estimate = math.ceil(max(ahead, 1.0) * self._mean_duration)
        return min(MAX_RETRY_AFTER, max(MIN_RETRY_AFTER, estimate))

    def reserve(self) -> Reservation:
        """Promise a place (a slot or a queue place) to a request that will ``run`` later.

        Raises:
            Overloaded: every place is running, queued or already promised.
        """
        taken = self._running + len(self._waiters) + self._reserved
        if taken >= self.max_concurrency + self.max_queue:
            raise Overloaded(retry_after=self.retry_after())
        self._reserved += 1
        return Reservation(self)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` in a worker thread once a slot is free, and return its result
        (``reserve`` and ``Reservation.run`` in one step).

        Raises:
            Overloaded: no slot and no queue place is free (nothing was started).
            InferenceTimeout: the deadline passed; if ``fn`` had started it still runs to the
                end in its thread, holding its slot, and its result is dropped.
        """
        with self.reserve() as place:
            return await place.run(fn)

    def _unreserve(self) -> None:
        self._reserved -= 1

    async def _run_reserved(self, fn: Callable[[], T]) -> T:
        """``run`` for a request whose place was reserved and has just been handed back (with
        no await in between, so nobody else took it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        await self._acquire(loop, deadline)
        try:
            job = self._executor.submit(self._timed, fn, loop)
        except BaseException:
            self._release()
            raise
        remaining = max(0.0, deadline - loop.time())
        outcome = asyncio.wrap_future(job)
        try:
            return await asyncio.wait_for(asyncio.shield(outcome), remaining)
        except BaseException as exc:
            # Nobody will read the abandoned job's result or error: drop it quietly.
            outcome.add_done_callback(_drop_outcome)
            if isinstance(exc, asyncio.TimeoutError):
                raise InferenceTimeout(retry_after=self.retry_after()) from None
            raise

    def close(self) -> None:
        """Stop accepting work; queued-but-unstarted jobs are cancelled (app shutdown)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _acquire(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        if self._running < self.max_concurrency and not self._waiters:
            self._running += 1
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        expire = loop.call_at(deadline, self._expire, waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # The slot was handed over just as this request was cancelled: pass it on.
                self._release()
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        finally:
            expire.cancel()

    def _expire(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self._waiters.remove(waiter)
            waiter.set_exception(InferenceTimeout(retry_after=self.retry_after()))

    def _release(self) -> None:
        """Hand the slot to the oldest live waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._running -= 1

    def _timed(self, fn: Callable[[], T], loop: asyncio.AbstractEventLoop) -> T:
        """Worker-thread body: run ``fn``, then give the slot back on the event loop."""
        started = time.perf_counter()
        try:
            return fn()
        finally:
            duration = time.perf_counter() - started
            # RuntimeError: the loop has closed, the app is gone and there is nothing to release.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._finished, duration)

    def _finished(self, duration: float) -> None:
        self._mean_duration += DURATION_SMOOTHING * (duration - self._mean_duration)
        self._release()


class Reservation:
    """A place promised by ``InferenceQueue.reserve``: ``run`` uses it once, ``release`` (or
    leaving its ``with`` block unused) gives it back. Event-loop thread only, like the queue."""

    def __init__(self, queue: InferenceQueue) -> None:
        self._queue: InferenceQueue | None = queue

    def release(self) -> None:
        """Give the place back unused; nothing if it was used or released already."""
        if self._queue is not None:
            self._queue._unreserve()
            self._queue = None

    async def run(self, fn: Callable[[], T]) -> T:
        """``InferenceQueue.run`` on the promised place (its deadline starts now).

        Raises:
            RuntimeError: the place was used or released already.
            InferenceTimeout: as ``InferenceQueue.run``.
        """
        queue = self._queue
        if queue is None:
            raise RuntimeError("this reservation was used or released already")
        self.release()
        return await queue._run_reserved(fn)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _drop_outcome(outcome: asyncio.Future[object]) -> None:
    if not outcome.cancelled():
        outcome.exception()
