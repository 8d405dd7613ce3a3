"""The stores behind UserRepository: every test runs on SQLite and on PostgreSQL (skipped, with
the reason, where no PostgreSQL server can be had)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from examples.userservice import store
from examples.userservice.store import postgres as postgres_store
from examples.userservice.store import sqlite as sqlite_store
from examples.userservice.store.base import (
    Column,
    Condition,
    Cursor,
    EmailTaken,
    ListQuery,
    NewUser,
    Ordering,
    StoreError,
    UserChanges,
    UserRecord,
    UserRepository,
)

FIRST_NAMES = ("Ada", "ada", "Élodie", "Zoë", "Grace")
SORTABLE = [column for column in Column if column is not Column.ID]


class Backend:
    """One database, reachable by URL and, for the checks a repository does not offer, directly."""

    url: str
    latest: int  # the schema version this code migrates to

    async def open(self) -> UserRepository:
        return await store.open_repository(self.url)

    async def schema_version(self) -> int:
        raise NotImplementedError

    async def set_schema_version(self, version: int) -> None:
        raise NotImplementedError

    def write_lock_held(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Another client holding the write lock until the block ends."""
        raise NotImplementedError


class SqliteBackend(Backend):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.latest = sqlite_store.SCHEMA_VERSION

    async def schema_version(self) -> int:
        with contextlib.closing(sqlite3.connect(self.path)) as connection:
            version: int = connection.execute("PRAGMA user_version").fetchone()[0]
            return version

    async def set_schema_version(self, version: int) -> None:
        with contextlib.closing(sqlite3.connect(self.path)) as connection:
            connection.execute(f"PRAGMA user_version = {version}")

    @contextlib.asynccontextmanager
    async def write_lock_held(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        locked, release = asyncio.Event(), threading.Event()
        errors: list[BaseException] = []

        def hold() -> None:
            try:
                with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as other:
                    other.execute("BEGIN IMMEDIATE")
                    loop.call_soon_threadsafe(locked.set)
                    release.wait()
                    other.execute("COMMIT")
            except BaseException as error:
                errors.append(error)
                loop.call_soon_threadsafe(locked.set)  # wake the waiter to report it

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            try:
                await asyncio.wait_for(locked.wait(), 10)
            except TimeoutError:
                pytest.fail("the other SQLite client did not take the write lock within 10 s")
            if errors:
                raise AssertionError(
                    f"the other SQLite client could not take the write lock: {errors[0]!r}"
                ) from errors[0]
            yield
        finally:
            release.set()
            holder.join()


class PostgresBackend(Backend):
    def __init__(self, url: str) -> None:
        self.url = url
        self.latest = postgres_store.SCHEMA_VERSION

    async def schema_version(self) -> int:
        connection = await asyncpg.connect(self.url)
        try:
            version: int = await connection.fetchval("SELECT max(version) FROM schema_version")
            return version
        finally:
            await connection.close()

    async def set_schema_version(self, version: int) -> None:
        connection = await asyncpg.connect(self.url)
        try:
            await connection.execute("INSERT INTO schema_version VALUES ($1)", version)
        finally:
            await connection.close()

    @contextlib.asynccontextmanager
    async def write_lock_held(self) -> AsyncIterator[None]:
        connection = await asyncpg.connect(self.url)
        try:
            async with connection.transaction():
                await connection.execute("LOCK TABLE users IN EXCLUSIVE MODE")
                yield
        finally:
            await connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "users.db")
    return PostgresBackend(request.getfixturevalue("postgres_database_url"))


@pytest.fixture
async def repository(backend: Backend) -> AsyncIterator[UserRepository]:
    opened = await backend.open()
    yield opened
    await opened.close()


def new_user(number: int, **fields: Any) -> NewUser:
    """Users whose ids do not sort in creation order and whose other columns repeat, so every
    ordering needs its id tie-break."""
    user = NewUser(
        id=f"{(number * 7919) % 1009:04d}-{number}",
        email=f"user{number}@example.com",
        first_name=FIRST_NAMES[number % len(FIRST_NAMES)],
        last_name=f"Last{number % 4}",
        role=number % 3,
        password_hash=f"$argon2id$hash{number}",
        created_at=1_700_000_000_000_000 + number // 3,
    )
    return replace(user, **fields)


async def create_users(repository: UserRepository, count: int) -> list[UserRecord]:
    """`count` users, a third of them updated afterwards so updated_at differs from created_at."""
    records = [await repository.create(new_user(n)) for n in range(count)]
    for n in range(0, count, 3):
        changed = await repository.update(records[n].id, UserChanges(updated_at=2_000_000 - n))
        assert changed is not None
        records[n] = changed
    return records


def in_order(records: Sequence[UserRecord], orderings: Sequence[Ordering]) -> list[str]:
    """The ids of `records` in the order the stores promise: the orderings, then id in the
    direction of the last one. Python compares str by code point, as both stores do."""
    last_descending = orderings[-1].descending if orderings else False
    ordered = sorted(records, key=lambda record: record.id, reverse=last_descending)
    for ordering in reversed(orderings):  # stable sorts, least significant key first
        ordered.sort(key=lambda r: getattr(r, ordering.column.value), reverse=ordering.descending)
    return [record.id for record in ordered]


async def all_pages(
    repository: UserRepository, query: ListQuery, limit: int, max_pages: int = 1000
) -> list[str]:
    ids: list[str] = []
    after: Cursor | None = None
    for _ in range(max_pages):
        page = await repository.list(query, after, limit)
        ids += [record.id for record in page.records]
        if page.next_cursor is None:
            return ids
        after = page.next_cursor
    pytest.fail(
        f"no last page after {max_pages} pages of {limit} ({len(ids)} rows so far):"
        " the cursor never ends"
    )


# Create, read, update, delete.


async def test_created_user_reads_back_with_version_1(repository: UserRepository) -> None:
    user = new_user(1)
    created = await repository.create(user)
    assert created == UserRecord(
        **{field.name: getattr(user, field.name) for field in fields(NewUser)},
        updated_at=user.created_at,
        version=1,
    )
    assert await repository.get(user.id) == created
    assert await repository.get("no-such-id") is None


async def test_update_changes_given_fields_and_counts_versions(repository: UserRepository) -> None:
    created = await repository.create(new_user(1))
    later = created.created_at + 5
    first = await repository.update(created.id, UserChanges(updated_at=later, first_name="Grace"))
    second = await repository.update(
        created.id,
        UserChanges(updated_at=later + 1, email="New@Example.com", last_name="Hopper", role=2),
    )
    assert first == replace(created, first_name="Grace", updated_at=later, version=2)
    assert second == replace(
        first, email="New@Example.com", last_name="Hopper", role=2, updated_at=later + 1, version=3
    )
    assert await repository.get(created.id) == second


async def test_updated_at_never_goes_back(repository: UserRepository) -> None:
    """Writers read the clock before their turn to write, so they may commit out of order."""
    created = await repository.create(new_user(1))
    late = await repository.update(created.id, UserChanges(updated_at=created.created_at + 10))
    early = await repository.update(created.id, UserChanges(updated_at=created.created_at + 3))
    assert late is not None and early is not None
    assert early.updated_at == late.updated_at + 1


async def test_update_and_delete_of_an_absent_user_give_none(repository: UserRepository) -> None:
    assert await repository.update("absent", UserChanges(updated_at=1, first_name="x")) is None
    assert await repository.delete("absent") is None


async def test_delete_returns_the_user_as_it_was(repository: UserRepository) -> None:
    created = await repository.create(new_user(1))
    assert await repository.delete(created.id) == created
    assert await repository.get(created.id) is None
    assert await repository.delete(created.id) is None


# Emails are unique without regard to case, Unicode case included.


@pytest.mark.parametrize(
    ("taken", "again"),
    [
        ("ada@example.com", "ADA@example.com"),
        ("ÄBC@example.com", "äbc@example.com"),
        ("straße@example.com", "STRASSE@example.com"),  # casefold, not lower()
    ],
)
async def test_create_with_a_taken_email_raises(
    repository: UserRepository, taken: str, again: str
) -> None:
    await repository.create(new_user(1, email=taken))
    with pytest.raises(EmailTaken):
        await repository.create(new_user(2, email=again))
    assert await repository.get(new_user(2).id) is None


async def test_update_to_a_taken_email_raises_and_changes_nothing(
    repository: UserRepository,
) -> None:
    await repository.create(new_user(1, email="Ärger@example.com"))
    other = await repository.create(new_user(2))
    with pytest.raises(EmailTaken):
        await repository.update(other.id, UserChanges(updated_at=9, email="ärger@EXAMPLE.com"))
    assert await repository.get(other.id) == other
    # Changing the case of one's own email is no clash.
    recased = await repository.update(
        other.id, UserChanges(updated_at=9, email="USER2@example.com")
    )
    assert recased is not None
    assert recased.email == "USER2@example.com"


async def test_sql_looking_values_are_stored_and_found_literally(
    repository: UserRepository,
) -> None:
    hostile = "x'); DROP TABLE users;--"
    created = await repository.create(new_user(1, email=hostile, first_name="' OR 1=1 --"))
    page = await repository.list(ListQuery((Condition(Column.EMAIL, hostile),)), None, 10)
    assert page.records == [created]
    page = await repository.list(
        ListQuery((Condition(Column.FIRST_NAME, "' OR 1=1 --"),)), None, 10
    )
    assert page.records == [created]
    assert (await repository.list(ListQuery(), None, 10)).total_count == 1


# Listing: conditions, orderings, keyset paging.


async def test_conditions_all_hold_and_email_ignores_case(repository: UserRepository) -> None:
    records = await create_users(repository, 30)
    cases = [
        (Condition(Column.ROLE, 1),),
        (Condition(Column.ROLE, 2), Condition(Column.FIRST_NAME, "Zoë")),
        (Condition(Column.EMAIL, "USER7@EXAMPLE.COM"),),
        (Condition(Column.ID, records[4].id),),
        (Condition(Column.CREATED_AT, records[9].created_at),),
        (Condition(Column.LAST_NAME, "nobody"),),
    ]
    for conditions in cases:
        expected = [
            record
            for record in records
            if all(_matches(record, condition) for condition in conditions)
        ]
        page = await repository.list(ListQuery(conditions), None, 100)
        assert [record.id for record in page.records] == in_order(expected, ()), conditions
        assert page.total_count == len(expected)
        assert page.next_cursor is None


def _matches(record: UserRecord, condition: Condition) -> bool:
    value = getattr(record, condition.column.value)
    if condition.column is Column.EMAIL:
        return bool(value.casefold() == str(condition.value).casefold())
    return bool(value == condition.value)


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
async def test_every_column_orders_both_ways(repository: UserRepository, descending: bool) -> None:
    records = await create_users(repository, 20)
    for column in SORTABLE:
        orderings = (Ordering(column, descending),)
        page = await repository.list(ListQuery(orderings=orderings), None, 100)
        assert [record.id for record in page.records] == in_order(records, orderings), column


MIXED = [
    (Ordering(Column.ROLE), Ordering(Column.CREATED_AT, descending=True)),
    (Ordering(Column.LAST_NAME, descending=True), Ordering(Column.FIRST_NAME)),
    (Ordering(Column.FIRST_NAME), Ordering(Column.ROLE, descending=True), Ordering(Column.EMAIL)),
    (Ordering(Column.UPDATED_AT, descending=True), Ordering(Column.LAST_NAME)),
]


@pytest.mark.parametrize(
    "orderings",
    [(), (Ordering(Column.FIRST_NAME),), (Ordering(Column.CREATED_AT, descending=True),), *MIXED],
    ids=lambda orderings: (
        ",".join(f"{o.column.value}{'-' if o.descending else ''}" for o in orderings) or "id"
    ),
)
async def test_small_pages_give_every_row_once_in_order(
    repository: UserRepository, orderings: tuple[Ordering, ...]
) -> None:
    records = await create_users(repository, 23)
    query = ListQuery((), orderings)
    expected = in_order(records, orderings)
    assert (await repository.list(query, None, 100)).next_cursor is None
    for limit in (1, 4, 23):
        assert await all_pages(repository, query, limit) == expected, limit


async def test_pages_of_a_filtered_query_count_all_matches(repository: UserRepository) -> None:
    records = await create_users(repository, 25)
    query = ListQuery((Condition(Column.ROLE, 0),), (Ordering(Column.EMAIL, descending=True),))
    matching = [record for record in records if record.role == 0]
    first = await repository.list(query, None, 3)
    second = await repository.list(query, first.next_cursor, 3)
    assert first.total_count == second.total_count == len(matching)
    assert [r.id for r in [*first.records, *second.records]] == in_order(matching, query.orderings)[
        :6
    ]


async def test_paging_while_users_are_inserted_never_skips_or_repeats(
    repository: UserRepository,
) -> None:
    existing = await create_users(repository, 30)
    query = ListQuery(orderings=(Ordering(Column.EMAIL),))
    paging_done = asyncio.Event()

    async def insert_meanwhile() -> int:
        shuffled = random.Random(7)
        number = 1000
        while not paging_done.is_set():
            # Emails that sort before, among and after the existing ones.
            prefix = shuffled.choice(["a", "user1", "user2", "z"])
            await repository.create(new_user(number, email=f"{prefix}{number}@example.com"))
            number += 1
            await asyncio.sleep(0)
        return number - 1000

    inserter = asyncio.create_task(insert_meanwhile())
    try:
        seen: list[UserRecord] = []
        after: Cursor | None = None
        max_pages = 1000
        for _ in range(max_pages):
            page = await repository.list(query, after, 4)
            seen += page.records
            if page.next_cursor is None:
                break
            after = page.next_cursor
            await asyncio.sleep(0.002)  # let inserts land between pages
        else:
            pytest.fail(
                f"no last page after {max_pages} pages of 4 ({len(seen)} rows seen): the"
                " inserter added users after the cursor faster than paging reached them,"
                " or the cursor never ends"
            )
    finally:
        paging_done.set()
    inserted = await inserter
    ids = [record.id for record in seen]
    assert inserted > 0
    assert len(ids) == len(set(ids))
    assert {record.id for record in existing} <= set(ids)
    assert ids == in_order(seen, query.orderings)


async def test_bad_limits_and_cursors_are_refused(repository: UserRepository) -> None:
    query = ListQuery(orderings=(Ordering(Column.EMAIL),))
    with pytest.raises(ValueError, match="at least one"):
        await repository.list(query, None, 0)
    with pytest.raises(ValueError, match="cursor has 2 values for 1 orderings"):
        await repository.list(query, Cursor(("a", "b"), "id"), 10)


# Opening: migrations, settings, closing.


async def test_a_fresh_database_is_at_the_latest_version_and_reopening_changes_nothing(
    backend: Backend,
) -> None:
    first = await backend.open()
    created = await first.create(new_user(1))
    await first.close()
    assert await backend.schema_version() == backend.latest
    again = await backend.open()
    try:
        assert await again.get(created.id) == created
    finally:
        await again.close()
    assert await backend.schema_version() == backend.latest


async def test_instances_starting_together_migrate_once(backend: Backend) -> None:
    repositories = await asyncio.gather(*(backend.open() for _ in range(3)))
    for opened in repositories:
        await opened.close()
    assert await backend.schema_version() == backend.latest


async def test_a_database_newer_than_the_code_is_refused(backend: Backend) -> None:
    await (await backend.open()).close()
    newer = backend.latest + 1
    await backend.set_schema_version(newer)
    with pytest.raises(
        StoreError, match=f"schema version {newer}, newer than this code's {backend.latest}"
    ):
        await backend.open()


async def test_closing_leaves_no_thread(backend: Backend) -> None:
    before = set(threading.enumerate())
    opened = await backend.open()
    await opened.create(new_user(1))
    assert await opened.get(new_user(1).id) is not None
    await opened.close()
    assert set(threading.enumerate()) - before == set()


async def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    opened = await sqlite_store.open_sqlite(tmp_path / "users.db")
    try:
        assert await opened.pragmas() == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "foreign_keys": 1,
            "busy_timeout": 5000,
        }
    finally:
        await opened.close()


async def test_sqlite_refuses_to_start_without_wal() -> None:
    before = set(threading.enumerate())
    with pytest.raises(StoreError, match="journal mode is 'memory', not 'wal'"):
        await store.open_repository("sqlite:///:memory:")
    assert set(threading.enumerate()) - before == set()


async def test_sqlite_that_cannot_be_opened_is_one_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the SQLite database: unable to open"):
        await store.open_repository(f"sqlite:///{tmp_path}/missing/folder/users.db")


# Concurrency.


async def test_many_concurrent_creates_and_gets_all_succeed(repository: UserRepository) -> None:
    users = [new_user(n) for n in range(200)]
    created = await asyncio.gather(*(repository.create(user) for user in users))
    fetched = await asyncio.gather(*(repository.get(user.id) for user in users))
    assert fetched == created
    mixed = await asyncio.gather(
        *(repository.get(user.id) for user in users),
        *(repository.update(user.id, UserChanges(updated_at=7)) for user in users),
    )
    assert all(record is not None for record in mixed)
    assert {
        record.version
        for record in await asyncio.gather(*(repository.get(u.id) for u in users))
        if record
    } == {2}


async def test_the_event_loop_and_reads_run_while_a_write_waits_for_the_lock(
    backend: Backend, repository: UserRepository
) -> None:
    existing = await repository.create(new_user(1))
    async with backend.write_lock_held():
        waiting = asyncio.create_task(repository.create(new_user(2)))
        worst_gap = await _max_tick_gap(seconds=0.3)
        started = time.perf_counter()
        assert await repository.get(existing.id) == existing
        read_seconds = time.perf_counter() - started
        assert not waiting.done()  # the write really waited for the lock all along
    assert (await waiting).id == new_user(2).id
    assert worst_gap < 0.5  # a write blocking the loop on the lock stalls it for seconds
    assert read_seconds < 0.5


async def _max_tick_gap(seconds: float) -> float:
    """The longest the loop took to come back to a task that yields to it at every step."""
    worst = 0.0
    last = time.perf_counter()
    deadline = last + seconds
    while (now := time.perf_counter()) < deadline:
        worst = max(worst, now - last)
        last = now
        await asyncio.sleep(0)
    return worst


# Choosing a store by URL.


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("mysql://root:hunter2@db/users", "scheme 'mysql'"),
        ("sqlite://relative.db", "scheme 'sqlite', but not sqlite:///<path>"),
        ("hunter2", "a URL without a scheme"),
        ("user:hunter2@db://x", "a URL without a scheme"),
    ],
)
async def test_other_urls_are_refused_without_echoing_a_password(url: str, named: str) -> None:
    with pytest.raises(ValueError, match="unsupported database URL") as raised:
        await store.open_repository(url)
    message = str(raised.value)
    assert f"({named})" in message
    assert "hunter2" not in message
    assert "postgresql://" in message
    assert "\n" not in message


def test_describe_names_the_store_without_its_password(tmp_path: Path) -> None:
    assert store.describe(f"sqlite:///{tmp_path}/users.db") == f"SQLite {tmp_path}/users.db"
    assert (
        store.describe("postgres://app:hunter2@db.internal:5433/users?password=hunter2")
        == "PostgreSQL app@db.internal:5433/users"
    )


def test_sqlite_urls_take_relative_and_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert store.describe("sqlite:///data/users.db") == f"SQLite {tmp_path}/data/users.db"
    assert store.describe("sqlite:////srv/users.db") == "SQLite /srv/users.db"


def test_default_database_follows_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert store.default_database_url() == f"sqlite:///{tmp_path}/state/pyservice/users.db"
    assert (tmp_path / "state" / "pyservice").is_dir()
    for unusable in ("", "relative/state"):
        monkeypatch.setenv("XDG_STATE_HOME", unusable)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        expected = f"sqlite:///{tmp_path}/home/.local/state/pyservice/users.db"
        assert store.default_database_url() == expected
