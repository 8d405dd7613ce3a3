"""Tests of UserService, the implementation of user.v1.UserService.

Yours to edit. `pyservice scaffold` adds the tests of each RPC the proto gains and changes nothing
else. A test that calls an RPC skips while its handler is a stub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest
from google.protobuf import empty_pb2
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import testing
from user.v1 import user_client, user_pb2, user_testing

from tests.userservice.harness import config_for, new_user, served


# Not user_testing.user_service_client_fixture(UserService): the service needs a store, so
# each test gets one of its own in a temporary folder.
@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[user_client.UserServiceClient]:
    async with served(config_for(tmp_path)) as (connected, _):
        yield connected


async def created(client: user_client.UserServiceClient) -> user_pb2.User:
    return (await client.create_user(user_testing.valid_create_user_request())).user


@pytest.mark.asyncio
async def test_get_user(client: user_client.UserServiceClient) -> None:
    with testing.skip_if_unimplemented("GetUser"):
        user = await created(client)
        response = await client.get_user(user_pb2.GetUserRequest(id=user.id))
    assert response.user == user
    assert isinstance(response, user_pb2.GetUserResponse)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", user_testing.INVALID_GET_USER_REQUEST, ids=lambda case: case.name)
async def test_get_user_rejects_invalid_requests(
    client: user_client.UserServiceClient,
    case: testing.InvalidCase[user_pb2.GetUserRequest],
) -> None:
    with pytest.raises(runtime.InvalidArgument) as raised:
        await client.get_user(case.build())
    testing.assert_violation(raised.value, case)


@pytest.mark.asyncio
async def test_list_users(client: user_client.UserServiceClient) -> None:
    with testing.skip_if_unimplemented("ListUsers"):
        response = await client.list_users(user_testing.valid_list_users_request())
    assert isinstance(response, user_pb2.ListUsersResponse)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "case",
    user_testing.INVALID_LIST_USERS_REQUEST,
    ids=lambda case: case.name,
)
async def test_list_users_rejects_invalid_requests(
    client: user_client.UserServiceClient,
    case: testing.InvalidCase[user_pb2.ListUsersRequest],
) -> None:
    with pytest.raises(runtime.InvalidArgument) as raised:
        await client.list_users(case.build())
    testing.assert_violation(raised.value, case)


@pytest.mark.asyncio
async def test_create_user(client: user_client.UserServiceClient) -> None:
    with testing.skip_if_unimplemented("CreateUser"):
        response = await client.create_user(user_testing.valid_create_user_request())
    assert response.user.id
    assert isinstance(response, user_pb2.CreateUserResponse)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "case",
    user_testing.INVALID_CREATE_USER_REQUEST,
    ids=lambda case: case.name,
)
async def test_create_user_rejects_invalid_requests(
    client: user_client.UserServiceClient,
    case: testing.InvalidCase[user_pb2.CreateUserRequest],
) -> None:
    with pytest.raises(runtime.InvalidArgument) as raised:
        await client.create_user(case.build())
    testing.assert_violation(raised.value, case)


@pytest.mark.asyncio
async def test_update_user(client: user_client.UserServiceClient) -> None:
    with testing.skip_if_unimplemented("UpdateUser"):
        user = await created(client)
        response = await client.update_user(
            user_pb2.UpdateUserRequest(id=user.id, first_name="Renamed")
        )
    assert response.user.first_name == "Renamed"
    assert isinstance(response, user_pb2.UpdateUserResponse)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "case",
    user_testing.INVALID_UPDATE_USER_REQUEST,
    ids=lambda case: case.name,
)
async def test_update_user_rejects_invalid_requests(
    client: user_client.UserServiceClient,
    case: testing.InvalidCase[user_pb2.UpdateUserRequest],
) -> None:
    with pytest.raises(runtime.InvalidArgument) as raised:
        await client.update_user(case.build())
    testing.assert_violation(raised.value, case)


@pytest.mark.asyncio
async def test_delete_user(client: user_client.UserServiceClient) -> None:
    with testing.skip_if_unimplemented("DeleteUser"):
        user = await created(client)
        response = await client.delete_user(user_pb2.DeleteUserRequest(id=user.id))
    assert isinstance(response, empty_pb2.Empty)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "case",
    user_testing.INVALID_DELETE_USER_REQUEST,
    ids=lambda case: case.name,
)
async def test_delete_user_rejects_invalid_requests(
    client: user_client.UserServiceClient,
    case: testing.InvalidCase[user_pb2.DeleteUserRequest],
) -> None:
    with pytest.raises(runtime.InvalidArgument) as raised:
        await client.delete_user(case.build())
    testing.assert_violation(raised.value, case)


@pytest.mark.asyncio
async def test_stream_user_updates(client: user_client.UserServiceClient) -> None:
    # Takes the first response (a stream that answers events needs one caused first), then
    # closes the stream, which cancels the call: the fixture fails the test if the handler is
    # still running when the server stops.
    responses = client.stream_user_updates(
        user_testing.valid_stream_user_updates_request(),
        timeout=5,
    )
    with testing.skip_if_unimplemented("StreamUserUpdates"):
        first = asyncio.ensure_future(anext(responses))
        # The stream answers changes, from when it is listening: make them until one arrives.
        users: list[user_pb2.User] = []
        while not first.done() and len(users) < 100:
            users.append((await client.create_user(new_user(len(users)))).user)
            await asyncio.wait([first], timeout=0.02)
        response = await first
    assert response.type == user_pb2.UserUpdate.UPDATE_TYPE_CREATED
    assert response.user in users
    assert isinstance(response, user_pb2.UserUpdate)
    assert isinstance(responses, AsyncGenerator)
    await responses.aclose()
