"""StreamUserUpdates of the real UserService under load (issue 10): many subscribers that
cancel at random points, the latency of one update, a subscriber too slow to keep up, and a
graceful shutdown with streams open.

The servers run in process on 127.0.0.1 with the access log off, as test_hostile's in-process
servers of cancelled streams do (its module docstring says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import interceptors, serve
from user.v1 import user_client, user_pb2

from examples.userservice import app
from examples.userservice.services.user_service import UserService
from tests.behaviour.test_hostile import (
    assert_ended_cleanly,
    connect,
    open_fds,
    settles,
    steady,
    until,
)
from tests.behaviour.test_production import started
from tests.userservice.harness import config_for, new_user, subscribed

Client = user_client.UserServiceClient
# Its own TCP connection: grpc shares one between channels to the same target otherwise.
OWN_CONNECTION = ("grpc.use_local_subchannel_pool", 1)
WAIT_SECONDS = 10.0


def quiet_settings(grace_seconds: float = 10.0) -> serve.ServerSettings:
    return serve.ServerSettings(
        interceptors=interceptors.InterceptorSettings(access_log=False),
        grace_seconds=grace_seconds,
    )


@contextlib.asynccontextmanager
async def serving(
    folder: Path, settings: serve.ServerSettings | None = None
) -> AsyncIterator[tuple[serve.Service, app.Dependencies]]:
    """The UserService as `make serve` builds it, and the serve.Service itself (its port, and
    stop() for the shutdown test), stopped on exit if the test has not."""
    async with app.running(config_for(folder)) as dependencies:
        service = await started(settings or quiet_settings(), UserService(dependencies))
        try:
            yield service, dependencies
        finally:
            await service.stop(1.0)


async def no_subscribers(dependencies: app.Dependencies) -> int:
    """The subscriber count once it reaches 0, or its value after WAIT_SECONDS."""
    await until(lambda: dependencies.updates.subscriber_count == 0, WAIT_SECONDS)
    return dependencies.updates.subscriber_count


def watch(client: Client, *user_ids: str) -> AsyncIterator[user_pb2.UserUpdate]:
    return client.stream_user_updates(user_pb2.StreamUserUpdatesRequest(user_ids=user_ids))


def rename(user_id: str, number: int, size: int = 8) -> user_pb2.UpdateUserRequest:
    return user_pb2.UpdateUserRequest(
        id=user_id, first_name=f"{number:0{size}d}", last_name="L" * size
    )


# ---------------------------------------------------------------------------------------------
# Many subscribers, cancelled anywhere

SUBSCRIBERS = 200
CHANNELS = 8


async def subscriber(
    client: Client, rng: random.Random, watched: list[str], idle: str
) -> tuple[str, int]:
    """One subscriber of a random kind, cancelled at a random point; its kind and how many
    updates it read."""
    kind = rng.choice(["at once", "idle", "after some", "while flowing"])
    user_ids = [] if rng.random() < 0.5 else [rng.choice(watched)]
    if kind == "idle":  # watches a user nobody changes: cancelled before any update
        user_ids = [idle]
    stream = watch(client, *user_ids)
    if kind == "at once":  # cancelled within 3 ms, maybe before the server even subscribed
        delay = rng.uniform(0, 0.003)
    elif kind == "after some":  # reads a few updates, then leaves mid-stream
        delay, wanted = 3.0, rng.randint(1, 20)
    else:  # cancelled at a random moment while updates flow
        delay = rng.uniform(0.05, 1.0)
    read = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            async for _ in stream:
                read += 1
                if kind == "after some" and read == wanted:
                    break
    await stream.aclose()  # type: ignore[attr-defined]
    return kind, read


async def write_until(done: asyncio.Future[Any], client: Client, users: list[str]) -> int:
    """Update the users in turn until `done` (bounded); how many updates were made."""
    written = 0
    while not done.done() and written < 5000:
        await client.update_user(rename(users[written % len(users)], written))
        written += 1
    return written


def other_tasks() -> set[asyncio.Task[Any]]:
    """The tasks of this loop but the test's own."""
    return asyncio.all_tasks() - {asyncio.current_task()}


async def tasks_back_to(baseline: int) -> list[str]:
    """Once at most `baseline` other tasks are left (bounded wait): nothing, else the tasks.

    A count, not the set: grpc's server keeps one task waiting for the next call, replaced
    by a new one with each call it accepts."""
    await until(lambda: len(other_tasks()) <= baseline, WAIT_SECONDS)
    left = other_tasks()
    return [] if len(left) <= baseline else sorted(repr(task) for task in left)


async def test_200_subscribers_cancelled_at_random_points_leave_nothing_behind(
    tmp_path: Path,
) -> None:
    rng = random.Random(10)
    async with serving(tmp_path) as (service, dependencies), connect(service.port) as writer:
        users = [(await writer.create_user(new_user(n))).user.id for n in range(5)]
        watched, idle = users[:4], users[4]

        async def fds() -> int:
            return open_fds()

        # A stream on a channel of its own first, so grpc's lazily made threads and fds exist
        # before the baseline is taken.
        async with connect(service.port, options=[OWN_CONNECTION]) as warm:
            first = watch(warm)
            pending = asyncio.ensure_future(anext(first))
            await subscribed(dependencies, 1)
            await writer.update_user(rename(users[0], 0))
            await pending
            await first.aclose()  # type: ignore[attr-defined]
        assert await no_subscribers(dependencies) == 0
        gc.collect()
        fd_baseline = await steady(fds)
        task_baseline = len(other_tasks())

        clients = [connect(service.port, options=[OWN_CONNECTION]) for _ in range(CHANNELS)]
        subscribers = [
            asyncio.ensure_future(subscriber(clients[n % CHANNELS], rng, watched, idle))
            for n in range(SUBSCRIBERS)
        ]
        everyone = asyncio.gather(*subscribers)
        await asyncio.sleep(0.05)
        written = await write_until(everyone, writer, watched)
        outcomes = await asyncio.wait_for(everyone, WAIT_SECONDS)
        assert await no_subscribers(dependencies) == 0
        with_channels = open_fds()
        for client in clients:
            await client.close()
        leftover = await tasks_back_to(task_baseline)
        # grpc.aio keeps a stream cancelled before it sent anything, and with it its
        # connection, in a reference cycle until the collector runs: plain grpc.aio does so
        # without any of our code. Collecting first leaves only what is really still held.
        gc.collect()
        fds_after = await settles(fds, fd_baseline)
        # The server still serves.
        assert (await writer.get_user(user_pb2.GetUserRequest(id=idle))).user.id == idle

    kinds = {kind for kind, _ in outcomes}
    assert kinds == {"at once", "idle", "after some", "while flowing"}
    assert all(read == 0 for kind, read in outcomes if kind == "idle")
    assert any(read > 0 for kind, read in outcomes if kind == "while flowing")
    assert written > 20
    assert not leftover, leftover
    assert with_channels > fd_baseline  # the channels' sockets were counted, and then closed
    assert fds_after == fd_baseline, (fd_baseline, with_channels, fds_after)


# ---------------------------------------------------------------------------------------------
# Latency

LATENCY_SAMPLES = 200
LATENCY_WARM_UP = 20


def percentile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


async def test_one_update_on_an_idle_server_reaches_a_subscriber_within_10_ms_at_p99(
    tmp_path: Path,
) -> None:
    """The fan-out latency: from the server committing the write to the subscriber holding
    the update, over 200 updates made one at a time on an otherwise idle server.

    The start is the update's `timestamp`, which the server sets from the wall clock just
    after the store committed, right before it publishes; the end is the wall clock when the
    client's stream yields the update (both clocks are this process's). That measures the
    whole fan-out path - bus, hub, the stream's handler, gRPC's write, the socket and the
    client's read - and nothing of the write itself: the UpdateUser call's own time is the
    store's (a SQLite commit through a worker thread), which varies with the disk and the
    machine's other load and is not what the 10 ms promise is about. The stream gets the
    update before the UpdateUser response arrives (the handler publishes before it answers),
    so measuring from that response would measure nothing.
    """
    async with serving(tmp_path) as (service, dependencies), connect(service.port) as client:
        user = (await client.create_user(new_user())).user
        stream = watch(client, user.id)
        latencies: list[float] = []
        calls: list[float] = []
        for number in range(LATENCY_WARM_UP + LATENCY_SAMPLES):
            arrival = asyncio.ensure_future(anext(stream))
            await subscribed(dependencies, 1)
            began = time.perf_counter()
            await client.update_user(rename(user.id, number))
            update = await asyncio.wait_for(arrival, WAIT_SECONDS)
            received = time.time_ns() // 1000
            if number >= LATENCY_WARM_UP:
                latencies.append((received - update.timestamp.ToMicroseconds()) / 1000)
                calls.append((time.perf_counter() - began) * 1000)
            assert update.user.first_name == rename(user.id, number).first_name
            await asyncio.sleep(0.002)  # idle between updates
        await stream.aclose()  # type: ignore[attr-defined]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    assert p99 < 10.0, (
        f"commit to subscriber: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {max(latencies):.2f} ms"
        f"; UpdateUser call to subscriber: p50 {percentile(calls, 50):.2f} ms,"
        f" p99 {percentile(calls, 99):.2f} ms"
    )


# ---------------------------------------------------------------------------------------------
# A subscriber too slow to keep up

MAX_QUEUED = 1024  # LocalUpdateBus' default
BIG = 100  # characters of each name: each update is ~0.5 KB, filling flow control sooner


async def test_a_subscriber_that_never_reads_is_ended_while_others_go_on(tmp_path: Path) -> None:
    async with (
        serving(tmp_path) as (service, dependencies),
        connect(service.port, options=[OWN_CONNECTION]) as client,
        # No BDP probing: the slow stream's receive window stays at 64 KiB.
        connect(service.port, options=[OWN_CONNECTION, ("grpc.http2.bdp_probe", 0)]) as slow,
    ):
        users = [(await client.create_user(new_user(n))).user.id for n in range(4)]
        never_read = watch(slow)
        opened = asyncio.ensure_future(anext(never_read))  # starts the call, then never reads
        fast = watch(client)
        received: list[user_pb2.UserUpdate] = []

        async def read_fast() -> None:
            async for update in fast:
                received.append(update)

        reader = asyncio.ensure_future(read_fast())
        await subscribed(dependencies, 2)
        written = 0

        async def writer(offset: int) -> None:
            nonlocal written
            # Until the slow stream is dropped, then 50 more each; bounded either way.
            after_drop = 0
            while after_drop < 50 and written < 20_000:
                number = written
                written += 1
                await client.update_user(rename(users[offset], number, size=BIG))
                if dependencies.updates.subscriber_count < 2:
                    after_drop += 1

        began = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(4))), 120)
        writing_took = time.monotonic() - began
        # The fast subscriber got every update, in order, while the slow one was dropped.
        assert await until(lambda: len(received) >= written, WAIT_SECONDS)
        assert dependencies.updates.subscriber_count == 1
        assert len(received) == written
        per_user: dict[str, list[int]] = {}
        for update in received:
            per_user.setdefault(update.user.id, []).append(int(update.user.first_name))
        assert all(numbers == sorted(numbers) for numbers in per_user.values())
        # Reading at last, the slow one gets what was in flight, then the reason it ended.
        drained = 0
        with pytest.raises(runtime.ResourceExhausted) as raised:
            async with asyncio.timeout(WAIT_SECONDS):
                await opened
                drained += 1
                async for _ in never_read:
                    drained += 1
        reader.cancel()
        await asyncio.wait([reader])
    assert raised.value.message == (
        f"the stream fell more than {MAX_QUEUED} updates behind and was ended; resubscribe"
    )
    assert drained < written - MAX_QUEUED, (drained, written)
    assert writing_took < 60, writing_took


# ---------------------------------------------------------------------------------------------
# Graceful shutdown

GRACE = 3.0


@dataclass
class Writes:
    """What write_until_refused did: the outcome of each update, and the one refused."""

    outcomes: list[str] = field(default_factory=list)
    refused: user_pb2.UpdateUserRequest | None = None


async def write_until_refused(client: Client, users: list[str], writes: Writes) -> None:
    """Update the users in turn until the server refuses (bounded): updates flowing when a
    shutdown begins, and while it goes on."""
    for number in range(20_000):
        request = rename(users[number % len(users)], number, size=BIG)
        try:
            await client.update_user(request)
        except runtime.ServiceError as error:
            writes.outcomes.append(type(error).__name__)
            writes.refused = request
            return
        writes.outcomes.append("OK")


async def ended(stream: AsyncIterator[user_pb2.UserUpdate]) -> runtime.ServiceError | None:
    """Read `stream` to its end: None when it ended OK, else its error."""
    try:
        async for _ in stream:
            pass
    except runtime.ServiceError as error:
        return error
    return None


async def test_shutdown_ends_open_streams_cleanly_within_the_grace(tmp_path: Path) -> None:
    async with (
        serving(tmp_path, quiet_settings(grace_seconds=GRACE)) as (service, dependencies),
        connect(service.port) as client,
    ):
        users = [(await client.create_user(new_user(n))).user.id for n in range(3)]
        streams = [watch(client) for _ in range(10)]
        streams += [watch(client, users[n % 3]) for n in range(10)]
        endings = [asyncio.ensure_future(ended(stream)) for stream in streams]
        await subscribed(dependencies, len(streams))
        writes = Writes()
        writer = asyncio.ensure_future(write_until_refused(client, users, writes))
        assert await until(lambda: len(writes.outcomes) >= 50, WAIT_SECONDS)
        began = time.monotonic()
        await asyncio.wait_for(service.stop(GRACE), GRACE + 5)
        stopped_in = time.monotonic() - began
        results = await asyncio.wait_for(asyncio.gather(*endings), 5)
        await asyncio.wait_for(writer, 5)
        assert writes.refused is not None
        refused = await dependencies.repository.get(writes.refused.id)
    assert_ended_cleanly(results)
    # Ended by the service, not left to the grace: UNAVAILABLE, so clients resubscribe.
    assert all(isinstance(result, runtime.Unavailable) for result in results), results
    assert stopped_in < GRACE, stopped_in
    assert dependencies.updates.subscriber_count == 0
    # Writes went on until the server refused new calls: UNAVAILABLE, or CANCELLED for one
    # that grpc had received but not handed to a handler yet. Either way it changed nothing.
    *done, last = writes.outcomes
    assert set(done) == {"OK"} and last in {"Unavailable", "Cancelled"}, writes.outcomes[-3:]
    assert refused is not None and refused.first_name != writes.refused.first_name


@pytest.mark.xfail(
    strict=True,
    reason="server bug: a stream whose handler is blocked writing to a stalled reader is not "
    "ended at stream_grace_seconds; Service.stop() waits out the whole grace and grpc ends "
    "the call with 'Cancelling all calls'",
)
async def test_a_stalled_reader_does_not_hold_the_shutdown_for_the_whole_grace(
    tmp_path: Path,
) -> None:
    async with (
        serving(tmp_path, quiet_settings(grace_seconds=GRACE)) as (service, dependencies),
        connect(service.port) as client,
        connect(service.port, options=[OWN_CONNECTION, ("grpc.http2.bdp_probe", 0)]) as slow,
    ):
        users = [(await client.create_user(new_user(n))).user.id for n in range(3)]
        healthy = asyncio.ensure_future(ended(watch(client)))
        stalled = watch(slow)
        opened = asyncio.ensure_future(anext(stalled))  # starts the call, then never reads
        await subscribed(dependencies, 2)
        writes = Writes()
        writer = asyncio.ensure_future(write_until_refused(client, users, writes))
        # ~300 KB of updates: far more than the stalled stream's windows and buffers hold, so
        # its handler is blocked writing, and far fewer than its queue's 1024.
        assert await until(lambda: len(writes.outcomes) >= 600, 60)
        began = time.monotonic()
        await asyncio.wait_for(service.stop(GRACE), GRACE + 5)
        stopped_in = time.monotonic() - began
        await asyncio.wait_for(writer, 5)
        assert_ended_cleanly([await asyncio.wait_for(healthy, 5)])
        await opened
        stalled_ending = await asyncio.wait_for(ended(stalled), 5)
    assert isinstance(stalled_ending, runtime.Unavailable), stalled_ending
    assert "Cancelling all calls" not in stalled_ending.message
    assert stopped_in < GRACE - 1, stopped_in
