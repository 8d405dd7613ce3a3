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
from collections.abc import Callable
from typing import Any, Generic, TypeVar

TICK_SECONDS = 0.05

T = TypeVar("T")


class Limit:
    """One running limit: what start() returns and finish() and expired() take."""

    __slots__ = ("bucket", "clock", "expired", "task")

    def __init__(self, clock: _Clock, bucket: int, task: asyncio.Task[Any]) -> None:
        self.clock = clock
        self.bucket = bucket
        self.task = task
        self.expired = False


class _Clock:
    """The limits of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
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


class _PerLoop(Generic[T]):
    """One T per event loop, made on first use; the loop that asked last is found without a
    table lookup. Loops are held weakly: a loop that is gone takes its T with it."""

    def __init__(self, make: Callable[[asyncio.AbstractEventLoop], T]) -> None:
        self._make = make
        self._table: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], T] | None = None

    def get(self, loop: asyncio.AbstractEventLoop) -> T:
        last = self._last
        if last is not None and last[0]() is loop:
            return last[1]
        found = self._table.get(loop)
        if found is None:
            found = self._table[loop] = self._make(loop)
        self._last = (weakref.ref(loop), found)
        return found


class WaitBound:
    """A bound on a kind of wait, made once (at import): here() is the running loop's Waits."""

    def __init__(self, seconds: float) -> None:
        self._waits = _PerLoop(lambda loop: Waits(loop, seconds))

    def here(self) -> Waits:
        return self._waits.get(asyncio.get_running_loop())


_clocks = _PerLoop(_Clock)


def start(seconds: float) -> Limit:
    """Cancel the current task after `seconds` (unless finish() comes first); expired()
    then tells that CancelledError apart from any other."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    return _clocks.get(loop).start(loop, task, seconds)


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
