"""ServiceError.rpc_error: the call an error came from, typed without None; an error raised in
this process has none and says why."""

from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2, status_pb2
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import bounds
from protoc_gen_pyservice.runtime.errors import STATUS_DETAILS_KEY, as_received

INFO = error_details_pb2.ErrorInfo(reason="USER_NOT_FOUND", domain="users.example.com")


def code_of(error: runtime.ServiceError) -> grpc.StatusCode:
    # Type-checked by mypy over tests/: no None check needed.
    return error.rpc_error.code()


def status_of(call: grpc.aio.AioRpcError) -> status_pb2.Status:
    trailers: Any = call.trailing_metadata() or ()
    raw = next(value for key, value in trailers if key == STATUS_DETAILS_KEY)
    return status_pb2.Status.FromString(raw)


def test_an_error_raised_here_has_no_rpc_error() -> None:
    error = runtime.NotFound("no such user", [INFO])
    with pytest.raises(LookupError, match="NotFound was raised in this process"):
        code_of(error)


def test_a_decoded_error_keeps_its_call() -> None:
    call = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone", None
    )
    error = runtime.from_rpc_error(call)
    assert error.rpc_error is call
    assert code_of(error) is grpc.StatusCode.NOT_FOUND


def test_as_received_is_the_reply_a_server_sends() -> None:
    long_message = "é" * 1000  # over bounds.MAX_MESSAGE_BYTES
    received = as_received(runtime.NotFound(long_message, [INFO]), "made up here")
    assert type(received) is runtime.NotFound
    assert received.message == bounds.cut_message(long_message)
    assert received.message.endswith(bounds.CUT_MARK)
    assert received.details == (INFO,)
    call = received.rpc_error
    assert call.code() is grpc.StatusCode.NOT_FOUND
    assert call.details() == received.message
    assert call.debug_error_string() == "made up here"
    status = status_of(call)
    assert (status.code, status.message, len(status.details)) == (5, received.message, 1)


def test_as_received_without_details_sends_no_status_trailer() -> None:
    received = as_received(runtime.Unavailable("later"), "made up here")
    assert received.details == ()
    assert not list(received.rpc_error.trailing_metadata() or ())
