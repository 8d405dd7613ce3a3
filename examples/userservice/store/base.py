"""What every store speaks: plain records in, plain records out, and typed list queries.

A handler never builds SQL; it hands the repository a `ListQuery` whose fields are members of
`Column`, so a store can only ever name whitelisted columns, and every value it receives is
bound as a parameter.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
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
    password_hash: str
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
    password_hash: str
    created_at: int


@dataclass(frozen=True, slots=True)
class UserChanges:
    """An update: only the fields that are not None change; `updated_at` always does."""

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
