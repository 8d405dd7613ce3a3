"""Per-call values the interceptors set and handlers read, held in context variables."""

from __future__ import annotations

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


def request_id() -> str | None:
    """The current call's request id (from `x-request-id`, or made up by the server)."""
    return _request_id.get()


def set_request_id(value: str) -> contextvars.Token[str | None]:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


def new_request_id() -> str:
    """32 random hex digits, like a uuid4 without the cost of building one."""
    return os.urandom(16).hex()


def claims() -> Mapping[str, Any] | None:
    """The verified JWT claims of the current call, when the auth interceptor ran."""
    return _claims.get()


def set_claims(value: Mapping[str, Any] | None) -> contextvars.Token[Mapping[str, Any] | None]:
    return _claims.set(value)


def reset_claims(token: contextvars.Token[Mapping[str, Any] | None]) -> None:
    _claims.reset(token)
