"""Bounded inference: slots, queue, overload refusal, deadlines and honest slot accounting."""

from __future__ import annotations

import asyncio
import threading

import pytest

from m2fp.server.parse.queue import (
    InferenceQueue,
    InferenceTimeout,
    Overloaded,
    check_max_concurrency,
    check_max_queue,
    check_timeout,
)

# Generous bound on how long a blocked worker may take to be released (never reached when green).
WAIT = 10.0


def blocker() -> tuple[threading.Event, threading.Event, callable]:
    """A job that signals when it starts and blocks until released."""
    started, release = threading.Event(), threading.Event()

    def job() -> str:
        started.set()
        release.wait(WAIT)
        return "done"

    return started, release, job


async def wait_started(event: threading.Event) -> None:
    await asyncio.to_thread(event.wait, WAIT)


def test_result_and_exception_pass_through_and_free_the_slot():
    async def scenario():
        queue = InferenceQueue(max_concurrency=1, max_queue=0, timeout=WAIT)
        assert await queue.run(lambda: 42) == 42

        def fails():
            raise ValueError("bad")

        with pytest.raises(ValueError, match="bad"):
            await queue.run(fails)
        await asyncio.sleep(0.01)  # let the completion callback run
        assert queue.running == 0
        assert await queue.run(lambda: "again") == "again"
        queue.close()

    asyncio.run(scenario())


def test_full_queue_is_refused_at_once_and_queued_work_runs_in_order():
    async def scenario():
        queue = InferenceQueue(max_concurrency=1, max_queue=1, timeout=WAIT)
        started, release, job = blocker()
        first = asyncio.create_task(queue.run(job))
        await wait_started(started)
        second = asyncio.create_task(queue.run(lambda: "second"))
        await asyncio.sleep(0.01)
        assert (queue.running, queue.depth) == (1, 1)
        with pytest.raises(Overloaded) as refused:
            await queue.run(lambda: "third")
        assert refused.value.retry_after >= 1
        release.set()
        assert await first == "done"
        assert await second == "second"
        await asyncio.sleep(0.01)
        assert (queue.running, queue.depth) == (0, 0)
        queue.close()

    asyncio.run(scenario())


def test_concurrency_is_bounded():
    async def scenario():
        queue = InferenceQueue(max_concurrency=2, max_queue=5, timeout=WAIT)
        active, peak, lock = [0], [0], threading.Lock()
        release = threading.Event()

        def job():
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            release.wait(WAIT)
            with lock:
                active[0] -= 1

        tasks = [asyncio.create_task(queue.run(job)) for _ in range(6)]
        await asyncio.sleep(0.05)
        assert (queue.running, queue.depth) == (2, 4)
        release.set()
        await asyncio.gather(*tasks)
        assert peak[0] == 2
        queue.close()

    asyncio.run(scenario())


def test_deadline_while_waiting_gives_timeout_and_leaves_the_queue():
    async def scenario():
        queue = InferenceQueue(max_concurrency=1, max_queue=2, timeout=0.2)
        started, release, job = blocker()
        first = asyncio.create_task(queue.run(job))
        await wait_started(started)
        with pytest.raises(InferenceTimeout) as timed_out:
            await queue.run(lambda: "never")
        assert timed_out.value.retry_after >= 1
        assert queue.depth == 0
        release.set()
        with pytest.raises(InferenceTimeout):  # the first one missed its deadline too
            await first
        queue.close()

    asyncio.run(scenario())


def test_timed_out_inference_keeps_its_slot_until_its_thread_finishes():
    async def scenario():
        queue = InferenceQueue(max_concurrency=1, max_queue=0, timeout=0.2)
        started, release, job = blocker()
        with pytest.raises(InferenceTimeout):
            await queue.run(job)
        assert started.is_set()
        assert queue.running == 1  # the thread still computes: the load stays honest
        with pytest.raises(Overloaded):
            await queue.run(lambda: "refused")
        release.set()
        for _ in range(100):
            if queue.running == 0:
                break
            await asyncio.sleep(0.01)
        assert queue.running == 0
        assert await queue.run(lambda: "accepted") == "accepted"
        queue.close()

    asyncio.run(scenario())


def test_cancelled_waiter_leaves_the_queue_and_the_slot_passes_on():
    async def scenario():
        queue = InferenceQueue(max_concurrency=1, max_queue=2, timeout=WAIT)
        started, release, job = blocker()
        first = asyncio.create_task(queue.run(job))
        await wait_started(started)
        gone = asyncio.create_task(queue.run(lambda: "gone"))
        stays = asyncio.create_task(queue.run(lambda: "stays"))
        await asyncio.sleep(0.01)
        assert queue.depth == 2
        gone.cancel()
        await asyncio.sleep(0.01)
        assert queue.depth == 1
        release.set()
        assert await first == "done"
        assert await stays == "stays"
        queue.close()

    asyncio.run(scenario())


def test_retry_after_grows_with_the_work_ahead():
    queue = InferenceQueue(max_concurrency=1, max_queue=10, timeout=WAIT, initial_duration=3.0)
    assert queue.retry_after() == 3
    queue._running = 1
    queue._waiters.extend([object()] * 3)
    assert queue.retry_after() == 12
    queue.close()


NONSENSE_LIMITS = [
    (0, 1, 1.0),
    (1, -1, 1.0),
    (1, 1, 0.0),
    (65, 1, 1.0),
    (1, 1001, 1.0),
    (1, 1, 3601.0),
    (1, 1, float("nan")),
]


@pytest.mark.parametrize(("concurrency", "queue_size", "timeout"), NONSENSE_LIMITS)
def test_nonsense_limits_are_refused(concurrency, queue_size, timeout):
    # the settings' names are added by Settings: test_settings.py
    with pytest.raises(ValueError, match="must be"):
        InferenceQueue(max_concurrency=concurrency, max_queue=queue_size, timeout=timeout)


def test_limit_checks_accept_their_whole_range():
    assert [check_max_concurrency(n) for n in (1, 64)] == [1, 64]
    assert [check_max_queue(n) for n in (0, 1000)] == [0, 1000]
    assert [check_timeout(t) for t in (0.001, 3600.0)] == [0.001, 3600.0]


def test_a_reserved_place_counts_against_capacity_until_used_or_released():
    """Capacity is decided before the body is read: the reservation holds the place meanwhile,
    so two requests cannot both pass the check and then both need the last place."""

    async def scenario():
        queue = InferenceQueue(max_concurrency=1, max_queue=1, timeout=WAIT)
        first = queue.reserve()
        second = queue.reserve()
        with pytest.raises(Overloaded):
            queue.reserve()  # both places are promised, though nothing runs yet
        assert (queue.running, queue.depth) == (0, 0)
        assert queue.retry_after() >= 1
        with first:
            assert await first.run(lambda: "used") == "used"
        second.release()
        second.release()  # idempotent
        with queue.reserve():
            queue.reserve()  # the second place
            with pytest.raises(Overloaded):
                queue.reserve()  # the block's place is held while it runs
        # left unused, the block gave its place back (the second still holds its own)
        with queue.reserve(), pytest.raises(Overloaded):
            queue.reserve()
            pass
        queue.close()

    asyncio.run(scenario())


def test_a_reservation_runs_once():
    async def scenario():
        queue = InferenceQueue(max_concurrency=1, max_queue=0, timeout=WAIT)
        place = queue.reserve()
        assert await place.run(lambda: 1) == 1
        with pytest.raises(RuntimeError):
            await place.run(lambda: 2)
        queue.close()

    asyncio.run(scenario())
