"""Time limits on calls (server default deadlines, the wait for a request message), cheap
enough to put on every call.

asyncio.timeout() and loop.call_later() schedule one TimerHandle per call; cancelled handles
stay in the loop's heap until their time and are ordered by a Python-level comparison, which
costs more than a whole small RPC once thousands are pending. Here, each event loop keeps its
running limits in buckets of TICK_SECONDS, swept once a tick: starting and finishing a limit
is a set insertion and removal, nothing outlives its call, and a limit fires up to one tick
late. One task may carry several limits; each is told apart by its own handle.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

TICK_SECONDS = 0.05


class Limit:
    """One running limit: what start() returns and finish() and expired() take."""

    __slots__ = ("bucket", "clock", "expired", "task")

    def __init__(self, clock: _Clock, bucket: int, task: asyncio.Task[Any]) -> None:
        self.clock = clock
        self.bucket = bucket
        self.task = task
        self.expired = False


class _Clock:
    """The limits of one event loop. It holds the loop only weakly: a loop that is gone
    takes its clock with it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)
        self.buckets: dict[int, set[Limit]] = {}
        self.next_bucket = 0
        # No handle kept: it would hold the loop, and the loop must be free to go.
        self.ticking = False

    def start(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], seconds: float
    ) -> Limit:
        now = loop.time()
        if not self.ticking:  # idle until now: nothing before this moment to sweep
            self.next_bucket = int(now / TICK_SECONDS)
            self.ticking = True
            loop.call_later(TICK_SECONDS, self.sweep)
        # The first bucket wholly after the limit: never early, at most one tick late.
        bucket = int((now + seconds) / TICK_SECONDS) + 1
        limit = Limit(self, bucket, task)
        limits = self.buckets.get(bucket)
        if limits is None:
            limits = self.buckets[bucket] = set()
        limits.add(limit)
        return limit

    def sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = int(loop.time() / TICK_SECONDS)
        buckets = self.buckets
        for bucket in range(self.next_bucket, now + 1):
            for limit in buckets.pop(bucket, ()):
                limit.expired = True
                limit.task.cancel()
        self.next_bucket = now + 1
        self.ticking = bool(buckets)
        if self.ticking:
            loop.call_later(TICK_SECONDS, self.sweep)


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Clock] = weakref.WeakKeyDictionary()
_last: _Clock | None = None


def start(seconds: float) -> Limit:
    """Cancel the current task after `seconds` (unless finish() comes first); expired()
    then tells that CancelledError apart from any other."""
    global _last
    loop = asyncio.get_running_loop()
    clock = _last
    if clock is None or clock.loop() is not loop:
        clock = _clocks.get(loop)
        if clock is None:
            clock = _clocks[loop] = _Clock(loop)
        _last = clock
    task = asyncio.current_task()
    assert task is not None
    return clock.start(loop, task, seconds)


def finish(limit: Limit) -> None:
    """The call ended: this limit no longer applies."""
    limits = limit.clock.buckets.get(limit.bucket)
    if limits is not None:
        limits.discard(limit)
        if not limits:
            del limit.clock.buckets[limit.bucket]


def expired(limit: Limit) -> bool:
    """Whether this limit cancelled its task."""
    return limit.expired
