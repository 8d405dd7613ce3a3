"""UserService: the implementation of user.v1.UserService (user/v1/user.proto).

Yours to edit. `pyservice scaffold` adds a stub for each RPC the proto gains and changes nothing
else; `pyservice check` fails while an RPC has no method here.

Requests arrive validated against the proto's rules (the generated adapter checks them), so
the handlers check only what the rules cannot say: the filter grammar, page tokens, update
masks. Every failure is a ServiceError with a fixed message and typed details.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any, ClassVar, TypeVar

import grpc
from google.protobuf import empty_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from protoc_gen_pyservice import runtime
from user.v1 import user_pb2, user_service

from examples.userservice import events, page_tokens, passwords, query
from examples.userservice.app import Dependencies
from examples.userservice.store.base import (
    EmailTaken,
    ListQuery,
    NewUser,
    UserChanges,
    UserRecord,
)

logger = logging.getLogger(__name__)

DOMAIN = "user.v1"
# UpdateUser: the fields a mask may name, and those it may not (AIP-134: output-only and
# immutable fields in a mask are an error, not silently ignored).
UPDATABLE_FIELDS = ("email", "first_name", "last_name", "role")
FIXED_FIELDS = frozenset({"id", "created_at", "updated_at", "password"})
# Fields a User must have, so a mask may not clear them.
REQUIRED_FIELDS = frozenset({"email", "first_name", "last_name"})
MAX_MASK_PATHS = 16
Update = user_pb2.UserUpdate
T = TypeVar("T")


class UserService(user_service.UserServiceBase):
    """User service definition"""

    # RPCs (proto names) left unimplemented on purpose: they answer UNIMPLEMENTED, neither
    # `pyservice scaffold` nor `pyservice check` asks for a method for them, and scaffold
    # writes no tests of them.
    UNIMPLEMENTED_RPCS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, dependencies: Dependencies) -> None:
        self._repository = dependencies.repository
        self._updates = dependencies.updates
        self._cache = dependencies.cache
        self._tokens = dependencies.page_tokens
        self._passwords = dependencies.passwords

    async def get_user(
        self,
        request: user_pb2.GetUserRequest,
        context: grpc.aio.ServicerContext[user_pb2.GetUserRequest, user_pb2.GetUserResponse],
    ) -> user_pb2.GetUserResponse:
        """Get a user by ID"""
        cached = await self._cache.get(request.id)
        if cached is not None:
            response = user_pb2.GetUserResponse()
            response.user.MergeFromString(cached)  # parsed in place: no copy
            return response
        record = await self._repository.get(request.id)
        if record is None:
            raise _not_found(request.id)
        user = _user_message(record)
        await self._cache.offer(record.id, record.version, user.SerializeToString())
        return user_pb2.GetUserResponse(user=user)

    async def list_users(
        self,
        request: user_pb2.ListUsersRequest,
        context: grpc.aio.ServicerContext[user_pb2.ListUsersRequest, user_pb2.ListUsersResponse],
    ) -> user_pb2.ListUsersResponse:
        """List users with pagination"""
        try:
            conditions = query.parse_filter(request.filter)
        except query.QueryError as error:
            raise _invalid("filter", str(error)) from None
        try:
            orderings = query.parse_order_by(request.order_by)
        except query.QueryError as error:
            raise _invalid("order_by", str(error)) from None
        # A token is bound to what the listing means, not how it was spelt, and to the caller.
        binding = query.canonical(conditions, orderings)
        principal = _principal()
        after = None
        if request.page_token:
            try:
                after = self._tokens.open(request.page_token, query=binding, principal=principal)
            except page_tokens.PageTokenError as error:
                raise _invalid("page_token", str(error)) from None
        page = await self._repository.list(
            ListQuery(conditions, orderings), after, request.page_size
        )
        next_token = ""
        if page.next_cursor is not None:
            next_token = self._tokens.issue(page.next_cursor, query=binding, principal=principal)
        return user_pb2.ListUsersResponse(
            users=[_user_message(record) for record in page.records],
            next_page_token=next_token,
            total_count=page.total_count,
        )

    async def create_user(
        self,
        request: user_pb2.CreateUserRequest,
        context: grpc.aio.ServicerContext[user_pb2.CreateUserRequest, user_pb2.CreateUserResponse],
    ) -> user_pb2.CreateUserResponse:
        """Create a new user"""
        try:
            password_hash = await self._passwords.hash(request.password)
        except passwords.PasswordTooLong as error:  # for callers the proto's 128 did not stop
            raise _invalid("password", f"password: {error}") from None
        new = NewUser(
            id=str(uuid.uuid4()),
            email=request.email,
            first_name=request.first_name,
            last_name=request.last_name,
            role=request.role,
            password_hash=password_hash,
            created_at=_now_micros(),
        )
        return user_pb2.CreateUserResponse(user=await _to_the_end(self._create(new)))

    async def update_user(
        self,
        request: user_pb2.UpdateUserRequest,
        context: grpc.aio.ServicerContext[user_pb2.UpdateUserRequest, user_pb2.UpdateUserResponse],
    ) -> user_pb2.UpdateUserResponse:
        """Update an existing user"""
        fields = _masked_fields(request)
        if not fields:  # an empty mask and nothing set: nothing to change
            return user_pb2.UpdateUserResponse(user=await self._current(request.id))
        changes = UserChanges(
            updated_at=_now_micros(), **{name: getattr(request, name) for name in fields}
        )
        user = await _to_the_end(self._update(request.id, changes))
        return user_pb2.UpdateUserResponse(user=user)

    async def delete_user(
        self,
        request: user_pb2.DeleteUserRequest,
        context: grpc.aio.ServicerContext[user_pb2.DeleteUserRequest, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        """Delete a user"""
        await _to_the_end(self._delete(request.id))
        return empty_pb2.Empty()

    async def stream_user_updates(
        self,
        request: user_pb2.StreamUserUpdatesRequest,
        context: grpc.aio.ServicerContext[user_pb2.StreamUserUpdatesRequest, user_pb2.UserUpdate],
    ) -> AsyncIterator[user_pb2.UserUpdate]:
        """Stream user updates"""
        with self._updates.subscribe(request.user_ids) as subscription:
            # Shutdown ends the subscription, and so the stream, within the stream grace.
            closer = asyncio.ensure_future(_close_on(runtime.shutting_down(), subscription))
            try:
                async for update in subscription:
                    yield update
            except events.SubscriberTooSlow as error:
                raise runtime.ResourceExhausted(str(error)) from None
            except events.SubscriptionEnded as error:
                raise runtime.Unavailable(str(error)) from None
            finally:
                closer.cancel()

    # The writes, each with what must follow its commit: the streams and the cache hear of
    # it. Announced straight after the commit, before the cache (which may wait on Redis), so
    # updates reach streams in the order their writes committed.

    async def _create(self, new: NewUser) -> user_pb2.User:
        try:
            record = await self._repository.create(new)
        except EmailTaken:
            raise _email_taken() from None
        user = _user_message(record)
        await self._announce(Update.UPDATE_TYPE_CREATED, user)
        return user

    async def _update(self, user_id: str, changes: UserChanges) -> user_pb2.User:
        async with self._cache.writing(user_id) as write:
            try:
                record = await self._repository.update(user_id, changes)
            except EmailTaken:
                write.unchanged()
                raise _email_taken() from None
            if record is None:
                write.unchanged()
                raise _not_found(user_id)
            user = _user_message(record)
            write.offer(record.version, user.SerializeToString())
            await self._announce(Update.UPDATE_TYPE_UPDATED, user)
        return user

    async def _delete(self, user_id: str) -> None:
        async with self._cache.writing(user_id) as write:
            record = await self._repository.delete(user_id)
            if record is None:
                write.unchanged()
                raise _not_found(user_id)
            write.forget(record.version + 1)
            await self._announce(Update.UPDATE_TYPE_DELETED, _user_message(record))

    async def _current(self, user_id: str) -> user_pb2.User:
        record = await self._repository.get(user_id)
        if record is None:
            raise _not_found(user_id)
        return _user_message(record)

    async def _announce(self, kind: user_pb2.UserUpdate.UpdateType, user: user_pb2.User) -> None:
        """Tell the streams. The write has committed, so a bus failure is logged, not answered:
        the caller's change happened."""
        update = Update(type=kind, user=user, timestamp=_timestamp(_now_micros()))
        try:
            await self._updates.publish(update)
        except events.PublishFailed as error:
            logger.warning("%s", error)


async def _to_the_end(write: Coroutine[Any, Any, T]) -> T:
    """Run a write to its end even when its caller is cancelled (a deadline, a client gone):
    once the store may have committed, the streams and the cache must hear of it."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_log_unheard_failure)
        raise


def _log_unheard_failure(task: asyncio.Future[Any]) -> None:
    """A write whose caller left: its outcome is nobody's, but a failure is logged."""
    if task.cancelled():
        return
    error = task.exception()
    # A ServiceError is an answer nobody waits for any more; anything else is a failure.
    if error is not None and not isinstance(error, runtime.ServiceError):
        logger.warning("a write whose caller left failed: %r", error)


async def _close_on(event: asyncio.Event, subscription: events.Subscription) -> None:
    await event.wait()
    # UNAVAILABLE, not a clean end: the client should resubscribe elsewhere, not stop.
    subscription.end(events.HubClosed)


def _masked_fields(request: user_pb2.UpdateUserRequest) -> tuple[str, ...]:
    """The fields to change, by AIP-134: the mask's paths; `*` for every updatable field; no
    mask for every field that is set (non-default, as proto3 fields have no presence)."""
    paths = list(request.update_mask.paths)
    if len(paths) > MAX_MASK_PATHS:
        raise _invalid("update_mask", f"update_mask: at most {MAX_MASK_PATHS} paths")
    if not paths:
        return tuple(name for name in UPDATABLE_FIELDS if getattr(request, name))
    if "*" in paths:
        if len(paths) != 1:
            raise _invalid("update_mask", "update_mask: '*' must be the only path")
        fields: tuple[str, ...] = UPDATABLE_FIELDS
    else:
        for path in paths:
            if path in FIXED_FIELDS:
                raise _invalid("update_mask", f"update_mask: {path} cannot be changed")
            if path not in UPDATABLE_FIELDS:
                raise _invalid(
                    "update_mask",
                    f"update_mask: unknown path {path[:40]!r}; paths: "
                    + ", ".join(UPDATABLE_FIELDS),
                )
        fields = tuple(name for name in UPDATABLE_FIELDS if name in paths)
    for name in fields:
        if name in REQUIRED_FIELDS and not getattr(request, name):
            raise _invalid(name, f"{name}: the mask names it, so it must be set, not cleared")
    return fields


def _principal() -> str | None:
    claims = runtime.claims()
    if claims is None:
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) else None


def _user_message(record: UserRecord) -> user_pb2.User:
    return user_pb2.User(
        id=record.id,
        email=record.email,
        first_name=record.first_name,
        last_name=record.last_name,
        role=record.role,  # type: ignore[arg-type]
        created_at=_timestamp(record.created_at),
        updated_at=_timestamp(record.updated_at),
    )


def _timestamp(micros: int) -> timestamp_pb2.Timestamp:
    seconds, micro = divmod(micros, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micro * 1000)


def _now_micros() -> int:
    return time.time_ns() // 1000


def _not_found(user_id: str) -> runtime.NotFound:
    return runtime.NotFound(
        "user not found",
        [
            error_details_pb2.ErrorInfo(reason="USER_NOT_FOUND", domain=DOMAIN),
            error_details_pb2.ResourceInfo(resource_type="user.v1.User", resource_name=user_id),
        ],
    )


def _email_taken() -> runtime.AlreadyExists:
    # Says no more than that the address is taken: not by whom, nor the address itself.
    return runtime.AlreadyExists(
        "a user with this email already exists",
        [error_details_pb2.ErrorInfo(reason="EMAIL_TAKEN", domain=DOMAIN)],
    )


def _invalid(field: str, description: str) -> runtime.InvalidArgument:
    """INVALID_ARGUMENT for one field; `description` starts with the field's name."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
    return runtime.InvalidArgument(
        description,
        [error_details_pb2.BadRequest(field_violations=[violation])],
    )
