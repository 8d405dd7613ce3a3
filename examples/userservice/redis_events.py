"""User updates across instances, over one Redis pub/sub channel.

Every instance PUBLISHes its committed changes on the channel and relays everything it
receives there, its own messages included, into a local UpdateHub: all instances deliver the
updates in the one order Redis received them.

Pub/sub keeps nothing for a subscriber that is away. When the connection drops, or stops
answering PINGs for two intervals, whatever was published meanwhile is gone, so the listener
ends every subscription with UpdatesInterrupted and resubscribes with backoff; until Redis
confirms the new SUBSCRIBE, new subscriptions end the same way at once. The client resubscribes
and rereads what it watches; but for the one gap below, it never misses an update untold.

A message that is not an update of some user is skipped and logged (one line a minute at
most): ending every stream for it would let anyone who can publish on the channel end them.

A publish that fails raises PublishFailed after the write it announces has committed, so the
handler logs it and answers the write as usual. This instance's subscriptions end with
UpdatesInterrupted, as they may have missed the update. Another instance's end only when its
own connection fails as well: if Redis is unreachable from the publisher alone, watchers
elsewhere miss that update, the one gap this design leaves. A publish goes on when its caller
is cancelled, since the write is done whether the caller waits or not.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import time
from collections.abc import Iterable

import redis
import redis.asyncio
from google.protobuf.message import DecodeError
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from examples.userservice import events

logger = logging.getLogger(__name__)

DEFAULT_CHANNEL = "pyservice:user-updates"


class UpdatesInterrupted(events.SubscriptionEnded):
    """Updates may have been missed (Redis unreachable): answer UNAVAILABLE."""

    def __init__(self) -> None:
        super().__init__("update stream interrupted; resubscribe")


class ThrottledLog:
    """Warnings about one recurring trouble (Redis down, a flood of bad messages), at most one
    per `interval_seconds`; the next line says how many were held back."""

    def __init__(self, logger: logging.Logger, interval_seconds: float = 60.0) -> None:
        self._logger = logger
        self._interval = interval_seconds
        self._next_at = -math.inf
        self._held = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next_at:
            self._held += 1
            return
        if self._held:
            message += " (and %d more since the last report)"
            args = (*args, self._held)
        self._logger.warning(message, *args)
        self._next_at = now + self._interval
        self._held = 0


def client(url: str, timeout_seconds: float) -> redis.asyncio.Redis:
    """A client whose connecting and commands each take at most `timeout_seconds`, and which
    never retries: a retried PUBLISH or script may act twice, and a pub/sub connection it
    quietly reconnected would hide the updates lost in between."""
    return redis.asyncio.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 0),
    )


class RedisUpdateBus(events.UpdateBus):
    """An UpdateBus shared by every instance connected to one Redis.

    `timeout_seconds` bounds connecting, each command and the SUBSCRIBE confirmation;
    `ping_interval_seconds` is how long the subscription may be quiet before a PING checks it;
    reconnecting waits from `first_reconnect_delay_seconds`, doubling up to
    `max_reconnect_delay_seconds`, with jitter so instances do not reconnect in step.
    """

    def __init__(
        self,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        max_queued: int = 1024,
        timeout_seconds: float = 2.0,
        ping_interval_seconds: float = 5.0,
        first_reconnect_delay_seconds: float = 0.1,
        max_reconnect_delay_seconds: float = 5.0,
    ) -> None:
        for name, value in (
            ("timeout_seconds", timeout_seconds),
            ("ping_interval_seconds", ping_interval_seconds),
            ("first_reconnect_delay_seconds", first_reconnect_delay_seconds),
            ("max_reconnect_delay_seconds", max_reconnect_delay_seconds),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self._channel = channel
        self._timeout = timeout_seconds
        self._ping_interval = ping_interval_seconds
        self._first_delay = first_reconnect_delay_seconds
        self._max_delay = max(max_reconnect_delay_seconds, first_reconnect_delay_seconds)
        self._hub = events.UpdateHub(max_queued)
        self._redis = client(url, timeout_seconds)
        self._listener: asyncio.Task[None] | None = None
        self._outbox: collections.deque[tuple[events.Update, asyncio.Future[None]]] = (
            collections.deque()
        )
        self._sender: asyncio.Task[None] | None = None
        self._live = False
        self._closed = False
        self._trouble = ThrottledLog(logger)
        self._malformed = ThrottledLog(logger)

    @property
    def is_subscribed(self) -> bool:
        """Whether Redis has confirmed the subscription: new subscriptions get every update
        from now on (a readiness check)."""
        return self._live

    async def start(self) -> None:
        """Subscribe and start relaying; returns once Redis has confirmed the SUBSCRIBE.
        Raises redis.RedisError (or OSError) when Redis cannot be reached."""
        if self._listener is not None:
            raise RuntimeError("the bus is already started")
        try:
            pubsub = await self._subscribed()
        except BaseException:
            await self._redis.aclose()
            raise
        self._live = True
        self._listener = asyncio.create_task(
            self._listen(pubsub), name=f"relay of Redis channel {self._channel}"
        )

    async def publish(self, update: events.Update) -> None:
        if self._closed:  # a client would reconnect, and nobody would close it again
            raise events.PublishFailed(
                f"update of user {update.user.id!r} not published: the bus is closed"
            )
        # Queued before this coroutine first waits, so Redis receives updates in the order
        # publish() was called, which the handlers keep to the order their writes committed.
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((update, sent))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_queued())
        try:
            await asyncio.shield(sent)
        except asyncio.CancelledError:
            sent.add_done_callback(_log_unheard_failure)
            raise

    def subscribe(self, user_ids: Iterable[str]) -> events.Subscription:
        subscription = self._hub.subscribe(user_ids)
        if not self._live:
            subscription.end(UpdatesInterrupted)
        return subscription

    @property
    def subscriber_count(self) -> int:
        return self._hub.subscriber_count

    async def close(self) -> None:
        """End every subscription with HubClosed, finish the publishes under way (each is
        bounded by the timeout), stop the listener and close the connections."""
        self._closed = True
        self._hub.close()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener])
        if self._sender is not None:
            await asyncio.wait([self._sender])
        await self._redis.aclose()

    async def _send_queued(self) -> None:
        """Send what publish() queued, in order: all that waits goes in one pipeline."""
        while self._outbox:
            batch = list(self._outbox)
            self._outbox.clear()
            try:
                async with self._redis.pipeline(transaction=False) as pipeline:
                    for update, _ in batch:
                        pipeline.publish(self._channel, update.SerializeToString())
                    await pipeline.execute()
            except (redis.RedisError, OSError) as error:
                self._hub.end_all(UpdatesInterrupted)
                for update, sent in batch:
                    sent.set_exception(
                        events.PublishFailed(
                            f"update of user {update.user.id!r} not published on Redis "
                            f"channel {self._channel!r}: {error}"
                        )
                    )
                continue
            for _, sent in batch:
                sent.set_result(None)

    async def _listen(self, pubsub: PubSub) -> None:
        try:
            while True:
                try:
                    await self._relay(pubsub)
                except Exception as error:  # whatever broke, updates may be lost
                    self._trouble.warning(
                        "lost the subscription to Redis channel %r: %r", self._channel, error
                    )
                self._live = False
                self._hub.end_all(UpdatesInterrupted)
                await _close(pubsub)
                pubsub = await self._resubscribe()
                self._live = True
                logger.info("resubscribed to Redis channel %r", self._channel)
        finally:
            self._live = False
            await _close(pubsub)

    async def _relay(self, pubsub: PubSub) -> None:
        """Hand every update received to the hub; returns only by raising."""
        clock = asyncio.get_running_loop().time
        heard_at = clock()
        while True:
            message = await pubsub.get_message(timeout=self._ping_interval)
            if message is not None:
                heard_at = clock()
                if message["type"] == "message":
                    self._deliver(message["data"])
            elif clock() - heard_at > 1.5 * self._ping_interval:
                raise redis.TimeoutError(
                    f"no answer to a PING within {self._ping_interval:g} seconds"
                )
            else:
                await pubsub.ping()

    def _deliver(self, data: bytes) -> None:
        try:
            update = events.Update.FromString(data)
        except DecodeError as error:
            self._malformed.warning(
                "skipped a message on Redis channel %r that is not a UserUpdate (%d bytes): %s",
                self._channel,
                len(data),
                error,
            )
            return
        if not update.user.id:
            self._malformed.warning(
                "skipped an update on Redis channel %r that names no user", self._channel
            )
            return
        self._hub.publish(update)

    async def _resubscribe(self) -> PubSub:
        delay = self._first_delay
        while True:
            await asyncio.sleep(random.uniform(delay / 2, delay))
            try:
                return await self._subscribed()
            except (redis.RedisError, OSError) as error:
                self._trouble.warning(
                    "cannot resubscribe to Redis channel %r, retrying: %s", self._channel, error
                )
            delay = min(2 * delay, self._max_delay)

    async def _subscribed(self) -> PubSub:
        """A pub/sub connection whose SUBSCRIBE Redis has confirmed."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            reply = await pubsub.get_message(timeout=self._timeout)
            if reply is None or reply["type"] != "subscribe":
                raise redis.ConnectionError(
                    f"Redis did not confirm SUBSCRIBE {self._channel!r} within "
                    f"{self._timeout:g} seconds (got {reply!r})"
                )
        except BaseException:
            await _close(pubsub)
            raise
        return pubsub


async def _close(pubsub: PubSub) -> None:
    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated


def _log_unheard_failure(sent: asyncio.Future[None]) -> None:
    """A publish whose caller was cancelled: nobody else will report its failure."""
    if not sent.cancelled() and (error := sent.exception()) is not None:
        logger.warning("%s", error)
