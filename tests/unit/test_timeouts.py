"""Per-call time limits: they fire (never early, at most a tick late), can be finished, and
tell their own cancellation apart from any other."""

import asyncio
import gc
import weakref

import pytest
from protoc_gen_pyservice.runtime import timeouts


async def test_a_limit_cancels_its_task_and_says_so() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    limit = timeouts.start(0.1)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(5)
    elapsed = loop.time() - started
    assert timeouts.expired(limit)
    asyncio.current_task().uncancel()  # type: ignore[union-attr]
    timeouts.finish(limit)
    assert 0.1 <= elapsed < 0.1 + 2 * timeouts.TICK_SECONDS + 0.1


async def test_a_finished_limit_never_fires() -> None:
    limit = timeouts.start(0.05)
    timeouts.finish(limit)
    await asyncio.sleep(0.05 + 3 * timeouts.TICK_SECONDS)
    assert not timeouts.expired(limit)


async def test_another_cancellation_is_not_the_limits() -> None:
    async def waits() -> bool:
        limit = timeouts.start(10)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return timeouts.expired(limit)
        finally:
            timeouts.finish(limit)
        return True

    task = asyncio.create_task(waits())
    await asyncio.sleep(0)
    task.cancel()
    assert await task is False


async def test_many_limits_leave_nothing_behind() -> None:
    async def call(seconds: float) -> None:
        limit = timeouts.start(seconds)
        try:
            await asyncio.sleep(0)
        finally:
            timeouts.finish(limit)

    await asyncio.gather(*(call(1 + index % 7) for index in range(5000)))
    clock = timeouts.start(1).clock
    assert sum(len(limits) for limits in clock.buckets.values()) == 1


async def test_two_limits_on_one_task_are_kept_apart() -> None:
    # A server deadline and the wait for the request, both 10 s: finishing one must leave
    # the other running, and only the one that fired says so.
    longer = timeouts.start(0.15)
    shorter = timeouts.start(0.15)
    timeouts.finish(shorter)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(5)
    asyncio.current_task().uncancel()  # type: ignore[union-attr]
    assert timeouts.expired(longer) and not timeouts.expired(shorter)
    timeouts.finish(longer)


async def test_a_limit_after_a_long_idle_time_sweeps_only_from_now() -> None:
    limit = timeouts.start(0.01)
    clock = limit.clock
    timeouts.finish(limit)
    await asyncio.sleep(3 * timeouts.TICK_SECONDS)
    assert not clock.ticking  # idle: no sweeping
    clock.next_bucket -= 10_000_000  # as if idle for days
    timeouts.finish(timeouts.start(1))
    assert clock.next_bucket >= int(asyncio.get_running_loop().time() / timeouts.TICK_SECONDS)


def test_a_finished_event_loop_is_not_kept_alive() -> None:
    async def use_a_limit() -> None:
        timeouts.finish(timeouts.start(1))

    loops = []
    for _ in range(2):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(use_a_limit())
        loop.close()
        loops.append(weakref.ref(loop))
        del loop
    gc.collect()
    assert [ref() for ref in loops] == [None, None]


async def test_a_wait_past_its_bound_is_cancelled_and_says_so() -> None:
    loop = asyncio.get_running_loop()
    waits = timeouts.WaitBound(1.0).here()
    task = asyncio.current_task()
    assert task is not None
    started = loop.time()
    waits.tasks.add(task)
    try:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(5)
        task.uncancel()
    finally:
        waits.tasks.discard(task)
    assert 1.0 <= loop.time() - started < 2.5
    assert waits.expired(task)
    assert not waits.expired(task)  # told once


async def test_waits_that_end_in_time_are_never_cancelled() -> None:
    waits = timeouts.WaitBound(1.0).here()

    async def call() -> bool:
        task = asyncio.current_task()
        assert task is not None
        waits.tasks.add(task)
        try:
            await asyncio.sleep(0.6)
        finally:
            waits.tasks.discard(task)
        await asyncio.sleep(1.5)  # past the bound, no longer waiting
        return waits.expired(task)

    assert await asyncio.gather(*(call() for _ in range(20))) == [False] * 20
    assert not waits.tasks
