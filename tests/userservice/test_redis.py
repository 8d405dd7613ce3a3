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
from examples.userservice.cache import (
    DEFAULT_KEY_PREFIX,
    CacheUnavailable,
    NoCache,
    RedisUserCache,
)
from examples.userservice.redis_events import DEFAULT_CHANNEL, RedisUpdateBus, UpdatesInterrupted

if TYPE_CHECKING:
    from tests.userservice.redis_server import RedisServer


def _update(user_id: str, number: int = 0) -> user_pb2.UserUpdate:
    return user_pb2.UserUpdate(
        type=user_pb2.UserUpdate.UPDATE_TYPE_UPDATED,
        user=user_pb2.User(id=user_id, first_name=str(number)),
    )


@contextlib.asynccontextmanager
async def _started(url: str, *, quick: bool = False) -> AsyncIterator[RedisUpdateBus]:
    """A started bus; a quick one notices trouble and comes back in fractions of a second."""
    bus = (
        RedisUpdateBus(
            url,
            timeout_seconds=0.5,
            ping_interval_seconds=0.2,
            first_reconnect_delay_seconds=0.02,
            max_reconnect_delay_seconds=0.1,
        )
        if quick
        else RedisUpdateBus(url)
    )
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
    async with _started(private_redis.url, quick=True) as bus:
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
    async with _started(private_redis.url, quick=True) as bus:
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
    with pytest.raises(events.PublishFailed, match="not published: the bus is closed"):
        await bus.publish(_update("a"))


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


# The cache ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _cache(
    url: str, *, ttl_seconds: float = 300.0, timeout_seconds: float = 1.0
) -> AsyncIterator[RedisUserCache]:
    cache = RedisUserCache(url, ttl_seconds=ttl_seconds, timeout_seconds=timeout_seconds)
    try:
        yield cache
    finally:
        await cache.close()


def _user(version: int) -> bytes:
    return user_pb2.User(id="u", first_name=f"version {version}").SerializeToString()


async def _ttl_ms(url: str, user_id: str) -> int:
    async with redis.asyncio.Redis.from_url(url) as raw:
        ttl: int = await raw.pttl(DEFAULT_KEY_PREFIX + user_id)
        return ttl


async def test_offer_keeps_only_a_newer_version(empty_redis_url):
    async with _cache(empty_redis_url) as cache:
        assert await cache.get("u") is None
        await cache.offer("u", 2, _user(2))
        assert await cache.get("u") == _user(2)
        await cache.offer("u", 1, _user(1))
        await cache.offer("u", 2, b"another copy")
        assert await cache.get("u") == _user(2)
        await cache.offer("u", 3, _user(3))
        assert await cache.get("u") == _user(3)


async def test_a_deleted_user_is_not_brought_back_by_a_late_offer(empty_redis_url):
    async with _cache(empty_redis_url) as cache:
        await cache.offer("u", 1, _user(1))
        async with cache.writing("u") as write:
            write.forget(2)
        assert await cache.get("u") is None
        await cache.offer("u", 1, _user(1))
        assert await cache.get("u") is None


async def test_every_entry_expires(empty_redis_url):
    async with _cache(empty_redis_url, ttl_seconds=30) as cache:
        await cache.offer("read", 1, _user(1))
        async with cache.writing("written") as write:
            write.offer(2, _user(2))
        async with cache.writing("deleted") as write:
            write.forget(2)
        for user_id in ("read", "written", "deleted"):
            assert 25_000 < await _ttl_ms(empty_redis_url, user_id) <= 30_000


@pytest.mark.parametrize("late_offer", ["during the write", "after the write"])
async def test_a_racing_reader_cannot_cache_the_old_user(empty_redis_url, late_offer):
    async with _cache(empty_redis_url) as cache:
        # The reader misses and reads version 1 from the store...
        assert await cache.get("u") is None
        read = (1, _user(1))
        # ...the writer commits version 2 and writes it through...
        async with cache.writing("u") as write:
            assert await cache.get("u") is None  # nothing is served while a write is under way
            if late_offer == "during the write":
                await cache.offer("u", *read)
            write.offer(2, _user(2))
        # ...and the reader's offer of what it read comes last.
        await cache.offer("u", *read)
        assert await cache.get("u") == _user(2)


async def test_a_failed_write_through_leaves_the_user_uncached_not_stale(
    empty_redis_url, monkeypatch, caplog
):
    async with _cache(empty_redis_url) as cache:
        await cache.offer("u", 1, _user(1))

        async def unreachable(**_: object) -> None:
            raise redis.ConnectionError("Redis went away")

        with monkeypatch.context() as patch:
            patch.setattr(cache, "_finish_write", unreachable)
            async with cache.writing("u") as write:
                write.offer(2, _user(2))
        assert "user cache write-through failed" in caplog.text
        assert await cache.get("u") is None
        await cache.offer("u", 1, _user(1))
        await cache.offer("u", 2, _user(2))
        assert await cache.get("u") is None  # readers do not fill it either...
        assert await _ttl_ms(empty_redis_url, "u") > 0  # ...until it expires


async def test_a_write_that_says_nothing_leaves_the_user_uncached(empty_redis_url):
    async with _cache(empty_redis_url) as cache:
        await cache.offer("u", 1, _user(1))
        with pytest.raises(ConnectionResetError):
            async with cache.writing("u"):
                raise ConnectionResetError  # the store failed mid-commit: written or not?
        assert await cache.get("u") is None
        assert await _ttl_ms(empty_redis_url, "u") > 0


async def test_an_unchanged_user_is_served_again(empty_redis_url):
    async with _cache(empty_redis_url) as cache:
        await cache.offer("u", 1, _user(1))
        async with cache.writing("u") as write:
            write.unchanged()
        assert await cache.get("u") == _user(1)


async def test_concurrent_writes_serve_the_newest_once_both_are_done(empty_redis_url):
    async with _cache(empty_redis_url) as cache:
        first, second = cache.writing("u"), cache.writing("u")
        first_write, second_write = await first.__aenter__(), await second.__aenter__()
        second_write.offer(3, _user(3))
        await second.__aexit__(None, None, None)
        assert await cache.get("u") is None  # the first is still under way
        first_write.offer(2, _user(2))
        await first.__aexit__(None, None, None)
        assert await cache.get("u") == _user(3)


async def test_with_redis_down_reads_miss_and_writes_are_refused(
    private_redis: RedisServer, caplog
):
    logger = "examples.userservice.cache"
    caplog.set_level(logging.WARNING, logger)
    private_redis.stop()
    async with _cache(private_redis.url, timeout_seconds=0.5) as cache:
        assert await cache.get("u") is None
        assert await cache.get("u") is None
        await cache.offer("u", 1, _user(1))
        with pytest.raises(CacheUnavailable, match="nothing was changed; retry"):
            async with cache.writing("u"):
                pytest.fail("the write went ahead without its cache mark")
    records = [record for record in caplog.records if record.name == logger]
    assert len(records) == 1, [record.getMessage() for record in records]
    assert records[0].getMessage().startswith("user cache read failed, reading the store")


async def test_no_cache_misses_and_takes_any_write():
    cache = NoCache()
    await cache.offer("u", 1, _user(1))
    async with cache.writing("u") as write:
        write.offer(2, _user(2))
    assert await cache.get("u") is None
    await cache.close()


def test_cache_ttl_must_be_positive():
    with pytest.raises(ValueError, match=r"ttl_seconds must be at least 0\.001, got 0"):
        RedisUserCache("redis://127.0.0.1:1/0", ttl_seconds=0)
