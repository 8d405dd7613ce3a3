"""The UserService's semantics through the generated typed client: every RPC, every error path
with its typed details."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from google.rpc import error_details_pb2
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import interceptors, serve
from user.v1 import user_client, user_pb2, user_testing

from examples.userservice import app, page_tokens
from examples.userservice.services.user_service import UserService
from tests.userservice.harness import config_for, mask, new_user, served, subscribed

Client = user_client.UserServiceClient


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Client, app.Dependencies]]:
    async with served(config_for(tmp_path)) as pair:
        yield pair


@pytest.fixture
def client(service: tuple[Client, app.Dependencies]) -> Client:
    return service[0]


def violation_fields(error: runtime.ServiceError) -> list[str]:
    assert error.bad_request is not None
    return [violation.field for violation in error.bad_request.field_violations]


async def test_create_then_get_returns_the_user_without_the_password(
    service: tuple[Client, app.Dependencies],
) -> None:
    client, dependencies = service
    created = (await client.create_user(new_user(1, role=user_pb2.USER_ROLE_ADMIN))).user
    assert created.id and created.email == "user1@example.com"
    assert created.role == user_pb2.USER_ROLE_ADMIN
    assert created.created_at.seconds > 0 and created.created_at == created.updated_at
    fetched = (await client.get_user(user_pb2.GetUserRequest(id=created.id))).user
    assert fetched == created
    assert "correct horse" not in str(fetched)
    stored = await dependencies.repository.get(created.id)
    assert stored is not None and stored.password_hash.startswith("$argon2id$v=19$")
    assert await dependencies.passwords.verify(stored.password_hash, "correct horse battery")


async def test_email_is_unique_without_regard_to_case_and_the_error_names_no_one(
    client: Client,
) -> None:
    await client.create_user(new_user(email="Ada@Example.com"))
    with pytest.raises(runtime.AlreadyExists) as raised:
        await client.create_user(new_user(email="ada@EXAMPLE.com"))
    assert raised.value.message == "a user with this email already exists"
    assert raised.value.error_info is not None and raised.value.error_info.reason == "EMAIL_TAKEN"
    assert "ada" not in str(raised.value.details).lower()


async def test_absent_users_are_not_found_with_typed_details(client: Client) -> None:
    for call in (
        client.get_user(user_pb2.GetUserRequest(id="missing")),
        client.update_user(user_pb2.UpdateUserRequest(id="missing", first_name="X")),
        client.delete_user(user_pb2.DeleteUserRequest(id="missing")),
    ):
        with pytest.raises(runtime.NotFound) as raised:
            await call
        assert raised.value.error_info is not None
        assert raised.value.error_info.reason == "USER_NOT_FOUND"
        resource = raised.value.detail(error_details_pb2.ResourceInfo)
        assert resource is not None and resource.resource_name == "missing"


async def test_delete_removes_the_user(client: Client) -> None:
    user = (await client.create_user(new_user())).user
    await client.delete_user(user_pb2.DeleteUserRequest(id=user.id))
    with pytest.raises(runtime.NotFound):
        await client.get_user(user_pb2.GetUserRequest(id=user.id))
    with pytest.raises(runtime.NotFound):
        await client.delete_user(user_pb2.DeleteUserRequest(id=user.id))


async def test_paging_returns_every_user_once_with_the_total(client: Client) -> None:
    ids = {(await client.create_user(new_user(n))).user.id for n in range(23)}
    seen: list[str] = []
    token = ""
    for _ in range(10):
        page = await client.list_users(user_pb2.ListUsersRequest(page_size=10, page_token=token))
        assert page.total_count == 23
        seen += [user.id for user in page.users]
        token = page.next_page_token
        if not token:
            break
    else:
        pytest.fail(f"23 users in pages of 10 still had a next page token after 10 pages: {seen}")
    assert len(seen) == 23 and set(seen) == ids
    assert seen == sorted(seen)  # no order_by: by id


async def test_filter_and_order_by(client: Client) -> None:
    for n in range(6):
        role = user_pb2.USER_ROLE_ADMIN if n % 2 else user_pb2.USER_ROLE_USER
        await client.create_user(new_user(n, role=role))
    page = await client.list_users(
        user_pb2.ListUsersRequest(
            page_size=2, filter="role:USER_ROLE_ADMIN", order_by="created_at desc"
        )
    )
    assert page.total_count == 3
    assert [user.email for user in page.users] == ["user5@example.com", "user3@example.com"]
    rest = await client.list_users(
        user_pb2.ListUsersRequest(
            page_size=2,
            filter="role:USER_ROLE_ADMIN",
            order_by="created_at desc",
            page_token=page.next_page_token,
        )
    )
    assert [user.email for user in rest.users] == ["user1@example.com"]
    assert rest.next_page_token == ""
    by_email = await client.list_users(
        user_pb2.ListUsersRequest(page_size=10, filter='email:"USER4@example.com"')
    )
    assert [user.email for user in by_email.users] == ["user4@example.com"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"filter": "password:x"}, "filter"),
        ({"filter": "role:USER_ROLE_ADMIN OR 1=1"}, "filter"),
        ({"filter": 'email:"a"; DROP TABLE users'}, "filter"),
        ({"order_by": "password desc"}, "order_by"),
        ({"order_by": "created_at sideways"}, "order_by"),
        ({"page_token": "not-a-token"}, "page_token"),
    ],
)
async def test_bad_list_requests_are_invalid_argument_naming_the_field(
    client: Client, fields: dict[str, str], field: str
) -> None:
    with pytest.raises(runtime.InvalidArgument) as raised:
        await client.list_users(user_pb2.ListUsersRequest(page_size=5, **fields))
    assert violation_fields(raised.value) == [field]
    assert raised.value.message.startswith(f"{field}")


async def test_a_page_token_is_bound_to_its_filter_and_order(client: Client) -> None:
    for n in range(3):
        await client.create_user(new_user(n))
    first = await client.list_users(user_pb2.ListUsersRequest(page_size=1, order_by="email"))
    token = first.next_page_token
    # The same listing spelt another way still pages on.
    await client.list_users(
        user_pb2.ListUsersRequest(page_size=1, order_by="email asc", page_token=token)
    )
    for other in (
        {"order_by": "email desc"},
        {"order_by": "email", "filter": "role:USER_ROLE_USER"},
    ):
        with pytest.raises(runtime.InvalidArgument) as raised:
            await client.list_users(
                user_pb2.ListUsersRequest(page_size=1, page_token=token, **other)
            )
        assert raised.value.message == page_tokens.INVALID


async def test_an_expired_page_token_is_invalid_argument(
    service: tuple[Client, app.Dependencies],
) -> None:
    client, dependencies = service
    for n in range(2):
        await client.create_user(new_user(n))
    now = [time.time()]
    tokens = page_tokens.PageTokens(page_tokens.generate_secret(), 60, clock=lambda: now[0])
    aged = UserService(dataclasses.replace(dependencies, page_tokens=tokens))
    async with user_testing.serve_user_service(aged) as other:
        page = await other.list_users(user_pb2.ListUsersRequest(page_size=1))
        now[0] += 61
        with pytest.raises(runtime.InvalidArgument) as raised:
            await other.list_users(
                user_pb2.ListUsersRequest(page_size=1, page_token=page.next_page_token)
            )
    assert raised.value.message == page_tokens.EXPIRED


async def test_with_auth_a_page_token_is_bound_to_the_caller(tmp_path: Path) -> None:
    secret = "page-token-test-secret-0123456789abcdef"
    settings = serve.ServerSettings(
        interceptors=interceptors.InterceptorSettings(
            auth=interceptors.JwtAuthInterceptor(secret, algorithms=["HS256"])
        )
    )

    def bearer(subject: str) -> tuple[tuple[str, str]]:
        token = jwt.encode({"sub": subject, "exp": int(time.time()) + 60}, secret, "HS256")
        return (("authorization", f"Bearer {token}"),)

    async with served(config_for(tmp_path), settings) as (client, _):
        for n in range(2):
            await client.create_user(new_user(n), metadata=bearer("alice"))
        page = await client.list_users(
            user_pb2.ListUsersRequest(page_size=1), metadata=bearer("alice")
        )
        again = user_pb2.ListUsersRequest(page_size=1, page_token=page.next_page_token)
        await client.list_users(again, metadata=bearer("alice"))
        with pytest.raises(runtime.InvalidArgument) as raised:
            await client.list_users(again, metadata=bearer("mallory"))
        assert raised.value.message == page_tokens.INVALID


async def test_update_changes_only_the_masked_fields(client: Client) -> None:
    user = (await client.create_user(new_user())).user
    updated = (
        await client.update_user(
            user_pb2.UpdateUserRequest(
                id=user.id,
                update_mask=mask("first_name"),
                first_name="Augusta",
                last_name="Ignored",
                email="ignored@example.com",
            )
        )
    ).user
    assert updated.first_name == "Augusta"
    assert (updated.last_name, updated.email) == (user.last_name, user.email)
    assert updated.created_at == user.created_at
    assert updated.updated_at.ToMicroseconds() > user.updated_at.ToMicroseconds()
    assert (await client.get_user(user_pb2.GetUserRequest(id=user.id))).user == updated


async def test_an_empty_mask_updates_the_fields_that_are_set(client: Client) -> None:
    user = (await client.create_user(new_user())).user
    updated = (
        await client.update_user(
            user_pb2.UpdateUserRequest(id=user.id, last_name="Byron", role=user_pb2.USER_ROLE_ADMIN)
        )
    ).user
    assert (updated.first_name, updated.last_name) == (user.first_name, "Byron")
    assert updated.role == user_pb2.USER_ROLE_ADMIN and updated.email == user.email


async def test_a_wildcard_mask_replaces_every_updatable_field(client: Client) -> None:
    user = (await client.create_user(new_user(role=user_pb2.USER_ROLE_ADMIN))).user
    updated = (
        await client.update_user(
            user_pb2.UpdateUserRequest(
                id=user.id,
                update_mask=mask("*"),
                email="new@example.com",
                first_name="A",
                last_name="B",
            )
        )
    ).user
    assert (updated.email, updated.first_name, updated.last_name) == ("new@example.com", "A", "B")
    assert updated.role == user_pb2.USER_ROLE_UNSPECIFIED


@pytest.mark.parametrize(
    ("paths", "field"),
    [
        (("id",), "update_mask"),
        (("created_at",), "update_mask"),
        (("updated_at",), "update_mask"),
        (("password",), "update_mask"),
        (("nickname",), "update_mask"),
        (("first_name", "id"), "update_mask"),
        (("*", "email"), "update_mask"),
        (("email",), "email"),  # named, so it would be cleared
    ],
)
async def test_masks_that_cannot_apply_are_invalid_argument(
    client: Client, paths: tuple[str, ...], field: str
) -> None:
    user = (await client.create_user(new_user())).user
    with pytest.raises(runtime.InvalidArgument) as raised:
        await client.update_user(
            user_pb2.UpdateUserRequest(id=user.id, update_mask=mask(*paths), first_name="X")
        )
    assert violation_fields(raised.value) == [field]
    assert (await client.get_user(user_pb2.GetUserRequest(id=user.id))).user == user


async def test_an_update_to_a_taken_email_is_already_exists(client: Client) -> None:
    await client.create_user(new_user(1))
    second = (await client.create_user(new_user(2))).user
    with pytest.raises(runtime.AlreadyExists):
        await client.update_user(
            user_pb2.UpdateUserRequest(
                id=second.id, update_mask=mask("email"), email="USER1@example.com"
            )
        )


async def _next(stream: AsyncIterator[user_pb2.UserUpdate]) -> user_pb2.UserUpdate:
    return await asyncio.wait_for(anext(stream), timeout=5)


async def test_streams_see_creates_updates_and_deletes_as_they_happen(
    service: tuple[Client, app.Dependencies],
) -> None:
    client, dependencies = service
    watched = (await client.create_user(new_user(1))).user
    everything = client.stream_user_updates(user_pb2.StreamUserUpdatesRequest())
    one = client.stream_user_updates(user_pb2.StreamUserUpdatesRequest(user_ids=[watched.id]))
    pending = [asyncio.ensure_future(_next(everything)), asyncio.ensure_future(_next(one))]
    await subscribed(dependencies, 2, seconds=5)
    other = (await client.create_user(new_user(2))).user
    created = await pending[0]
    assert created.type == user_pb2.UserUpdate.UPDATE_TYPE_CREATED and created.user == other
    await client.update_user(user_pb2.UpdateUserRequest(id=watched.id, first_name="Watched"))
    updated = await pending[1]
    assert updated.type == user_pb2.UserUpdate.UPDATE_TYPE_UPDATED
    assert updated.user.first_name == "Watched"
    assert (await _next(everything)).user.first_name == "Watched"
    await client.delete_user(user_pb2.DeleteUserRequest(id=watched.id))
    for stream in (everything, one):
        deleted = await _next(stream)
        assert deleted.type == user_pb2.UserUpdate.UPDATE_TYPE_DELETED
        assert deleted.user.id == watched.id
    for stream in (everything, one):
        await stream.aclose()  # type: ignore[attr-defined]


class _HeldUpdates:
    """A repository whose updates wait for `release` after the store has committed them."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.committed = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def update(self, user_id: str, changes: Any) -> Any:
        record = await self._inner.update(user_id, changes)
        self.committed.set()
        await self.release.wait()
        return record


async def test_a_write_whose_caller_is_cancelled_still_reaches_the_streams(
    service: tuple[Client, app.Dependencies],
) -> None:
    client, dependencies = service
    user = (await client.create_user(new_user())).user
    held = _HeldUpdates(dependencies.repository)
    servicer = UserService(dataclasses.replace(dependencies, repository=held))
    with dependencies.updates.subscribe([user.id]) as subscription:
        request = user_pb2.UpdateUserRequest(id=user.id, first_name="Cancelled")
        call = asyncio.ensure_future(servicer.update_user(request, None))  # type: ignore[arg-type]
        await asyncio.wait_for(held.committed.wait(), 5)
        call.cancel()  # the deadline passed or the client left, after the commit
        with pytest.raises(asyncio.CancelledError):
            await call
        held.release.set()
        update = await asyncio.wait_for(subscription.next(), 5)
    assert update.user.first_name == "Cancelled"
    assert (await client.get_user(user_pb2.GetUserRequest(id=user.id))).user.first_name == (
        "Cancelled"
    )


async def test_a_nul_in_an_id_or_a_name_is_refused_before_any_store_sees_it(
    client: Client,
) -> None:
    """PostgreSQL cannot store NUL in text: the proto refuses it for every store alike."""
    for call in (
        client.get_user(user_pb2.GetUserRequest(id="a\x00b")),
        client.delete_user(user_pb2.DeleteUserRequest(id="a\x00b")),
        client.create_user(new_user(first_name="A\x00")),
        client.update_user(user_pb2.UpdateUserRequest(id="x", last_name="B\x00")),
    ):
        with pytest.raises(runtime.InvalidArgument):
            await call
