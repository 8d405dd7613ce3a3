"""Time limits on calls (server default deadlines, the wait for a request message), cheap
enough to put on every call.

asyncio.timeout() and loop.call_later() schedule one TimerHandle per call; cancelled handles
stay in the loop's heap until their time and are ordered by a Python-level comparison, which
costs more than a whole small RPC once thousands are pending. Here, each event loop keeps its
running limits in buckets of TICK_SECONDS, swept once a tick: starting and finishing a limit
is a set insertion and removal, nothing outlives its call, and a limit fires up to one tick
late.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, NamedTuple

TICK_SECONDS = 0.05


class _Clock:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buckets: dict[int, set[asyncio.Task[Any]]] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.next_bucket = self._bucket_now()
        self.tick: asyncio.TimerHandle | None = None

    def _bucket_now(self) -> int:
        return int(self.loop.time() / TICK_SECONDS)

    def start(self, task: asyncio.Task[Any], seconds: float) -> int:
        # The first bucket wholly after the limit: never early, at most one tick late.
        bucket = int((self.loop.time() + seconds) / TICK_SECONDS) + 1
        tasks = self.buckets.get(bucket)
        if tasks is None:
            tasks = self.buckets[bucket] = set()
        tasks.add(task)
        if self.tick is None:
            self.tick = self.loop.call_later(TICK_SECONDS, self.sweep)
        return bucket

    def sweep(self) -> None:
        now = self._bucket_now()
        buckets = self.buckets
        for bucket in range(self.next_bucket, now + 1):
            for task in buckets.pop(bucket, ()):
                self.expired.add(task)
                task.cancel()
        self.next_bucket = now + 1
        self.tick = self.loop.call_later(TICK_SECONDS, self.sweep) if buckets else None


class Limit(NamedTuple):
    clock: _Clock
    bucket: int
    task: asyncio.Task[Any]


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Clock] = weakref.WeakKeyDictionary()
_last: _Clock | None = None


def start(seconds: float) -> Limit:
    """Cancel the current task after `seconds` (unless finish() comes first); expired()
    then tells that CancelledError apart from any other."""
    global _last
    loop = asyncio.get_running_loop()
    clock = _last
    if clock is None or clock.loop is not loop:
        clock = _clocks.get(loop)
        if clock is None:
            clock = _clocks[loop] = _Clock(loop)
        _last = clock
    task = asyncio.current_task()
    assert task is not None
    return Limit(clock, clock.start(task, seconds), task)


def finish(limit: Limit) -> None:
    """The call ended: its limit no longer applies."""
    tasks = limit.clock.buckets.get(limit.bucket)
    if tasks is not None:
        tasks.discard(limit.task)
        if not tasks:
            del limit.clock.buckets[limit.bucket]
    limit.clock.expired.discard(limit.task)


def expired(limit: Limit) -> bool:
    """Whether this limit cancelled its task."""
    return limit.task in limit.clock.expired
