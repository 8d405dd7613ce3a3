"""Where users are kept: `open_repository(url)` opens the store a database URL names.

`sqlite:///relative/path.db` and `sqlite:////absolute/path.db` (SQLAlchemy's spelling) open the
embedded default (`sqlite.py`); `postgresql://...` and `postgres://...` open PostgreSQL
(`postgres.py`). A store module is imported only when its URL is used, so a SQLite deployment
never loads asyncpg.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from examples.userservice.store.base import StoreError, UserRepository

__all__ = ["StoreError", "default_database_url", "describe", "is_embedded", "open_repository"]

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986
_ACCEPTED = "sqlite:///relative/path.db, sqlite:////absolute/path.db, postgresql://, postgres://"


async def open_repository(url: str) -> UserRepository:
    """Open, migrating as needed, the store `url` names. ValueError for a URL of another kind;
    StoreError when the database cannot be opened or used."""
    kind, target = _parse(url)
    if kind == "sqlite":
        from examples.userservice.store.sqlite import open_sqlite

        return await open_sqlite(target)
    from examples.userservice.store.postgres import open_postgres

    return await open_postgres(target)


def is_embedded(url: str) -> bool:
    """Whether `url` names the embedded store, which one process owns (unless instances
    share Redis): its writes are all that process's own."""
    return _parse(url)[0] == "sqlite"


def describe(url: str) -> str:
    """The store `url` names, for a log line: a password, and any query, left out."""
    kind, target = _parse(url)
    if kind == "sqlite":
        return f"SQLite {Path(target).resolve()}"
    parts = urlsplit(target)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"PostgreSQL {user}{parts.hostname or 'localhost'}{port}{parts.path}"


def default_database_url() -> str:
    """The SQLite file used when no URL is configured: `$XDG_STATE_HOME/pyservice/users.db`,
    or `~/.local/state/pyservice/users.db` when XDG_STATE_HOME is unset or not absolute (as
    the XDG spec asks). Creates the directory."""
    state_home = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state_home) if os.path.isabs(state_home) else Path.home() / ".local" / "state"
    path = base / "pyservice" / "users.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return _SQLITE_PREFIX + str(path)


def _parse(url: str) -> tuple[Literal["sqlite", "postgres"], str]:
    """("sqlite", the file's path) or ("postgres", the URL)."""
    if url.startswith(_SQLITE_PREFIX) and len(url) > len(_SQLITE_PREFIX):
        return "sqlite", url[len(_SQLITE_PREFIX) :]
    scheme, separator, _ = url.partition("://")
    if separator and scheme in _POSTGRES_SCHEMES:
        return "postgres", url
    # Only a scheme is echoed: the rest of a URL may hold a password.
    if not separator or not _SCHEME.fullmatch(scheme):
        named = "a URL without a scheme"
    elif scheme == "sqlite":
        named = "scheme 'sqlite', but not sqlite:///<path>"
    else:
        named = f"scheme {scheme!r}"
    raise ValueError(f"unsupported database URL ({named}); use one of: {_ACCEPTED}")
