"""UpdateHub and LocalUpdateBus: ordering, filtering, slow readers, shutdown, cancellation."""

from __future__ import annotations

import asyncio
import random

import pytest
from user.v1 import user_pb2

from examples.userservice.events import (
    HubClosed,
    LocalUpdateBus,
    SubscriberTooSlow,
    Subscription,
    UpdateHub,
)

USERS = [f"user-{number}" for number in range(10)]


def _update(user_id: str, number: int = 0) -> user_pb2.UserUpdate:
    return user_pb2.UserUpdate(
        type=user_pb2.UserUpdate.UPDATE_TYPE_UPDATED,
        user=user_pb2.User(id=user_id, first_name=str(number)),
    )


async def _drain(subscription: Subscription) -> list[user_pb2.UserUpdate]:
    """What is queued now (reads of a non-empty queue never wait)."""
    return [await subscription.next() for _ in range(subscription.queued)]


async def test_updates_arrive_in_publish_order():
    hub = UpdateHub()
    with hub.subscribe([]) as subscription:
        updates = [_update(USERS[number % 3], number) for number in range(100)]
        for update in updates:
            hub.publish(update)
        assert [await subscription.next() for _ in updates] == updates


async def test_a_subscription_gets_its_users_and_an_empty_one_every_user():
    hub = UpdateHub()
    one, two, every = hub.subscribe(["a", "a"]), hub.subscribe(["a", "b"]), hub.subscribe([])
    a, b, c = _update("a"), _update("b"), _update("c")
    for update in (a, b, c):
        hub.publish(update)
    assert await _drain(one) == [a]
    assert await _drain(two) == [a, b]
    assert await _drain(every) == [a, b, c]


async def test_a_slow_subscriber_is_ended_while_others_and_the_publisher_go_on():
    hub = UpdateHub(max_queued=4)
    slow = hub.subscribe([])
    received: list[user_pb2.UserUpdate] = []

    async def read_all() -> None:
        with hub.subscribe([]) as fast:
            while len(received) < 10:
                received.append(await fast.next())

    reader = asyncio.create_task(read_all())
    await asyncio.sleep(0)
    updates = [_update("a", number) for number in range(10)]
    for number, update in enumerate(updates):
        hub.publish(update)
        # Removed from the hub by the publish that overflowed it, not at its next read.
        assert hub.subscriber_count == (2 if number < 4 else 1)
        await asyncio.sleep(0)
    await reader
    assert received == updates
    with pytest.raises(SubscriberTooSlow) as raised:
        await slow.next()
    assert str(raised.value) == (
        "the stream fell more than 4 updates behind and was ended; resubscribe"
    )
    assert slow.queued == 0


async def test_what_a_reader_does_not_read_is_bounded():
    hub = UpdateHub(max_queued=8)
    idle = [hub.subscribe(["a"]), hub.subscribe([])]
    for number in range(10_000):
        hub.publish(_update("a", number))
        assert all(subscription.queued <= 8 for subscription in idle)
    assert hub.subscriber_count == 0
    assert hub._by_user == {}


async def test_close_ends_waiting_readers_and_later_subscriptions_with_hub_closed():
    hub = UpdateHub()
    subscription = hub.subscribe(["a"])
    hub.publish(_update("a"))
    waiting = asyncio.create_task(hub.subscribe([]).next())
    await asyncio.sleep(0)
    hub.close()
    with pytest.raises(HubClosed, match="the server is shutting down"):
        await waiting
    with pytest.raises(HubClosed):  # what it had queued is dropped
        await subscription.next()
    with pytest.raises(HubClosed):
        await hub.subscribe(["a"]).next()
    assert hub.subscriber_count == 0


async def test_close_from_another_task_ends_async_for():
    hub = UpdateHub()
    subscription = hub.subscribe([])

    async def read_all() -> list[user_pb2.UserUpdate]:
        return [update async for update in subscription]

    reader = asyncio.create_task(read_all())
    hub.publish(_update("a"))
    await asyncio.sleep(0)
    subscription.close()
    assert await reader == [_update("a")]
    assert hub.subscriber_count == 0


async def test_subscribers_cancelled_anywhere_leave_nothing_behind():
    hub = UpdateHub(max_queued=16)
    rng = random.Random(10)

    async def watch(user_ids: list[str]) -> None:
        with hub.subscribe(user_ids) as subscription:
            async for _ in subscription:
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)

    tasks = [asyncio.create_task(watch(rng.sample(USERS, rng.randrange(4)))) for _ in range(200)]
    for step in range(400):
        hub.publish(_update(rng.choice(USERS), step))
        for task in rng.sample(tasks, 2):
            task.cancel()
        await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert {type(outcome) for outcome in outcomes} <= {asyncio.CancelledError, SubscriberTooSlow}
    assert hub.subscriber_count == 0
    assert hub._by_user == {}
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_waiting_reader_has_the_update_one_loop_iteration_after_publish():
    hub = UpdateHub()
    received: list[user_pb2.UserUpdate] = []

    async def read_one() -> None:
        with hub.subscribe(["a"]) as subscription:
            received.append(await subscription.next())

    reader = asyncio.create_task(read_one())
    await asyncio.sleep(0)  # the reader subscribes and waits
    assert hub.subscriber_count == 1
    hub.publish(_update("a"))
    await asyncio.sleep(0)
    assert received == [_update("a")]
    await reader


async def test_an_update_woken_for_a_cancelled_reader_is_kept_for_the_next_read():
    hub = UpdateHub()
    subscription = hub.subscribe([])
    reader = asyncio.create_task(subscription.next())
    await asyncio.sleep(0)
    hub.publish(_update("a"))
    reader.cancel()  # before it ran to take the update
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await subscription.next() == _update("a")


async def test_publish_visits_only_the_interested_subscriptions(monkeypatch):
    offered = 0
    offer = Subscription._offer

    def counting_offer(subscription: Subscription, update: user_pb2.UserUpdate) -> bool:
        nonlocal offered
        offered += 1
        return offer(subscription, update)

    monkeypatch.setattr(Subscription, "_offer", counting_offer)
    hub = UpdateHub()
    for number in range(10_000):
        hub.subscribe([f"other-{number}"])
    hub.subscribe(["a"])
    hub.subscribe([])
    hub.publish(_update("a"))
    assert offered == 2


async def test_a_subscription_has_one_reader():
    hub = UpdateHub()
    subscription = hub.subscribe([])
    first = asyncio.create_task(subscription.next())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="another task is already reading"):
        await subscription.next()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


def test_max_queued_must_be_positive():
    with pytest.raises(ValueError, match="max_queued must be at least 1, got 0"):
        UpdateHub(max_queued=0)


async def test_local_bus_delivers_published_updates_and_closes_with_hub_closed():
    bus = LocalUpdateBus()
    await bus.start()
    with bus.subscribe(["a"]) as subscription:
        await bus.publish(_update("b"))
        await bus.publish(_update("a"))
        assert await subscription.next() == _update("a")
        await bus.close()
        with pytest.raises(HubClosed):
            await subscription.next()
