"""Time limits on calls (server default deadlines, the wait for a request message), cheap
enough to put on every call.

asyncio.timeout() and loop.call_later() schedule one TimerHandle per call; cancelled handles
stay in the loop's heap until their time and are ordered by a Python-level comparison, which
costs more than a whole small RPC once thousands are pending. Here, each event loop keeps its
running limits in buckets of TICK_SECONDS, swept once a tick: starting and finishing a limit
is a set insertion and removal, nothing outlives its call, and a limit fires up to two ticks
late. One task may carry several limits; each is told apart by its own handle.

Waits (a call waiting for its request message) need less: a bound of a few seconds, no
precision. Waits keeps just a set of the waiting tasks and sweeps it once a second; a task
still waiting after `seconds` is cancelled. A wait that ends in time (nearly all do, within
a millisecond) costs a set insertion and removal and is never seen by a sweep.
"""

from __future__ import annotations

import asyncio
import math
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
        # The first bucket wholly after the limit: never early, at most two ticks late.
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


class Waits:
    """The tasks of one event loop in a bounded wait: add the task, discard it when the wait
    is over, and ask expired() when it is cancelled. One wait per task (a call waits once
    for its request): a task added again at once carries its earlier sweeps over."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.loop = weakref.ref(loop)
        self.seconds = seconds
        self.tasks: set[asyncio.Task[Any]] = set()
        self._sweeps_seen: dict[asyncio.Task[Any], int] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        # Sweeps a 1 s apart: a task seen in this many is past `seconds`, by at most 1 s.
        self._patience = max(1, math.ceil(seconds))
        loop.call_later(1.0, self._sweep)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the wait cancelled this task (and forget it)."""
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _sweep(self) -> None:
        seen = {task: self._sweeps_seen.get(task, 0) + 1 for task in self.tasks}
        for task, sweeps in seen.items():
            if sweeps > self._patience:
                self.tasks.discard(task)
                self._expired.add(task)
                task.cancel()
        self._sweeps_seen = {task: sweeps for task, sweeps in seen.items() if task in self.tasks}
        self._expired &= {task for task in self._expired if not task.done()}
        asyncio.get_running_loop().call_later(1.0, self._sweep)


_waits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Waits] = weakref.WeakKeyDictionary()
_last_waits: Waits | None = None


def waits(seconds: float) -> Waits:
    """The running loop's Waits of `seconds` (one per loop: the first call sets `seconds`)."""
    global _last_waits
    loop = asyncio.get_running_loop()
    found = _last_waits
    if found is None or found.loop() is not loop:
        found = _waits.get(loop)
        if found is None:
            found = _waits[loop] = Waits(loop, seconds)
        _last_waits = found
    return found


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
