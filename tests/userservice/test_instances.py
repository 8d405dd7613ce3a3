"""Two UserService instances behind one address (issue 10): each with Dependencies of its own,
sharing one store (PostgreSQL, or one SQLite file) and one Redis, configured from PYSERVICE_*
as in production.

What one instance does, the other shows: a write reaches the other's subscribers, its cached
copy of a user is never served after the write, a deleted user is gone from both, and a page
token pages on at the other instance when, and only when, both share the token secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from protoc_gen_pyservice import runtime
from user.v1 import user_client, user_pb2

from examples.userservice import app, cache, config
from tests.userservice.harness import config_for, new_user, served, subscribed
from tests.userservice.test_streams import WAIT_SECONDS

Client = user_client.UserServiceClient


@dataclass(frozen=True)
class Shared:
    """Where both instances keep their state."""

    database_url: str
    redis_url: str

    def environment(self, secret: bytes) -> dict[str, str]:
        return {
            "PYSERVICE_DATABASE_URL": self.database_url,
            "PYSERVICE_REDIS_URL": self.redis_url,
            "PYSERVICE_PAGE_TOKEN_SECRET": secret.hex(),
        }


@pytest.fixture(params=["postgres", "sqlite"])
def shared(request: pytest.FixtureRequest, tmp_path: Path, empty_redis_url: str) -> Shared:
    if request.param == "postgres":
        return Shared(request.getfixturevalue("postgres_database_url"), empty_redis_url)
    return Shared(f"sqlite:///{tmp_path}/shared.db", empty_redis_url)


@dataclass
class Instance:
    client: Client
    dependencies: app.Dependencies


@contextlib.asynccontextmanager
async def instance(folder: Path, shared: Shared, secret: bytes) -> AsyncIterator[Instance]:
    """One instance, configured from the environment as `python -m examples.userservice` is
    (with cheap password hashing, as every test server is)."""
    from_environment = config.service_config_from(shared.environment(secret))
    cheap = config_for(folder)
    service_config = dataclasses.replace(
        from_environment,
        password_parameters=cheap.password_parameters,
        allow_weak_passwords_for_tests=True,
    )
    async with served(service_config) as (client, dependencies):
        yield Instance(client, dependencies)


@contextlib.asynccontextmanager
async def two_instances(
    folder: Path, shared: Shared, secret_b: bytes | None = None
) -> AsyncIterator[tuple[Instance, Instance]]:
    """Instances A and B; B signs page tokens with `secret_b` when given, else with A's."""
    secret_a = secrets.token_bytes(32)
    async with (
        instance(folder, shared, secret_a) as a,
        instance(folder, shared, secret_b or secret_a) as b,
    ):
        yield a, b


async def next_update(stream: AsyncIterator[user_pb2.UserUpdate]) -> user_pb2.UserUpdate:
    return await asyncio.wait_for(anext(stream), WAIT_SECONDS)


def cached_version(shared: Shared, user_id: str) -> bytes | None:
    """The version of the user's entry in the shared cache, None when there is none."""
    with redis.Redis.from_url(shared.redis_url) as client:
        version = client.hget(cache.DEFAULT_KEY_PREFIX + user_id, "v")
    assert version is None or isinstance(version, bytes)
    return version


async def test_a_write_on_one_instance_reaches_subscribers_on_the_other(
    tmp_path: Path, shared: Shared
) -> None:
    async with two_instances(tmp_path, shared) as (a, b):
        everyone = b.client.stream_user_updates(user_pb2.StreamUserUpdatesRequest())
        first = asyncio.ensure_future(next_update(everyone))
        await subscribed(b.dependencies, 1)
        created = (await a.client.create_user(new_user(1))).user
        update = await first
        assert update.type == user_pb2.UserUpdate.UPDATE_TYPE_CREATED and update.user == created

        one = b.client.stream_user_updates(user_pb2.StreamUserUpdatesRequest(user_ids=[created.id]))
        pending = asyncio.ensure_future(next_update(one))
        await subscribed(b.dependencies, 2)
        await a.client.create_user(new_user(2))  # of another user: `one` does not see it
        assert (await next_update(everyone)).user.email == "user2@example.com"
        renamed = (
            await a.client.update_user(user_pb2.UpdateUserRequest(id=created.id, first_name="B"))
        ).user
        for update in (await pending, await next_update(everyone)):
            assert update.type == user_pb2.UserUpdate.UPDATE_TYPE_UPDATED
            assert update.user == renamed
        await a.client.delete_user(user_pb2.DeleteUserRequest(id=created.id))
        for stream in (one, everyone):
            deleted = await next_update(stream)
            assert deleted.type == user_pb2.UserUpdate.UPDATE_TYPE_DELETED
            assert deleted.user.id == created.id
            await stream.aclose()  # type: ignore[attr-defined]


async def test_the_other_instance_never_serves_its_cached_copy_after_a_write(
    tmp_path: Path, shared: Shared
) -> None:
    async with two_instances(tmp_path, shared) as (a, b):
        user = (await a.client.create_user(new_user(1))).user
        get = user_pb2.GetUserRequest(id=user.id)
        assert (await b.client.get_user(get)).user == user
        assert cached_version(shared, user.id) == b"1"  # B cached the user as it was
        assert (await b.client.get_user(get)).user == user

        renamed = (
            await a.client.update_user(user_pb2.UpdateUserRequest(id=user.id, last_name="Byron"))
        ).user
        assert renamed.last_name == "Byron"
        assert (await b.client.get_user(get)).user == renamed
        assert cached_version(shared, user.id) == b"2"

        await a.client.delete_user(user_pb2.DeleteUserRequest(id=user.id))
        for client in (b.client, a.client):
            with pytest.raises(runtime.NotFound):
                await client.get_user(get)
        assert cached_version(shared, user.id) == b"3"  # the tombstone, which B does not serve


async def test_a_page_token_pages_on_at_the_other_instance_with_the_same_secret(
    tmp_path: Path, shared: Shared
) -> None:
    async with two_instances(tmp_path, shared) as (a, b):
        ids = {(await a.client.create_user(new_user(n))).user.id for n in range(5)}
        request = user_pb2.ListUsersRequest(page_size=2, order_by="email desc")
        seen: list[str] = []
        clients = [a.client, b.client]
        for turn in range(10):  # bounded: 3 pages are expected
            page = await clients[turn % 2].list_users(request)
            assert page.total_count == 5
            seen += [user.id for user in page.users]
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
    assert len(seen) == 5 and set(seen) == ids


async def test_a_page_token_of_another_secret_is_invalid_argument(
    tmp_path: Path, shared: Shared
) -> None:
    async with two_instances(tmp_path, shared, secret_b=secrets.token_bytes(32)) as (a, b):
        for n in range(3):
            await a.client.create_user(new_user(n))
        request = user_pb2.ListUsersRequest(page_size=1)
        from_a = (await a.client.list_users(request)).next_page_token
        from_b = (await b.client.list_users(request)).next_page_token
        assert from_a and from_b
        for client, token in ((b.client, from_a), (a.client, from_b)):
            with pytest.raises(runtime.InvalidArgument) as raised:
                await client.list_users(user_pb2.ListUsersRequest(page_size=1, page_token=token))
            assert raised.value.bad_request is not None
            assert [v.field for v in raised.value.bad_request.field_violations] == ["page_token"]
        # Each still pages on from its own.
        await a.client.list_users(user_pb2.ListUsersRequest(page_size=1, page_token=from_a))
        await b.client.list_users(user_pb2.ListUsersRequest(page_size=1, page_token=from_b))
