"""The PostgreSQL store, through an asyncpg connection pool.

It runs the statements the SQLite store runs (`base.UserStatements`), on a schema built for
the same semantics: text columns compare with the "C" collation, byte by byte as SQLite's
BINARY does, whatever the database's locale, so both stores order and page alike; the
case-folded `email_key` carries the uniqueness rule. asyncpg prepares each statement once per
connection and reuses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg

from examples.userservice.store.base import (
    Cursor,
    EmailTaken,
    ListQuery,
    NewUser,
    Page,
    StoreError,
    UserChanges,
    UserRecord,
    UserStatements,
)

_SQL: Final = UserStatements("${}")
_EMAIL_UNIQUE: Final = "users_email_key_unique"
# pg_advisory_xact_lock takes any bigint; this is b"pyservic" read as one.
_MIGRATION_LOCK: Final = 0x7079_7365_7276_6963

# Each step runs in one transaction that also records its number in schema_version. The
# index columns are spelled out rather than taken from Column, so a released step never changes.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        f"""CREATE TABLE users (
            id text COLLATE "C" PRIMARY KEY,
            email text COLLATE "C" NOT NULL,
            email_key text COLLATE "C" NOT NULL CONSTRAINT {_EMAIL_UNIQUE} UNIQUE,
            first_name text COLLATE "C" NOT NULL,
            last_name text COLLATE "C" NOT NULL,
            role integer NOT NULL,
            password_hash text NOT NULL,
            created_at bigint NOT NULL,
            updated_at bigint NOT NULL,
            version integer NOT NULL
        )""",
        *(
            f"CREATE INDEX users_by_{column} ON users ({column}, id)"
            for column in ("email", "first_name", "last_name", "role", "created_at", "updated_at")
        ),
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)


async def open_postgres(
    url: str, *, min_size: int = 1, max_size: int = 10
) -> PostgresUserRepository:
    """Connect to `url` and bring its schema up to date; StoreError when the server cannot be
    reached or refuses us, or the schema is newer than this code."""
    try:
        pool: asyncpg.Pool[asyncpg.Record] = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, reset=_keep_session
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise StoreError(f"cannot connect to PostgreSQL: {error}") from error
    try:
        async with pool.acquire() as connection:
            await _migrate(connection)
    except BaseException:
        await pool.close()
        raise
    return PostgresUserRepository(pool)


class PostgresUserRepository:
    """A UserRepository on PostgreSQL; make one with `open_postgres`."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self._pool = pool

    async def get(self, user_id: str) -> UserRecord | None:
        row = await self._pool.fetchrow(_SQL.get, user_id)
        return None if row is None else UserRecord(*row)

    async def create(self, user: NewUser) -> UserRecord:
        return (await _write(self._pool, _SQL.insert, _SQL.insert_parameters(user)))[0]

    async def update(self, user_id: str, changes: UserChanges) -> UserRecord | None:
        parameters = _SQL.update_parameters(user_id, changes)
        return next(iter(await _write(self._pool, _SQL.update, parameters)), None)

    async def delete(self, user_id: str) -> UserRecord | None:
        return next(iter(await _write(self._pool, _SQL.delete, (user_id,))), None)

    async def close(self) -> None:
        """Wait for the queries in progress, then close every connection."""
        await self._pool.close()

    async def list(self, query: ListQuery, after: Cursor | None, limit: int) -> Page:
        plan = _SQL.list_plan(query, after, limit)
        async with (
            self._pool.acquire() as connection,
            # One snapshot: the count agrees with the page.
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            rows = await connection.fetch(plan.page_sql, *plan.page_parameters)
            total: int = await connection.fetchval(plan.count_sql, *plan.count_parameters)
        return plan.page([UserRecord(*row) for row in rows], total)


async def _keep_session(connection: asyncpg.Connection[asyncpg.Record]) -> None:
    """Nothing to undo before a connection goes back to the pool: the store never changes
    session state (no SET, LISTEN, cursors or session advisory locks; migrations lock for a
    transaction only), so it skips asyncpg's reset query, a round trip on every release.
    asyncpg still rolls back a transaction left open."""


async def _write(
    pool: asyncpg.Pool[asyncpg.Record], statement: str, parameters: Sequence[object]
) -> list[UserRecord]:
    """Run one statement, a transaction of its own, and return the rows it RETURNs."""
    try:
        rows = await pool.fetch(statement, *parameters)
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name == _EMAIL_UNIQUE:
            raise EmailTaken from error
        raise
    return [UserRecord(*row) for row in rows]


async def _migrate(connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> None:
    """Apply the missing steps, each in its own transaction under an advisory lock, so
    instances starting together take turns and never apply a step twice."""
    while True:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY)"
            )
            version: int = await connection.fetchval(
                "SELECT coalesce(max(version), 0) FROM schema_version"
            )
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"PostgreSQL database has schema version {version}, newer than this"
                    f" code's {SCHEMA_VERSION}; refusing to start"
                )
            if version == SCHEMA_VERSION:
                return
            for statement in _MIGRATIONS[version]:
                await connection.execute(statement)
            await connection.execute("INSERT INTO schema_version VALUES ($1)", version + 1)
