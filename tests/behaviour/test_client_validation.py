"""A client built with validate=True refuses an invalid request with the very error the server
answers for it: InvalidArgument, same message, same BadRequest, same rpc_error contents."""

from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.message import Message
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime.errors import STATUS_DETAILS_KEY
from user.v1 import user_client, user_pb2, user_service

from tests.behaviour.in_memory_users import InMemoryUsers

INVALID: list[tuple[str, Message]] = [
    ("get_user", user_pb2.GetUserRequest(id="")),
    ("create_user", user_pb2.CreateUserRequest(email="nope", password="x")),
]


def status_trailer(error: runtime.ServiceError) -> Any:
    trailers: Any = error.rpc_error.trailing_metadata() or ()
    return next(value for key, value in trailers if key == STATUS_DETAILS_KEY)


async def server_answer(method: str, request: Message) -> runtime.ServiceError:
    """What a caller that does not validate gets back from the server for `request`."""
    server = grpc.aio.server()
    user_service.add_user_service_to_server(InMemoryUsers(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with user_client.UserServiceClient.connect(f"127.0.0.1:{port}") as client:
            with pytest.raises(runtime.ServiceError) as caught:
                await getattr(client, method)(request)
            return caught.value
    finally:
        await server.stop(None)


@pytest.mark.parametrize(("method", "request_message"), INVALID, ids=[m for m, _ in INVALID])
async def test_refused_request_raises_what_the_server_answers(
    method: str, request_message: Message, unused_tcp_port: int
) -> None:
    from_server = await server_answer(method, request_message)
    # Nothing listens there: a request that was sent would fail UNAVAILABLE.
    target = f"127.0.0.1:{unused_tcp_port}"
    async with user_client.UserServiceClient.connect(target, validate=True) as client:
        with pytest.raises(runtime.ServiceError) as caught:
            await getattr(client, method)(request_message)
    refused = caught.value

    assert type(refused) is type(from_server) is runtime.InvalidArgument
    assert refused.message == from_server.message
    assert refused.message.startswith(f"invalid {request_message.DESCRIPTOR.full_name}: ")
    assert refused.details == from_server.details
    assert refused.bad_request is not None and refused.bad_request.field_violations
    assert refused.rpc_error.code() == from_server.rpc_error.code()
    assert refused.rpc_error.details() == from_server.rpc_error.details()
    assert status_trailer(refused) == status_trailer(from_server)
    assert "not sent" in refused.rpc_error.debug_error_string()
    # The violations themselves stay at hand, on the cause.
    cause = refused.__cause__
    assert isinstance(cause, runtime.ValidationError)
    assert [v.field_path for v in cause.violations] == [
        v.field for v in refused.bad_request.field_violations
    ]


async def test_a_valid_request_is_sent(unused_tcp_port: int) -> None:
    target = f"127.0.0.1:{unused_tcp_port}"
    async with user_client.UserServiceClient.connect(target, validate=True) as client:
        with pytest.raises(runtime.Unavailable):
            await client.get_user(user_pb2.GetUserRequest(id="1"), timeout=5)
