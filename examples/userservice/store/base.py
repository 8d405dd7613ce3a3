"""What every store speaks: plain records in, plain records out, and typed list queries.

A handler never builds SQL; it hands the repository a `ListQuery` whose fields are members of
`Column`, so a store can only ever name whitelisted columns, and every value it receives is
bound as a parameter.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Protocol


class Column(enum.Enum):
    """The user columns a filter or an ordering may name; the value is the SQL column name."""

    ID = "id"
    EMAIL = "email"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    ROLE = "role"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One stored user. Times are microseconds since the Unix epoch, UTC; `version` starts at 1
    and grows by one with every update, so caches can tell a newer copy from an older one."""

    id: str
    email: str
    first_name: str
    last_name: str
    role: int
    password_hash: str = field(repr=False)
    created_at: int
    updated_at: int
    version: int


@dataclass(frozen=True, slots=True)
class NewUser:
    """What CreateUser stores; the store fills in nothing but what it is given."""

    id: str
    email: str
    first_name: str
    last_name: str
    role: int
    password_hash: str = field(repr=False)
    created_at: int


@dataclass(frozen=True, slots=True)
class UserChanges:
    """An update: only the fields that are not None change; `updated_at` always does, to this
    time or, when the stored one is not earlier, to one microsecond after the stored one."""

    updated_at: int
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    role: int | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """`column = value`. For EMAIL the comparison ignores case, as the uniqueness rule does."""

    column: Column
    value: str | int


@dataclass(frozen=True, slots=True)
class Ordering:
    column: Column
    descending: bool = False


@dataclass(frozen=True, slots=True)
class ListQuery:
    """All conditions must hold (AND). `orderings` never names ID: the store always adds `id`
    in the direction of the last ordering as the tie-break, so the order is total and
    keyset paging is exact. An empty `orderings` means by id ascending."""

    conditions: tuple[Condition, ...] = ()
    orderings: tuple[Ordering, ...] = ()


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last row's values of the ordering columns, then its id. The next
    page holds exactly the rows after it in the query's total order (keyset paging), so rows
    inserted or deleted meanwhile never shift a page."""

    values: tuple[str | int, ...]
    last_id: str


@dataclass(frozen=True, slots=True)
class Page:
    records: Sequence[UserRecord]
    next_cursor: Cursor | None  # None when no row follows
    total_count: int  # rows matching the conditions, whatever the page


class EmailTaken(Exception):
    """Another user has this email (compared without case); raised by create and update."""


class StoreError(Exception):
    """A store cannot be opened: the database cannot be reached or opened, its schema is newer
    than this code, or a setting durability depends on did not take. The message is one line
    saying which, with no password in it."""


class UserRepository(Protocol):
    """The persistence the UserService needs. Every method is safe to call concurrently; none
    blocks the event loop."""

    async def get(self, user_id: str) -> UserRecord | None: ...

    async def create(self, user: NewUser) -> UserRecord:
        """Insert, or raise EmailTaken. The returned record has version 1."""
        ...

    async def update(self, user_id: str, changes: UserChanges) -> UserRecord | None:
        """Apply `changes` in one transaction; None when no such user; EmailTaken on a clash."""
        ...

    async def delete(self, user_id: str) -> UserRecord | None:
        """Remove and return the user as it was; None when absent."""
        ...

    async def list(self, query: ListQuery, after: Cursor | None, limit: int) -> Page: ...

    async def close(self) -> None: ...


def email_key(email: str) -> str:
    """What uniqueness and EMAIL conditions compare: the case-folded address, so "ÄBC@x" and
    "äbc@x" are one user (SQLite's NOCASE and a plain lower() miss non-ASCII cases)."""
    return email.casefold()


def cursor_after(record: UserRecord, query: ListQuery) -> Cursor:
    """The cursor of the page that ends with `record`."""
    values = tuple(getattr(record, ordering.column.value) for ordering in query.orderings)
    return Cursor(values, record.id)


# What the SQL stores (sqlite.py, postgres.py) share: every statement they run on `users`,
# written once so both compare, order and page identically. Column names come from `Column`
# and UserRecord only; every value is a bound parameter.

_RECORD_COLUMNS = ", ".join(field.name for field in fields(UserRecord))
_Value = str | int | None


@dataclass(frozen=True, slots=True)
class ListPlan:
    """One `list` call: a page statement fetching up to limit+1 rows (the extra row says
    whether a next page exists) and a count statement to run in the same read transaction.

    Pages are keyset pages over (ordering columns, id): a row present throughout paging comes
    exactly once, whatever is inserted or deleted meanwhile. A row whose sort key changes
    between two pages may jump past the cursor or behind it, as with any keyset paging."""

    page_sql: str
    page_parameters: tuple[_Value, ...]
    count_sql: str
    count_parameters: tuple[_Value, ...]
    query: ListQuery
    limit: int

    def page(self, fetched: Sequence[UserRecord], total_count: int) -> Page:
        records = fetched[: self.limit]
        more = len(fetched) > self.limit
        return Page(records, cursor_after(records[-1], self.query) if more else None, total_count)


class UserStatements:
    """The statements in one dialect; `placeholder` spells the n-th (1-based) parameter:
    "?{}" for SQLite, "${}" for PostgreSQL. Numbered, so a value can be used twice."""

    def __init__(self, placeholder: str) -> None:
        self._placeholder = placeholder
        p = placeholder.format
        self.get = f"SELECT {_RECORD_COLUMNS} FROM users WHERE id = {p(1)}"
        self.insert = (
            "INSERT INTO users (id, email, email_key, first_name, last_name, role,"
            " password_hash, created_at, updated_at, version)"
            f" VALUES ({p(1)}, {p(2)}, {p(3)}, {p(4)}, {p(5)}, {p(6)}, {p(7)}, {p(8)}, {p(8)}, 1)"
            f" RETURNING {_RECORD_COLUMNS}"
        )
        self.update = (
            f"UPDATE users SET email = coalesce({p(1)}, email),"
            f" email_key = coalesce({p(2)}, email_key),"
            f" first_name = coalesce({p(3)}, first_name), last_name = coalesce({p(4)}, last_name),"
            f" role = coalesce({p(5)}, role), version = version + 1,"
            # Later than the previous update, whatever the clocks did: handlers read the time
            # before they wait their turn to write, so two may commit out of clock order.
            f" updated_at = CASE WHEN {p(6)} > updated_at THEN {p(6)} ELSE updated_at + 1 END"
            f" WHERE id = {p(7)} RETURNING {_RECORD_COLUMNS}"
        )
        self.delete = f"DELETE FROM users WHERE id = {p(1)} RETURNING {_RECORD_COLUMNS}"

    @staticmethod
    def insert_parameters(user: NewUser) -> tuple[_Value, ...]:
        return (
            user.id,
            user.email,
            email_key(user.email),
            user.first_name,
            user.last_name,
            user.role,
            user.password_hash,
            user.created_at,
        )

    @staticmethod
    def update_parameters(user_id: str, changes: UserChanges) -> tuple[_Value, ...]:
        key = None if changes.email is None else email_key(changes.email)
        return (
            changes.email,
            key,
            changes.first_name,
            changes.last_name,
            changes.role,
            changes.updated_at,
            user_id,
        )

    def list_plan(self, query: ListQuery, after: Cursor | None, limit: int) -> ListPlan:
        if limit < 1:
            raise ValueError(f"a page holds at least one row, not {limit}")
        if after is not None and len(after.values) != len(query.orderings):
            raise ValueError(
                f"the cursor has {len(after.values)} values for {len(query.orderings)} orderings"
            )
        columns = tuple(condition.column for condition in query.conditions)
        page_sql, count_sql = _list_sql(
            self._placeholder, columns, query.orderings, after is not None
        )
        compared = tuple(
            email_key(str(condition.value)) if condition.column is Column.EMAIL else condition.value
            for condition in query.conditions
        )
        keyset = () if after is None else (*after.values, after.last_id)
        return ListPlan(
            page_sql, (*compared, *keyset, limit + 1), count_sql, compared, query, limit
        )


@functools.lru_cache(maxsize=512)
def _list_sql(
    placeholder: str, conditions: tuple[Column, ...], orderings: tuple[Ordering, ...], after: bool
) -> tuple[str, str]:
    p = placeholder.format
    where = [
        f"{'email_key' if column is Column.EMAIL else column.value} = {p(n)}"
        for n, column in enumerate(conditions, 1)
    ]
    count_sql = "SELECT count(*) FROM users" + _where(where)
    last_descending = orderings[-1].descending if orderings else False
    keys = [(o.column.value, o.descending) for o in orderings] + [("id", last_descending)]
    first = len(conditions) + 1
    if after:
        where.append(_after([(c, d, p(n)) for n, (c, d) in enumerate(keys, first)]))
        first += len(keys)
    order = ", ".join(f"{column} {'DESC' if descending else 'ASC'}" for column, descending in keys)
    page_sql = (
        f"SELECT {_RECORD_COLUMNS} FROM users{_where(where)} ORDER BY {order} LIMIT {p(first)}"
    )
    return page_sql, count_sql


def _where(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _after(keys: Sequence[tuple[str, bool, str]]) -> str:
    """The rows after the cursor in the total order. When every key runs the same way one row
    comparison says it (and uses the index); mixed directions need it spelled out key by key."""
    directions = {descending for _, descending, _ in keys}
    if len(directions) == 1:
        operator = "<" if directions.pop() else ">"
        columns = ", ".join(column for column, _, _ in keys)
        values = ", ".join(value for _, _, value in keys)
        return f"({columns}) {operator} ({values})"
    alternatives = []
    for n, (column, descending, value) in enumerate(keys):
        equal = [f"{c} = {v}" for c, _, v in keys[:n]]
        alternatives.append(
            " AND ".join([*equal, f"{column} {'<' if descending else '>'} {value}"])
        )
    return "(" + " OR ".join(f"({alternative})" for alternative in alternatives) + ")"
