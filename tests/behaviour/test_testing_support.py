"""The generated test support for user.v1 against the example implementation: an in-process
server through serve_user_service, the valid requests, every invalid case of the unary and
server-streaming RPCs, the pytest fixture under strict asyncio mode, and leaked tasks."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.model import naming
from protoc_gen_pyservice.runtime import testing
from user.v1 import user_client, user_pb2, user_service, user_testing

from examples.userservice.config import server_settings_from as settings_from
from tests.behaviour.in_memory_users import InMemoryUsers
from tests.conftest import GENERATED, ROOT

SERVICE = user_pb2.DESCRIPTOR.services_by_name["UserService"]


def _cases_of(method: Any) -> tuple[testing.InvalidCase[Any], ...]:
    stem = naming.snake_case(method.input_type.name)
    cases: tuple[testing.InvalidCase[Any], ...] = getattr(user_testing, f"INVALID_{stem.upper()}")
    return cases


def _call(client: user_client.UserServiceClient, method: Any, request: Any) -> Any:
    return getattr(client, naming.snake_case(method.name))(request)


UNARY_AND_SERVER_STREAMING = [m for m in SERVICE.methods if not m.client_streaming]
CASES = [(method, case) for method in UNARY_AND_SERVER_STREAMING for case in _cases_of(method)]


def test_every_request_type_with_rules_has_cases() -> None:
    assert {method.name for method, _ in CASES} == {
        "GetUser",
        "ListUsers",
        "CreateUser",
        "UpdateUser",
        "DeleteUser",
        "StreamUserUpdates",
    }


@pytest.mark.parametrize(
    ("method", "case"), CASES, ids=[f"{method.name}-{case.name}" for method, case in CASES]
)
async def test_each_invalid_case_answers_invalid_argument_for_its_rule(
    method: Any, case: testing.InvalidCase[Any]
) -> None:
    # The example's production settings: tracing, the ErrorMap's common.v1 detail.
    async with user_testing.serve_user_service(InMemoryUsers(), settings_from({})) as client:
        with pytest.raises(runtime.InvalidArgument) as raised:
            if method.server_streaming:
                async for _ in _call(client, method, case.build()):
                    pass
            else:
                await _call(client, method, case.build())
    testing.assert_violation(raised.value, case)


async def test_valid_requests_reach_the_handlers() -> None:
    users = InMemoryUsers()
    async with user_testing.serve_user_service(users) as client:
        created = await client.create_user(user_testing.valid_create_user_request())
        assert created.user.email == "user@example.com"
        listed = await client.list_users(user_testing.valid_list_users_request())
        assert [user.id for user in listed.users] == [created.user.id]
        with pytest.raises(runtime.NotFound):  # valid, but no user has id "a"
            await client.get_user(user_testing.valid_get_user_request())
        await client.delete_user(user_testing.valid_delete_user_request())
        stream = client.stream_user_updates(user_testing.valid_stream_user_updates_request())
        reader = asyncio.ensure_future(anext(aiter(stream)))
        for _ in range(500):  # until the stream's handler has subscribed
            if users._watchers:
                break
            await asyncio.sleep(0.01)
        assert users._watchers, "the stream never subscribed"
        await client.delete_user(user_pb2.DeleteUserRequest(id=created.user.id))
        update = await asyncio.wait_for(reader, 5)
        assert update.type == user_pb2.UserUpdate.UPDATE_TYPE_DELETED
        assert isinstance(stream, AsyncIterator)
        await stream.aclose()  # type: ignore[attr-defined]


async def test_the_server_listens_on_loopback_whatever_the_settings_say() -> None:
    settings = settings_from({"PYSERVICE_PORT": "1"})
    async with user_testing.serve_user_service(InMemoryUsers(), settings) as client:
        await client.list_users(user_testing.valid_list_users_request())
        assert client.channel.get_state() is not None


async def test_a_stub_rpc_is_skipped_not_failed() -> None:
    async with user_testing.serve_user_service(user_service.UserServiceBase()) as client:
        with (
            pytest.raises(pytest.skip.Exception) as skipped,
            testing.skip_if_unimplemented("GetUser"),
        ):
            await client.get_user(user_testing.valid_get_user_request())
        assert str(skipped.value) == "GetUser is still a stub: it answers UNIMPLEMENTED"
        with (
            pytest.raises(pytest.skip.Exception),
            testing.skip_if_unimplemented("StreamUserUpdates"),
        ):
            async for _ in client.stream_user_updates(
                user_testing.valid_stream_user_updates_request()
            ):
                pass


class Leaky(InMemoryUsers):
    async def get_user(self, request: Any, context: Any) -> Any:
        asyncio.get_running_loop().create_task(asyncio.sleep(60), name="left-behind")
        return user_pb2.GetUserResponse()


async def test_a_task_the_server_left_running_fails_the_test() -> None:
    with pytest.raises(AssertionError) as caught:
        async with user_testing.serve_user_service(Leaky()) as client:
            await client.get_user(user_testing.valid_get_user_request())
    assert "tasks the server started are still running: left-behind" in str(caught.value)
    # It was cancelled after being reported, so it does not leak into later tests either.
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "left-behind" and not t.done()]


async def test_tasks_of_the_test_itself_are_not_the_servers() -> None:
    mine = asyncio.ensure_future(asyncio.sleep(60))
    try:
        async with user_testing.serve_user_service(InMemoryUsers()) as client:
            await client.list_users(user_testing.valid_list_users_request())
    finally:
        mine.cancel()


async def test_a_failing_test_body_is_reported_rather_than_a_leak() -> None:
    with pytest.raises(KeyError):
        async with user_testing.serve_user_service(Leaky()) as client:
            await client.get_user(user_testing.valid_get_user_request())
            raise KeyError("the test's own failure")


def test_assert_violation_names_what_it_found_instead() -> None:
    case = user_testing.INVALID_CREATE_USER_REQUEST[0]
    other = runtime.InvalidArgument(
        "invalid",
        [
            runtime.validation.to_bad_request(
                [runtime.Violation("first_name", "string.min_len", "too short")]
            )
        ],
    )
    with pytest.raises(AssertionError, match=r"expected only the violation \('email'"):
        testing.assert_violation(other, case)
    with pytest.raises(AssertionError, match="expected INVALID_ARGUMENT, got NotFound"):
        testing.assert_violation(runtime.NotFound("no"), case)


STRICT_MODULE = """
import asyncio

import pytest
from tests.behaviour.in_memory_users import InMemoryUsers
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import testing
from user.v1 import user_pb2, user_testing

client = user_testing.user_service_client_fixture(InMemoryUsers)


class Leaky(InMemoryUsers):
    async def list_users(self, request, context):
        asyncio.get_running_loop().create_task(asyncio.sleep(60), name="left-behind")
        return user_pb2.ListUsersResponse()


leaky = user_testing.user_service_client_fixture(Leaky)


@pytest.mark.asyncio
async def test_valid(client):
    created = await client.create_user(user_testing.valid_create_user_request())
    assert created.user.email == "user@example.com"


@pytest.mark.asyncio
@pytest.mark.parametrize("case", user_testing.INVALID_CREATE_USER_REQUEST, ids=lambda c: c.name)
async def test_invalid(client, case):
    with pytest.raises(runtime.InvalidArgument) as raised:
        await client.create_user(case.build())
    testing.assert_violation(raised.value, case)


@pytest.mark.asyncio
async def test_leaks(leaky):
    await leaky.list_users(user_testing.valid_list_users_request())
"""


def test_the_fixture_works_in_strict_mode_without_project_configuration(tmp_path: Path) -> None:
    (tmp_path / "test_generated_style.py").write_text(STRICT_MODULE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=strict",
            "-q",
            "-rA",
            "test_generated_style.py",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(GENERATED), str(ROOT)])},
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    # test_leaks itself passes; its fixture's teardown reports the task its call left behind.
    passed = 2 + len(user_testing.INVALID_CREATE_USER_REQUEST)
    assert f"{passed} passed, 1 error" in output, output
    assert "ERROR test_generated_style.py::test_leaks - AssertionError: tasks the server" in output
    assert "tasks the server started are still running: left-behind" in output
