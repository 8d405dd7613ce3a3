"""Load on one UserService with the SQLite store, in process, checked exactly.

`test_writes_under_load`: writer tasks create, update and read users for a few seconds while
update streams (every user, and chosen ids) stay open throughout and two more join half way.
Every user but a few "hot" ones belongs to one writer, which updates it one call at a time,
so its acknowledged writes are its commit order. Afterwards: no call failed; each stream open
throughout carried exactly the acknowledged writes of its users, in that order; a stream that
joined late carried a suffix of them holding every write started after it was listening; a hot
user, updated by every writer at once, reached every stream in one order, once per
acknowledged update, ending in the state stored; throughput did not fall as the table grew;
the file holds exactly what was acknowledged and passes integrity_check.

`test_paging_is_exact_during_inserts`: 10,000 users, paged through ListUsers (by id, by
created_at descending, by email) while other tasks insert users: no id on two pages, every
user that existed before paging appears exactly once, in order.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import random
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from user.v1 import user_client, user_pb2

from examples.userservice import app
from examples.userservice.store.base import NewUser, UserStatements
from tests.userservice.harness import config_for, new_user, served, subscribed

Client = user_client.UserServiceClient
Update = user_pb2.UserUpdate
CREATED, UPDATED = Update.UPDATE_TYPE_CREATED, Update.UPDATE_TYPE_UPDATED

SEED = 20240611
# Longer than the proto's 5 s: on this shared machine a commit has stalled for seconds
# (other processes' I/O), and a slow disk is not a failed call. A hang still fails.
CALL_TIMEOUT = 30.0
WRITERS = 16
OWNED_AT_START = 3  # users each writer owns before the run
HOT_USERS = 3
RUN_SECONDS = 8.0
WINDOWS = 5
EXTRA_WINDOWS = 3
SLICES_PER_WINDOW = 4
MIN_LAST_TO_FIRST = 0.7  # the last window's calls per CPU second over the first's
DRAIN_SECONDS = 20.0
END = "end"  # the sentinel user's last_name once every write is done
ROLES = (user_pb2.USER_ROLE_USER, user_pb2.USER_ROLE_ADMIN, user_pb2.USER_ROLE_MODERATOR)

# (type, user id, last_name, role, updated_at in µs): what identifies one write on a stream.
Event = tuple[int, str, str, int, int]


def micros(stamp: timestamp_pb2.Timestamp) -> int:
    return stamp.seconds * 1_000_000 + stamp.nanos // 1000


def event(kind: int, user: user_pb2.User) -> Event:
    return (kind, user.id, user.last_name, user.role, micros(user.updated_at))


@dataclass
class Ledger:
    """What the writers had acknowledged, and when each write started."""

    history: dict[str, list[tuple[Event, int]]] = field(default_factory=dict)  # owned users
    hot: dict[str, dict[str, int]] = field(default_factory=dict)  # hot id -> last_name -> start
    latest: dict[str, user_pb2.User] = field(default_factory=dict)  # owned users' last ack
    updates: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    completed: list[float] = field(default_factory=list)  # when each call finished, in order
    running: bool = True
    slowest: float = 0.0  # the longest call, in seconds
    started: int = 0  # writes started so far; a write's number is the count after it
    creates: int = 0
    reads: int = 0

    def start(self) -> int:
        self.started += 1
        return self.started


@dataclass
class Stream:
    """One subscriber: its ids (none for every user) and what it received up to END."""

    user_ids: tuple[str, ...]
    listening_after: int = 0  # Ledger.started when the server had registered it
    received: list[Event] = field(default_factory=list)

    def watches(self, user_id: str) -> bool:
        return not self.user_ids or user_id in self.user_ids

    def of(self, user_id: str) -> list[Event]:
        return self._by_user.get(user_id, [])

    @functools.cached_property
    def _by_user(self) -> dict[str, list[Event]]:  # read once the stream has ended
        grouped: dict[str, list[Event]] = {}
        for received in self.received:
            grouped.setdefault(received[1], []).append(received)
        return grouped


async def read_stream(client: Client, stream: Stream, sentinel: str) -> None:
    request = user_pb2.StreamUserUpdatesRequest(user_ids=stream.user_ids)
    async for update in client.stream_user_updates(request):
        if update.user.id == sentinel and update.user.last_name == END:
            return
        stream.received.append(event(update.type, update.user))
    raise AssertionError("the stream ended before the sentinel")


async def subscribe(
    client: Client, dependencies: app.Dependencies, streams: list[Stream], sentinel: str
) -> list[asyncio.Task[None]]:
    """Open the streams and return once the server has registered all of them."""
    before = dependencies.updates.subscriber_count
    tasks = [asyncio.create_task(read_stream(client, s, sentinel)) for s in streams]
    await subscribed(dependencies, before + len(streams))
    return tasks


async def writer(
    client: Client, ledger: Ledger, name: int, owned: list[str], hot: list[str]
) -> None:
    """Create, update and read while the run lasts; every call must succeed."""
    rng = random.Random(SEED + name)
    number = 0
    while ledger.running:
        number += 1
        begun = time.monotonic()
        choice = rng.random()
        if choice < 0.2:
            ledger.creates += 1
            start = ledger.start()
            request = new_user(last_name="v0", email=f"load-{uuid.uuid4().hex}@example.com")
            user = (await client.create_user(request, timeout=CALL_TIMEOUT)).user
            owned.append(user.id)
            ledger.history[user.id] = [(event(CREATED, user), start)]
            ledger.latest[user.id] = user
        elif choice < 0.75:
            user_id = rng.choice(owned)
            version = ledger.updates[user_id] + 1
            start = ledger.start()
            user = (
                await client.update_user(
                    user_pb2.UpdateUserRequest(
                        id=user_id,
                        last_name=f"v{version}",
                        role=ROLES[version % len(ROLES)],
                        update_mask=field_mask_pb2.FieldMask(paths=["last_name", "role"]),
                    ),
                    timeout=CALL_TIMEOUT,
                )
            ).user
            assert user.last_name == f"v{version}"
            ledger.updates[user_id] += 1
            ledger.history.setdefault(user_id, []).append((event(UPDATED, user), start))
            ledger.latest[user_id] = user
        elif choice < 0.9:
            user_id = rng.choice(hot)
            token = f"h{name}-{number}"
            start = ledger.start()
            await client.update_user(
                user_pb2.UpdateUserRequest(id=user_id, last_name=token), timeout=CALL_TIMEOUT
            )
            ledger.hot[user_id][token] = start
        else:
            user_id = rng.choice(owned)
            ledger.reads += 1
            got = (
                await client.get_user(user_pb2.GetUserRequest(id=user_id), timeout=CALL_TIMEOUT)
            ).user
            if user_id in ledger.latest:  # read your own writes
                assert got == ledger.latest[user_id]
        finished = time.monotonic()
        ledger.completed.append(finished)
        ledger.slowest = max(ledger.slowest, finished - begun)


def stored(database: Path) -> tuple[str, dict[str, tuple[str, str, str, int, int, int]]]:
    """integrity_check and every row: id -> (email, first_name, last_name, role, updated_at,
    version), read with sqlite3 itself."""
    connection = sqlite3.connect(database)
    try:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        rows = connection.execute(
            "SELECT id, email, first_name, last_name, role, updated_at, version FROM users"
        ).fetchall()
    finally:
        connection.close()
    return integrity, {row[0]: tuple(row[1:]) for row in rows}


async def clock(ledger: Ledger, start: float) -> list[tuple[int, int]]:
    """Time the run and end it (set `ledger.running` false): WINDOWS windows, and up to
    EXTRA_WINDOWS more while the last one falls short of the first. Each window's rate is
    its best slice's, in calls per second and calls per CPU second of this process (server,
    client and store threads alike): other processes on the machine only ever slow a slice
    down, and a share of the CPU taken by them costs wall time, not CPU time. A store whose
    calls cost more as the table grows keeps falling short, however long the run."""
    slice_seconds = RUN_SECONDS / WINDOWS / SLICES_PER_WINDOW
    marks = [(time.monotonic(), time.process_time())]
    windows: list[tuple[int, int]] = []
    try:
        while True:
            await asyncio.sleep(start + len(marks) * slice_seconds - time.monotonic())
            marks.append((time.monotonic(), time.process_time()))
            if (len(marks) - 1) % SLICES_PER_WINDOW:
                continue
            windows.append(best_slice(ledger.completed, marks[-SLICES_PER_WINDOW - 1 :]))
            if len(windows) >= WINDOWS and (
                flat(windows) or len(windows) == WINDOWS + EXTRA_WINDOWS
            ):
                return windows
    finally:
        ledger.running = False


def best_slice(completed: list[float], marks: list[tuple[float, float]]) -> tuple[int, int]:
    rates = []
    for (begin, cpu_begin), (end, cpu_end) in itertools.pairwise(marks):
        calls = bisect.bisect_left(completed, end) - bisect.bisect_left(completed, begin)
        rates.append((calls / (end - begin), calls / max(cpu_end - cpu_begin, 1e-3)))
    return round(max(wall for wall, _ in rates)), round(max(cpu for _, cpu in rates))


def flat(windows: list[tuple[int, int]]) -> bool:
    return windows[-1][1] >= MIN_LAST_TO_FIRST * windows[0][1]


async def test_writes_under_load(tmp_path: Path) -> None:
    ledger = Ledger()
    async with served(config_for(tmp_path)) as (client, dependencies):
        # Users made before any stream listens: streams see only what follows.
        owned = [
            [
                (await client.create_user(new_user(w * 10 + n))).user.id
                for n in range(OWNED_AT_START)
            ]
            for w in range(WRITERS)
        ]
        hot = [(await client.create_user(new_user(1000 + n))).user.id for n in range(HOT_USERS)]
        ledger.hot = {user_id: {} for user_id in hot}
        sentinel = (await client.create_user(new_user(2000))).user.id
        throughout = [
            Stream(()),
            Stream(()),
            Stream((*[i for ids in owned[:4] for i in ids], sentinel)),
            Stream((*hot, sentinel)),
            Stream((*[ids[0] for ids in owned], hot[0], sentinel)),
        ]
        late = [Stream(()), Stream((*[i for ids in owned[4:8] for i in ids], hot[1], sentinel))]
        readers = await subscribe(client, dependencies, throughout, sentinel)

        clocked = asyncio.create_task(clock(ledger, time.monotonic()))
        writers = [
            asyncio.create_task(writer(client, ledger, w, owned[w], hot)) for w in range(WRITERS)
        ]
        try:
            await asyncio.sleep(RUN_SECONDS / 2)
            for stream in late:  # one at a time, so each knows when it was listening
                readers += await subscribe(client, dependencies, [stream], sentinel)
                stream.listening_after = ledger.started
            await asyncio.gather(*writers)  # the first failed call fails the test
            windows = await clocked
            await client.update_user(user_pb2.UpdateUserRequest(id=sentinel, last_name=END))
            async with asyncio.timeout(DRAIN_SECONDS):
                await asyncio.gather(*readers)
        finally:
            for task in (clocked, *writers, *readers):
                task.cancel()

    # Streams open throughout: exactly the acknowledged writes, in commit order.
    for n, stream in enumerate(throughout):
        for user_id, history in ledger.history.items():
            expected = [e for e, _ in history] if stream.watches(user_id) else []
            assert stream.of(user_id) == expected, f"stream {n}, user {user_id}"
    # Hot users: one order for every stream; each acknowledged update exactly once.
    for user_id, tokens in ledger.hot.items():
        orders = [[e[2] for e in s.of(user_id)] for s in throughout if s.watches(user_id)]
        assert all(order == orders[0] for order in orders[1:]), f"hot user {user_id}"
        assert sorted(orders[0]) == sorted(tokens), f"hot user {user_id}"
        # The handler stamps updated_at just before handing the write to the store's one
        # writer thread, so later commits carry later times.
        times = [e[4] for e in throughout[0].of(user_id)]
        assert times == sorted(times), f"hot user {user_id}: updated_at went back"
    # Streams that joined late: a suffix, holding every write started after they listened.
    for n, stream in enumerate(late):
        for user_id in (*ledger.history, *ledger.hot):
            if not stream.watches(user_id):
                assert not stream.of(user_id)
                continue
            if user_id in ledger.hot:
                full = throughout[0].of(user_id)
                owed = {t for t, s in ledger.hot[user_id].items() if s > stream.listening_after}
            else:
                full = [e for e, _ in ledger.history[user_id]]
                owed = {e[2] for e, s in ledger.history[user_id] if s > stream.listening_after}
            seen = stream.of(user_id)
            assert seen == full[len(full) - len(seen) :], f"late stream {n}, user {user_id}"
            assert owed <= {e[2] for e in seen}, f"late stream {n}, user {user_id}"

    per_second = [wall for wall, _ in windows]
    per_cpu_second = [cpu for _, cpu in windows]
    assert flat(windows), (
        f"calls per CPU second by window: {per_cpu_second} (per second: {per_second})"
    )

    integrity, rows = stored(tmp_path / "users.db")
    assert integrity == "ok"
    created_before = WRITERS * OWNED_AT_START + HOT_USERS + 1
    assert len(rows) == created_before + ledger.creates
    for user_id, user in ledger.latest.items():
        assert rows[user_id][:5] == (
            user.email,
            user.first_name,
            user.last_name,
            user.role,
            micros(user.updated_at),
        ), user_id
        assert rows[user_id][5] == 1 + ledger.updates[user_id], user_id
    for user_id, tokens in ledger.hot.items():
        last = throughout[0].of(user_id)[-1]
        assert rows[user_id][2] == last[2] and rows[user_id][4] == last[4]
        assert rows[user_id][5] == 1 + len(tokens)
    assert rows[sentinel][5] == 2
    untouched = set(rows) - set(ledger.latest) - set(ledger.hot) - {sentinel}
    assert [rows[user_id][5] for user_id in untouched] == [1] * len(untouched)
    events = sum(len(s.received) for s in (*throughout, *late))
    print(
        f"load: {len(ledger.completed)} calls in {len(windows)} windows ({ledger.started} writes,"
        f" {ledger.creates} creates, {ledger.reads} reads, slowest {ledger.slowest:.2f} s),"
        f" {events} stream events;"
        f" calls/s by window {per_second}, per CPU second {per_cpu_second}"
    )


# --- Paging -----------------------------------------------------------------------------

SEEDED = 10_000
PAGE_SIZE = 100
MAX_PAGES = 10 * SEEDED // PAGE_SIZE  # the seeded users fill a tenth of them
INSERTERS = 4
# order_by -> the order it means (the store breaks ties by id, in the last key's direction).
ORDERINGS: dict[str, tuple[Callable[[user_pb2.User], tuple[str | int, ...]], bool]] = {
    "": (lambda u: (u.id,), False),
    "created_at desc": (lambda u: (micros(u.created_at), u.id), True),
    "email": (lambda u: (u.email, u.id), False),
}


def seed(database: Path, users: list[NewUser]) -> None:
    """Insert `users` in one transaction, with the store's own INSERT statement."""
    statements = UserStatements("?{}")
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout = 5000")
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            statements.insert, [statements.insert_parameters(u) for u in users]
        ).fetchall()
        connection.execute("COMMIT")
    finally:
        connection.close()


async def page_through(client: Client, order_by: str) -> list[user_pb2.User]:
    users: list[user_pb2.User] = []
    token = ""
    for _ in range(MAX_PAGES):
        page = await client.list_users(
            user_pb2.ListUsersRequest(page_size=PAGE_SIZE, page_token=token, order_by=order_by),
            timeout=CALL_TIMEOUT,
        )
        users.extend(page.users)
        token = page.next_page_token
        if not token:
            return users
    pytest.fail(
        f"order_by {order_by!r}: no last page after {MAX_PAGES} pages of {PAGE_SIZE}"
        f" ({len(users)} users listed, {SEEDED} seeded): inserts outran the cursor,"
        " or the page token never ends"
    )


async def insert_until(client: Client, done: asyncio.Event, rng: random.Random) -> list[str]:
    ids = []
    while not done.is_set():
        # Random emails land on every page of the email order, before and after the cursor.
        email = f"{rng.getrandbits(40):010x}-new@example.com"
        created = await client.create_user(new_user(email=email), timeout=CALL_TIMEOUT)
        ids.append(created.user.id)
    return ids


@pytest.fixture
async def seeded(
    tmp_path: Path,
) -> AsyncIterator[tuple[Client, list[NewUser]]]:
    rng = random.Random(SEED)
    async with served(config_for(tmp_path)) as (client, dependencies):
        password_hash = await dependencies.passwords.hash("correct horse battery")
        base = time.time_ns() // 1000 - 10_000_000
        users = [
            NewUser(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                email=f"{rng.getrandbits(40):010x}-{n}@example.com",
                first_name="Seed",
                last_name=f"Seed{n}",
                role=user_pb2.USER_ROLE_USER,
                password_hash=password_hash,
                created_at=base + n // 4,  # ties, so the id tie-break matters
            )
            for n in range(SEEDED)
        ]
        await asyncio.to_thread(seed, tmp_path / "users.db", users)
        yield client, users


async def test_paging_is_exact_during_inserts(seeded: tuple[Client, list[NewUser]]) -> None:
    client, users = seeded
    before = {user.id for user in users}
    done = asyncio.Event()
    rng = random.Random(SEED)
    inserters = [
        asyncio.create_task(insert_until(client, done, random.Random(rng.random())))
        for _ in range(INSERTERS)
    ]
    started = time.monotonic()
    try:
        listings = await asyncio.gather(*(page_through(client, order) for order in ORDERINGS))
    finally:
        done.set()
        inserted = {user_id for ids in await asyncio.gather(*inserters) for user_id in ids}
    elapsed = time.monotonic() - started
    counts = []
    for (order_by, (key, reverse)), listed in zip(ORDERINGS.items(), listings, strict=True):
        ids = [user.id for user in listed]
        assert len(ids) == len(set(ids)), f"{order_by!r}: an id on two pages"
        assert before <= set(ids), f"{order_by!r}: {len(before - set(ids))} users missed"
        assert set(ids) <= before | inserted, f"{order_by!r}: users nobody made"
        assert ids == [u.id for u in sorted(listed, key=key, reverse=reverse)], (
            f"{order_by!r}: out of order"
        )
        counts.append(len(ids) - len(before))
    assert inserted, "no insert ran while paging"
    print(
        f"paging: {SEEDED} seeded users x {len(ORDERINGS)} orders in {elapsed:.1f} s while"
        f" {len(inserted)} users were inserted; new users seen per order {counts}"
    )
