"""Registering a servicer names the RPCs it leaves unimplemented, once, at start."""

import logging

import grpc
import pytest
from user.v1 import user_pb2, user_service


class OnlyGetUser(user_service.UserServiceBase):
    async def get_user(
        self,
        request: user_pb2.GetUserRequest,
        context: grpc.aio.ServicerContext[user_pb2.GetUserRequest, user_pb2.GetUserResponse],
    ) -> user_pb2.GetUserResponse:
        return user_pb2.GetUserResponse()


class Everything(OnlyGetUser):
    async def list_users(self, request, context):
        return user_pb2.ListUsersResponse()

    async def create_user(self, request, context):
        return user_pb2.CreateUserResponse()

    async def update_user(self, request, context):
        return user_pb2.UpdateUserResponse()

    async def delete_user(self, request, context):
        raise NotImplementedError

    async def stream_user_updates(self, request, context):
        yield user_pb2.UserUpdate()


async def test_the_rpcs_left_to_the_base_class_are_named(caplog: pytest.LogCaptureFixture) -> None:
    server = grpc.aio.server()
    with caplog.at_level(logging.WARNING, logger="protoc_gen_pyservice.server"):
        user_service.add_user_service_to_server(OnlyGetUser(), server)
    (record,) = caplog.records
    assert record.getMessage() == (
        "user.v1.UserService: 5 of 6 RPCs not implemented, they answer UNIMPLEMENTED: "
        "ListUsers, CreateUser, UpdateUser, DeleteUser, StreamUserUpdates"
    )


async def test_a_complete_servicer_registers_quietly(caplog: pytest.LogCaptureFixture) -> None:
    server = grpc.aio.server()
    with caplog.at_level(logging.WARNING, logger="protoc_gen_pyservice.server"):
        user_service.add_user_service_to_server(Everything(), server)
    assert caplog.records == []
