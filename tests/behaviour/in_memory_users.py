"""A servicer for the runtime's behaviour tests: users in a dict, nothing persisted.

Tests of interceptors, transports and peers need a UserService that answers at once and holds
no resources; the real one (examples/userservice) has a store, hashes passwords and is tested
in tests/userservice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from common.v1 import errors_pb2
from google.protobuf import empty_pb2, timestamp_pb2
from protoc_gen_pyservice import runtime
from user.v1 import user_pb2, user_service

Context = grpc.aio.ServicerContext


class InMemoryUsers(user_service.UserServiceBase):
    """Users kept in a dict; updates fan out to every watcher through bounded queues."""

    def __init__(self) -> None:
        self._users: dict[str, user_pb2.User] = {}
        self._emails: set[str] = set()
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

    async def get_user(self, request, context):
        return user_pb2.GetUserResponse(user=self._get(request.id))

    async def list_users(self, request, context):
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

    async def create_user(self, request, context):
        if request.email.casefold() in self._emails:
            raise runtime.AlreadyExists("a user with this email already exists")
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
        self._emails.add(user.email.casefold())
        self._publish(user_pb2.UserUpdate.UPDATE_TYPE_CREATED, user)
        return user_pb2.CreateUserResponse(user=user)

    async def update_user(self, request, context):
        user = self._get(request.id)
        fields = request.update_mask.paths or ["email", "first_name", "last_name", "role"]
        for name in fields:
            if name not in ("email", "first_name", "last_name", "role"):
                raise runtime.InvalidArgument(f"field {name!r} cannot be updated")
        if "email" in fields:
            self._emails.discard(user.email.casefold())
            self._emails.add(request.email.casefold())
        for name in fields:
            setattr(user, name, getattr(request, name))
        user.updated_at.CopyFrom(_now())
        self._publish(user_pb2.UserUpdate.UPDATE_TYPE_UPDATED, user)
        return user_pb2.UpdateUserResponse(user=user)

    async def delete_user(self, request, context):
        user = self._users.pop(request.id, None)
        if user is not None:
            self._emails.discard(user.email.casefold())
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
