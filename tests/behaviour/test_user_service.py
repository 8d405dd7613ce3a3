"""A real grpc.aio server on 127.0.0.1 with the generated base class, called through the
generated client."""

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from google.protobuf import empty_pb2
from protoc_gen_pyservice import runtime
from user.v1 import user_client, user_pb2, user_service


class InMemoryUsers(user_service.UserServiceBase):
    def __init__(self) -> None:
        self.users: dict[str, user_pb2.User] = {}

    async def get_user(self, request, context):
        if request.id not in self.users:
            raise runtime.NotFound(f"no user {request.id!r}")
        return user_pb2.GetUserResponse(user=self.users[request.id])

    async def list_users(self, request, context):
        users = list(self.users.values())[: request.page_size]
        return user_pb2.ListUsersResponse(users=users, total_count=len(self.users))

    async def create_user(self, request, context):
        user = user_pb2.User(
            id=str(len(self.users) + 1),
            email=request.email,
            first_name=request.first_name,
            last_name=request.last_name,
            role=request.role,
        )
        self.users[user.id] = user
        return user_pb2.CreateUserResponse(user=user)

    async def update_user(self, request, context):
        user = self.users[request.id]
        user.first_name = request.first_name
        return user_pb2.UpdateUserResponse(user=user)

    async def delete_user(self, request, context):
        self.users.pop(request.id, None)
        return empty_pb2.Empty()

    async def stream_user_updates(
        self, request: user_pb2.StreamUserUpdatesRequest, context: object
    ) -> AsyncIterator[user_pb2.UserUpdate]:
        for user_id in request.user_ids:
            yield user_pb2.UserUpdate(
                type=user_pb2.UserUpdate.UPDATE_TYPE_UPDATED, user=self.users[user_id]
            )


async def start(servicer: user_service.UserServiceBase) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    user_service.add_user_service_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_every_rpc_through_the_generated_client() -> None:
    server, target = await start(InMemoryUsers())
    try:
        async with user_client.UserServiceClient.connect(target) as client:
            created = await client.create_user(
                user_pb2.CreateUserRequest(
                    email="ada@example.com",
                    first_name="Ada",
                    last_name="Lovelace",
                    password="correct horse",
                )
            )
            assert created.user.id == "1"
            got = await client.get_user(user_pb2.GetUserRequest(id="1"), timeout=2)
            assert got.user.email == "ada@example.com"
            listed = await client.list_users(user_pb2.ListUsersRequest(page_size=10))
            assert [u.id for u in listed.users] == ["1"] and listed.total_count == 1
            updated = await client.update_user(
                user_pb2.UpdateUserRequest(id="1", first_name="Augusta"),
                metadata=(("x-request-id", "abc"),),
            )
            assert updated.user.first_name == "Augusta"
            updates = [
                update
                async for update in client.stream_user_updates(
                    user_pb2.StreamUserUpdatesRequest(user_ids=["1", "1"]), timeout=None
                )
            ]
            assert [u.user.first_name for u in updates] == ["Augusta", "Augusta"]
            assert await client.delete_user(user_pb2.DeleteUserRequest(id="1")) == empty_pb2.Empty()
            with pytest.raises(runtime.NotFound) as caught:
                await client.get_user(user_pb2.GetUserRequest(id="1"))
            assert caught.value.message == "no user '1'"
            assert caught.value.rpc_error is not None
            assert caught.value.rpc_error.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(None)


async def test_unfilled_rpcs_answer_unimplemented() -> None:
    server, target = await start(user_service.UserServiceBase())
    try:
        async with user_client.UserServiceClient.connect(target) as client:
            with pytest.raises(runtime.Unimplemented) as caught:
                await client.get_user(user_pb2.GetUserRequest(id="1"))
            assert "/user.v1.UserService/GetUser" in caught.value.message
            with pytest.raises(runtime.Unimplemented):
                async for _ in client.stream_user_updates(user_pb2.StreamUserUpdatesRequest()):
                    pass
    finally:
        await server.stop(None)


async def test_default_deadline_comes_from_the_proto() -> None:
    seen: list[float | None] = []

    class Slow(user_service.UserServiceBase):
        async def get_user(self, request, context):
            seen.append(context.time_remaining())
            return user_pb2.GetUserResponse()

    server, target = await start(Slow())
    try:
        async with user_client.UserServiceClient.connect(target) as client:
            await client.get_user(user_pb2.GetUserRequest(id="1"))
            await client.get_user(user_pb2.GetUserRequest(id="1"), timeout=60)
        assert seen[0] is not None and 4 < seen[0] < 5.5  # (pyservice.method).timeout = 5s
        assert seen[1] is not None and 55 < seen[1] < 60.5
    finally:
        await server.stop(None)


async def test_client_over_a_borrowed_channel_leaves_it_open() -> None:
    server, target = await start(InMemoryUsers())
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            async with user_client.UserServiceClient(channel) as client:
                await client.list_users(user_pb2.ListUsersRequest(page_size=1))
            # The client closed, the channel it borrowed did not.
            again = user_client.UserServiceClient(channel)
            listed = await again.list_users(user_pb2.ListUsersRequest(page_size=1))
            assert listed.total_count == 0
    finally:
        await server.stop(None)


async def test_errors_carry_status_details_in_the_trailer() -> None:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    class Missing(user_service.UserServiceBase):
        async def get_user(self, request, context):
            raise runtime.NotFound(
                "no such user", [error_details_pb2.ErrorInfo(reason="USER_NOT_FOUND")]
            )

    server, target = await start(Missing())
    try:
        async with user_client.UserServiceClient.connect(target) as client:
            with pytest.raises(runtime.NotFound) as caught:
                await client.get_user(user_pb2.GetUserRequest(id="9"))
        # Decoded by the generated client...
        assert caught.value.error_info is not None
        assert caught.value.error_info.reason == "USER_NOT_FOUND"
        # ...from the standard trailer any gRPC client reads.
        status = rpc_status.from_call(caught.value.rpc_error)  # type: ignore[arg-type]
        assert status is not None and status.message == "no such user"
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info) and info.reason == "USER_NOT_FOUND"
    finally:
        await server.stop(None)


async def test_invalid_requests_are_refused_before_the_handler() -> None:

    servicer = InMemoryUsers()
    server, target = await start(servicer)
    try:
        async with user_client.UserServiceClient.connect(target) as client:
            with pytest.raises(runtime.InvalidArgument) as caught:
                await client.create_user(user_pb2.CreateUserRequest(email="nope", password="x"))
        assert not servicer.users  # the handler never ran
        bad_request = caught.value.bad_request
        assert bad_request is not None
        assert [v.field for v in bad_request.field_violations] == [
            "email",
            "first_name",
            "last_name",
            "password",
        ]
    finally:
        await server.stop(None)


async def test_client_can_validate_before_sending() -> None:
    servicer = InMemoryUsers()
    server, target = await start(servicer)
    try:
        async with user_client.UserServiceClient.connect(target, validate=True) as client:
            with pytest.raises(runtime.InvalidArgument) as caught:
                await client.get_user(user_pb2.GetUserRequest(id=""))
            cause = caught.value.__cause__
            assert isinstance(cause, runtime.ValidationError)
            assert [(v.field_path, v.rule_id) for v in cause.violations] == [
                ("id", "string.min_len")
            ]
    finally:
        await server.stop(None)
