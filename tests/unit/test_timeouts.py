"""Per-call time limits: they fire (never early, at most a tick late), can be finished, and
tell their own cancellation apart from any other."""

import asyncio

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
    assert sum(len(tasks) for tasks in clock.buckets.values()) == 1
    assert not clock.expired
