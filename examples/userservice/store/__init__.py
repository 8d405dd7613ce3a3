"""Where users are kept: `open_repository(url)` opens the store a database URL names.

`sqlite:///relative/path.db` and `sqlite:////absolute/path.db` (SQLAlchemy's spelling) open the
embedded default (`sqlite.py`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from examples.userservice.store.base import StoreError, UserRepository

__all__ = ["StoreError", "default_database_url", "describe", "open_repository"]

_SQLITE_PREFIX = "sqlite:///"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986
_ACCEPTED = "sqlite:///relative/path.db, sqlite:////absolute/path.db"


async def open_repository(url: str) -> UserRepository:
    """Open, migrating as needed, the store `url` names. ValueError for a URL of another kind;
    StoreError when the database cannot be opened or used."""
    target = _parse(url)
    from examples.userservice.store.sqlite import open_sqlite

    return await open_sqlite(target)


def describe(url: str) -> str:
    """The store `url` names, for a log line: a password, and any query, left out."""
    target = _parse(url)
    return f"SQLite {Path(target).resolve()}"


def default_database_url() -> str:
    """The SQLite file used when no URL is configured: `$XDG_STATE_HOME/pyservice/users.db`,
    or `~/.local/state/pyservice/users.db` when XDG_STATE_HOME is unset or not absolute (as
    the XDG spec asks). Creates the directory."""
    state_home = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state_home) if os.path.isabs(state_home) else Path.home() / ".local" / "state"
    path = base / "pyservice" / "users.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return _SQLITE_PREFIX + str(path)


def _parse(url: str) -> str:
    """The SQLite file's path."""
    if url.startswith(_SQLITE_PREFIX) and len(url) > len(_SQLITE_PREFIX):
        return url[len(_SQLITE_PREFIX) :]
    scheme, separator, _ = url.partition("://")
    # Only a scheme is echoed: the rest of a URL may hold a password.
    if not separator or not _SCHEME.fullmatch(scheme):
        named = "a URL without a scheme"
    elif scheme == "sqlite":
        named = "scheme 'sqlite', but not sqlite:///<path>"
    else:
        named = f"scheme {scheme!r}"
    raise ValueError(f"unsupported database URL ({named}); use one of: {_ACCEPTED}")
