"""Fan-out of user updates inside one process, and the bus interface the service talks to.

`UpdateHub` hands every published update to the subscriptions watching its user, in publish
order, the moment it is published. Each subscription queues at most `max_queued` updates; one
that falls further behind is ended with SubscriberTooSlow and dropped from the hub at once,
because skipping updates would leave its client believing a stale state. Ending a subscription
(too slow, hub closed, bus interrupted) discards what it had queued and its next read raises:
the client resubscribes and rereads the users it cares about either way, so a partial drain
would only delay that.

`UpdateBus` is what the service publishes to and subscribes through: `LocalUpdateBus` for a
single instance, `redis_events.RedisUpdateBus` across instances.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Protocol

from user.v1 import user_pb2

Update = user_pb2.UserUpdate
# Makes the exception a subscription's reads raise once it has ended; a fresh one per read, so
# tasks never share (and grow) one traceback.
EndReason = Callable[[], Exception]


class SubscriberTooSlow(Exception):
    """The subscription fell too far behind and was ended (answer RESOURCE_EXHAUSTED)."""

    def __init__(self, max_queued: int) -> None:
        super().__init__(
            f"the stream fell more than {max_queued} updates behind and was ended; resubscribe"
        )


class SubscriptionEnded(Exception):
    """The server ended the subscription for a reason the client may retry at once: answer
    UNAVAILABLE with this message."""


class HubClosed(SubscriptionEnded):
    """The server is shutting down."""

    def __init__(self) -> None:
        super().__init__("the server is shutting down")


class PublishFailed(Exception):
    """The bus could not send an update. Raised after the write it reports has committed, so
    the caller logs it and answers the write as usual."""


class Subscription:
    """Updates of the watched users (every user when none were named), oldest first.

    Made by `UpdateHub.subscribe`. One task reads it, with `next()` or `async for`; `async for`
    ends after `close()`, and every other end raises from the read. Use it as a context
    manager (`with hub.subscribe(ids) as subscription:`) so a cancelled or failed reader leaves
    nothing behind in the hub.
    """

    __slots__ = ("_end", "_hub", "_max_queued", "_queue", "_waiter", "user_ids")

    def __init__(self, hub: UpdateHub, user_ids: frozenset[str], max_queued: int) -> None:
        self._hub = hub
        self.user_ids = user_ids
        self._max_queued = max_queued
        self._queue: deque[Update] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._end: EndReason | None = None

    @property
    def queued(self) -> int:
        """Updates delivered to this subscription and not yet read."""
        return len(self._queue)

    async def next(self) -> Update:
        """The next update, waiting for one. Raises the reason once the subscription has
        ended (StopAsyncIteration after close())."""
        while not self._queue:
            if self._end is not None:
                raise self._end()
            if self._waiter is not None:
                raise RuntimeError("another task is already reading this subscription")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def end(self, reason: EndReason) -> None:
        """Stop delivering: drop what is queued, leave the hub, and make the next read (and a
        read waiting now) raise `reason()`. The first end wins; later ones do nothing."""
        if self._end is not None:
            return
        self._end = reason
        self._queue.clear()
        self._hub._remove(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        """Stop reading: `async for` over this subscription ends."""
        self.end(StopAsyncIteration)

    def _offer(self, update: Update) -> bool:
        """Queue `update` and wake the reader; False when the queue is already full."""
        if len(self._queue) >= self._max_queued:
            return False
        self._queue.append(update)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return True

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Update:
        return await self.next()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class UpdateHub:
    """Subscriptions of one process, indexed by the user they watch, so publishing costs one
    step per interested subscription whatever the number of others."""

    def __init__(self, max_queued: int = 1024) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, got {max_queued}")
        self._max_queued = max_queued
        self._too_slow: EndReason = functools.partial(SubscriberTooSlow, max_queued)
        self._by_user: dict[str, set[Subscription]] = {}
        self._all_users: set[Subscription] = set()
        self._subscriptions: set[Subscription] = set()
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, user_ids: Iterable[str]) -> Subscription:
        """A subscription to these users' updates; every user's when `user_ids` is empty. On
        a closed hub its first read raises HubClosed."""
        subscription = Subscription(self, frozenset(user_ids), self._max_queued)
        if self._closed:
            subscription.end(HubClosed)
            return subscription
        self._subscriptions.add(subscription)
        if not subscription.user_ids:
            self._all_users.add(subscription)
        for user_id in subscription.user_ids:
            self._by_user.setdefault(user_id, set()).add(subscription)
        return subscription

    def publish(self, update: Update) -> None:
        """Deliver to every subscription watching `update.user.id` or every user; never waits.
        A subscription whose queue is full is ended with SubscriberTooSlow."""
        too_slow = [
            subscription
            for watchers in (self._all_users, self._by_user.get(update.user.id, ()))
            for subscription in watchers
            if not subscription._offer(update)
        ]
        for subscription in too_slow:
            subscription.end(self._too_slow)

    def end_all(self, reason: EndReason) -> None:
        """End every current subscription with `reason` (see Subscription.end)."""
        for subscription in list(self._subscriptions):
            subscription.end(reason)

    def close(self) -> None:
        """End every subscription, now and later, with HubClosed at its next read (what was
        queued is dropped: shutdown does not wait for slow readers)."""
        self._closed = True
        self.end_all(HubClosed)

    def _remove(self, subscription: Subscription) -> None:
        if subscription not in self._subscriptions:
            return
        self._subscriptions.remove(subscription)
        self._all_users.discard(subscription)
        for user_id in subscription.user_ids:
            watchers = self._by_user[user_id]
            watchers.remove(subscription)
            if not watchers:
                del self._by_user[user_id]


class UpdateBus(Protocol):
    """Where the service publishes committed changes and streams subscribe."""

    async def start(self) -> None:
        """Be ready to deliver: an update published after this returns reaches every
        subscription made after it."""
        ...

    async def publish(self, update: Update) -> None:
        """Deliver `update` to the watchers of its user; PublishFailed when it could not."""
        ...

    def subscribe(self, user_ids: Iterable[str]) -> Subscription: ...

    @property
    def subscriber_count(self) -> int:
        """Subscriptions of this instance now open (for readiness checks and tests)."""
        ...

    async def close(self) -> None:
        """End every subscription with a SubscriptionEnded and release what the bus holds."""
        ...


class LocalUpdateBus(UpdateBus):
    """The bus of a single instance: publishing hands the update straight to the hub."""

    def __init__(self, max_queued: int = 1024) -> None:
        self._hub = UpdateHub(max_queued)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def publish(self, update: Update) -> None:
        self._hub.publish(update)

    def subscribe(self, user_ids: Iterable[str]) -> Subscription:
        return self._hub.subscribe(user_ids)

    @property
    def subscriber_count(self) -> int:
        return self._hub.subscriber_count

    async def close(self) -> None:
        self._hub.close()
