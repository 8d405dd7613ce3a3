"""The example UserService: an in-memory implementation of the generated base class, served by
the server builder. `make serve` runs it; configuration comes from the environment:

    PYSERVICE_PORT                   port on 127.0.0.1 (default 50051)
    PYSERVICE_REFLECTION             1 to enable server reflection (make serve sets it)
    PYSERVICE_JWT_SECRET             require HS256 bearer tokens signed with this secret;
                                     the `sub` claim is the caller (principal)
    PYSERVICE_RATE_LIMIT_PER_MINUTE  calls per minute per principal (off when unset)
    PYSERVICE_METRICS_PORT           serve Prometheus /metrics over HTTP on this port
    PYSERVICE_TLS_CERT, PYSERVICE_TLS_KEY
                                     PEM files for TLS (plaintext when unset)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2, timestamp_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "generated"))

from common.v1 import errors_pb2
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import interceptors, serve
from user.v1 import user_pb2, user_service

Context = grpc.aio.ServicerContext


class InMemoryUsers(user_service.UserServiceBase):
    """Users kept in a dict; updates fan out to every watcher through bounded queues."""

    def __init__(self) -> None:
        self._users: dict[str, user_pb2.User] = {}
        self._watchers: set[asyncio.Queue[user_pb2.UserUpdate | None]] = set()

    def _publish(self, kind: user_pb2.UserUpdate.UpdateType, user: user_pb2.User) -> None:
        update = user_pb2.UserUpdate(type=kind, user=user, timestamp=_now())
        for queue in self._watchers:
            if queue.full():  # a slow watcher loses its oldest update, never blocks writers
                queue.get_nowait()
            queue.put_nowait(update)

    def _get(self, user_id: str) -> user_pb2.User:
        user = self._users.get(user_id)
        if user is None:
            raise runtime.NotFound(
                f"user {user_id!r} not found",
                [errors_pb2.ErrorInfo(reason="USER_NOT_FOUND", domain="user.v1")],
            )
        return user

    async def get_user(self, request, context):  # type: ignore[no-untyped-def]
        return user_pb2.GetUserResponse(user=self._get(request.id))

    async def list_users(self, request, context):  # type: ignore[no-untyped-def]
        users = sorted(self._users.values(), key=lambda u: u.id)
        token = request.page_token or "0"
        if not (len(token) <= 18 and token.isascii() and token.isdecimal()):
            raise runtime.InvalidArgument("page_token is not one this server gave out")
        start = int(token)
        page = users[start : start + request.page_size]
        next_token = str(start + len(page)) if start + len(page) < len(users) else ""
        return user_pb2.ListUsersResponse(
            users=page, next_page_token=next_token, total_count=len(users)
        )

    async def create_user(self, request, context):  # type: ignore[no-untyped-def]
        if any(user.email == request.email for user in self._users.values()):
            raise runtime.AlreadyExists(f"a user with email {request.email!r} exists")
        user = user_pb2.User(
            id=uuid.uuid4().hex,
            email=request.email,
            first_name=request.first_name,
            last_name=request.last_name,
            role=request.role,
            created_at=_now(),
            updated_at=_now(),
        )
        self._users[user.id] = user
        self._publish(user_pb2.UserUpdate.UPDATE_TYPE_CREATED, user)
        return user_pb2.CreateUserResponse(user=user)

    async def update_user(self, request, context):  # type: ignore[no-untyped-def]
        user = self._get(request.id)
        fields = request.update_mask.paths or ["email", "first_name", "last_name", "role"]
        for name in fields:
            if name not in ("email", "first_name", "last_name", "role"):
                raise runtime.InvalidArgument(f"field {name!r} cannot be updated")
            setattr(user, name, getattr(request, name))
        user.updated_at.CopyFrom(_now())
        self._publish(user_pb2.UserUpdate.UPDATE_TYPE_UPDATED, user)
        return user_pb2.UpdateUserResponse(user=user)

    async def delete_user(self, request, context):  # type: ignore[no-untyped-def]
        user = self._users.pop(request.id, None)
        if user is not None:
            self._publish(user_pb2.UserUpdate.UPDATE_TYPE_DELETED, user)
        return empty_pb2.Empty()

    async def stream_user_updates(  # type: ignore[override]
        self, request: user_pb2.StreamUserUpdatesRequest, context: Context[object, object]
    ) -> AsyncIterator[user_pb2.UserUpdate]:
        watched = set(request.user_ids)
        queue: asyncio.Queue[user_pb2.UserUpdate | None] = asyncio.Queue(maxsize=256)
        self._watchers.add(queue)
        # On shutdown a None in the queue ends the stream: no per-update cost to watch for it.
        stopper = asyncio.ensure_future(_put_none_when(runtime.shutting_down(), queue))
        try:
            while (update := await queue.get()) is not None:
                if not watched or update.user.id in watched:
                    yield update
            raise runtime.Unavailable("server is shutting down")
        finally:
            stopper.cancel()
            self._watchers.discard(queue)


async def _put_none_when(event: asyncio.Event, queue: asyncio.Queue[Any]) -> None:
    await event.wait()
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(None)


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def settings_from(environment: Mapping[str, str]) -> serve.ServerSettings:
    """ServerSettings from the PYSERVICE_* variables (see the module docstring)."""
    chosen = interceptors.InterceptorSettings(tracing=interceptors.TracingInterceptor())
    secret = environment.get("PYSERVICE_JWT_SECRET")
    if secret:
        chosen.auth = interceptors.JwtAuthInterceptor(secret, algorithms=["HS256"])
    per_minute = _number(environment, "PYSERVICE_RATE_LIMIT_PER_MINUTE", float)
    if per_minute is not None:
        chosen.rate_limit = interceptors.RateLimitInterceptor(
            interceptors.RateLimit(per_minute=per_minute),
            detail_type=errors_pb2.RateLimitInfo,
        )
    metrics_port = _number(environment, "PYSERVICE_METRICS_PORT", int)
    if metrics_port is not None:
        chosen.metrics = interceptors.MetricsInterceptor()
    cert, key = environment.get("PYSERVICE_TLS_CERT"), environment.get("PYSERVICE_TLS_KEY")
    port = _number(environment, "PYSERVICE_PORT", int)
    return serve.ServerSettings(
        address=f"127.0.0.1:{50051 if port is None else port}",
        reflection=environment.get("PYSERVICE_REFLECTION") == "1",
        tls=serve.TlsFiles(Path(cert), Path(key)) if cert and key else None,
        errors=runtime.ErrorMap(
            validation_detail=errors_pb2.ValidationError,
            rate_limit_detail=errors_pb2.RateLimitInfo,
        ),
        interceptors=chosen,
        metrics_port=metrics_port,
    )


N = TypeVar("N", int, float)


def _number(environment: Mapping[str, str], name: str, kind: type[N]) -> N | None:
    """A numeric variable, None when unset; a ValueError naming it when it is not a number
    (the rest of the checking is the settings' own)."""
    text = environment.get(name)
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None


async def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = settings_from(os.environ)
        service = serve.build_server(
            [(user_service.add_user_service_to_server, InMemoryUsers())], settings
        )
    except ValueError as error:  # a bad PYSERVICE_* value: one line, not a traceback
        print(f"user_server: {error}", file=sys.stderr)
        return 2
    await service.serve_until_signal()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
