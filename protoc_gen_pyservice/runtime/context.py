"""Per-call values the interceptors set and handlers read, held in context variables."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
from collections.abc import Mapping
from typing import Any

REQUEST_ID_HEADER = "x-request-id"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pyservice_request_id", default=None
)
_claims: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "pyservice_claims", default=None
)


_stopping: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "pyservice_stopping", default=None
)


def request_id() -> str | None:
    """The current call's request id (from `x-request-id`, or made up by the server)."""
    return _request_id.get()


def set_request_id(value: str) -> contextvars.Token[str | None]:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _reset(_request_id, token)


def new_request_id() -> str:
    """32 random hex digits, like a uuid4 without the cost of building one."""
    return os.urandom(16).hex()


def claims() -> Mapping[str, Any] | None:
    """The verified JWT claims of the current call, when the auth interceptor ran."""
    return _claims.get()


def set_claims(value: Mapping[str, Any] | None) -> contextvars.Token[Mapping[str, Any] | None]:
    return _claims.set(value)


def reset_claims(token: contextvars.Token[Mapping[str, Any] | None]) -> None:
    _reset(_claims, token)


def _reset(variable: contextvars.ContextVar[Any], token: contextvars.Token[Any]) -> None:
    # Each call runs in a task of its own, so its values end with it anyway; a reset from
    # another context (a generator finalised elsewhere) has nothing to undo.
    with contextlib.suppress(ValueError):
        variable.reset(token)


def shutting_down() -> asyncio.Event:
    """Set when the server handling the current call begins a graceful shutdown: a long
    stream handler waits on it (beside its own work) to end itself cleanly.

    Outside a server built by runtime.serve, an event that is never set.
    """
    event = _stopping.get()
    return event if event is not None else asyncio.Event()


def set_stopping(event: asyncio.Event) -> None:
    _stopping.set(event)
