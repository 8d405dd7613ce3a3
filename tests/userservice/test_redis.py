"""RedisUpdateBus and RedisUserCache against a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import redis
import redis.asyncio
from user.v1 import user_pb2

from examples.userservice import events
from examples.userservice.redis_events import DEFAULT_CHANNEL, RedisUpdateBus, UpdatesInterrupted

if TYPE_CHECKING:
    from tests.userservice.redis_server import RedisServer

pytest_plugins = ["tests.userservice.redis_server"]

# Quick to notice trouble and to come back, so the tests take fractions of a second.
FAST = {
    "timeout_seconds": 0.5,
    "ping_interval_seconds": 0.2,
    "first_reconnect_delay_seconds": 0.02,
    "max_reconnect_delay_seconds": 0.1,
}


def _update(user_id: str, number: int = 0) -> user_pb2.UserUpdate:
    return user_pb2.UserUpdate(
        type=user_pb2.UserUpdate.UPDATE_TYPE_UPDATED,
        user=user_pb2.User(id=user_id, first_name=str(number)),
    )


@contextlib.asynccontextmanager
async def _started(url: str, **options: float) -> AsyncIterator[RedisUpdateBus]:
    bus = RedisUpdateBus(url, **options)  # type: ignore[arg-type]
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


async def _collect(subscription: events.Subscription, count: int) -> list[user_pb2.UserUpdate]:
    async with asyncio.timeout(10):
        return [await subscription.next() for _ in range(count)]


async def _until_subscribed(bus: RedisUpdateBus) -> None:
    for _ in range(1000):
        if bus.is_subscribed:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the bus did not resubscribe within 10 seconds")


async def test_every_instance_delivers_every_update_once_in_one_order(empty_redis_url):
    async with _started(empty_redis_url) as a, _started(empty_redis_url) as b:
        on_a, on_b, one_user = a.subscribe([]), b.subscribe([]), b.subscribe(["user-3"])
        from_a = [_update(f"user-{number % 7}", number) for number in range(1000)]
        from_b = [_update(f"user-{number % 5}", -number) for number in range(1, 1001)]
        expected_for_user = sum(update.user.id == "user-3" for update in from_a + from_b)
        collecting = [
            asyncio.create_task(_collect(on_a, 2000)),
            asyncio.create_task(_collect(on_b, 2000)),
            asyncio.create_task(_collect(one_user, expected_for_user)),
        ]

        async def publish_all(bus: RedisUpdateBus, updates: list[user_pb2.UserUpdate]) -> None:
            for update in updates:
                await bus.publish(update)

        await asyncio.gather(publish_all(a, from_a), publish_all(b, from_b))
        seen_on_a, seen_on_b, seen_for_user = await asyncio.gather(*collecting)
        assert one_user.queued == on_a.queued == on_b.queued == 0  # nothing twice
    assert seen_on_a == seen_on_b
    assert [update for update in seen_on_a if update in from_a] == from_a
    assert [update for update in seen_on_a if update in from_b] == from_b
    assert seen_for_user == [update for update in seen_on_a if update.user.id == "user-3"]


async def test_an_update_published_right_after_start_is_delivered(empty_redis_url):
    async with _started(empty_redis_url) as a, _started(empty_redis_url) as b:
        subscription = b.subscribe(["a"])
        await a.publish(_update("a"))
        assert await _collect(subscription, 1) == [_update("a")]


async def test_malformed_messages_are_skipped_and_logged_once(empty_redis_url, caplog):
    caplog.set_level(logging.WARNING, "examples.userservice.redis_events")
    async with (
        _started(empty_redis_url) as bus,
        redis.asyncio.Redis.from_url(empty_redis_url) as raw,
    ):
        subscription = bus.subscribe([])
        await raw.publish(DEFAULT_CHANNEL, b"\xff\xff\xff")
        await raw.publish(DEFAULT_CHANNEL, user_pb2.UserUpdate().SerializeToString())
        await raw.publish(DEFAULT_CHANNEL, b"\x0a\x05")
        await bus.publish(_update("a"))
        assert await _collect(subscription, 1) == [_update("a")]
        assert bus.is_subscribed
    skipped = [record for record in caplog.records if "skipped" in record.getMessage()]
    assert len(skipped) == 1
    assert (
        skipped[0]
        .getMessage()
        .startswith(
            f"skipped a message on Redis channel {DEFAULT_CHANNEL!r} that is not a UserUpdate (3 bytes)"
        )
    )


async def test_a_dropped_connection_ends_subscriptions_and_the_bus_recovers(
    private_redis: RedisServer,
):
    async with _started(private_redis.url, **FAST) as bus:
        waiting = asyncio.create_task(bus.subscribe([]).next())
        await asyncio.sleep(0)
        private_redis.kill()
        with pytest.raises(UpdatesInterrupted, match=r"^update stream interrupted; resubscribe$"):
            async with asyncio.timeout(5):
                await waiting
        assert not bus.is_subscribed
        with pytest.raises(UpdatesInterrupted):  # a subscription made while away
            await bus.subscribe([]).next()
        with pytest.raises(events.PublishFailed, match="update of user 'a' not published"):
            await bus.publish(_update("a"))
        private_redis.start()
        await _until_subscribed(bus)
        subscription = bus.subscribe(["a"])
        await bus.publish(_update("a"))
        assert await _collect(subscription, 1) == [_update("a")]


async def test_a_server_that_stops_answering_ends_subscriptions(private_redis: RedisServer):
    async with _started(private_redis.url, **FAST) as bus:
        waiting = asyncio.create_task(bus.subscribe([]).next())
        await asyncio.sleep(0)
        private_redis.freeze()
        try:
            with pytest.raises(UpdatesInterrupted):
                async with asyncio.timeout(5):
                    await waiting
        finally:
            private_redis.thaw()
        await _until_subscribed(bus)
        subscription = bus.subscribe([])
        await bus.publish(_update("a"))
        assert await _collect(subscription, 1) == [_update("a")]


async def test_a_publish_whose_caller_is_cancelled_still_goes_out(empty_redis_url):
    async with _started(empty_redis_url) as bus:
        subscription = bus.subscribe([])
        publishing = asyncio.create_task(bus.publish(_update("a")))
        await asyncio.sleep(0)
        publishing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await publishing
        assert await _collect(subscription, 1) == [_update("a")]


async def test_close_ends_subscriptions_and_leaves_no_task(empty_redis_url):
    bus = RedisUpdateBus(empty_redis_url)
    await bus.start()
    subscription = bus.subscribe([])
    await bus.publish(_update("a"))
    await bus.close()
    with pytest.raises(events.HubClosed):
        await subscription.next()
    assert not bus.is_subscribed
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_start_fails_when_redis_is_unreachable(private_redis: RedisServer):
    url = private_redis.url
    private_redis.stop()
    bus = RedisUpdateBus(url, timeout_seconds=0.5)
    with pytest.raises(redis.ConnectionError):
        await bus.start()
    assert asyncio.all_tasks() == {asyncio.current_task()}


def test_timeouts_must_be_positive():
    with pytest.raises(ValueError, match="ping_interval_seconds must be positive, got 0"):
        RedisUpdateBus("redis://127.0.0.1:1/0", ping_interval_seconds=0)
