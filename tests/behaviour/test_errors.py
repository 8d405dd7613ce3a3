"""Handler exceptions -> status codes with google.rpc details -> typed client exceptions."""

import logging
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from common.v1 import errors_pb2
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from protoc_gen_pyservice import runtime
from user.v1 import user_client, user_pb2, user_service

ERRORS = [
    runtime.Cancelled,
    runtime.Unknown,
    runtime.InvalidArgument,
    runtime.DeadlineExceeded,
    runtime.NotFound,
    runtime.AlreadyExists,
    runtime.PermissionDenied,
    runtime.ResourceExhausted,
    runtime.FailedPrecondition,
    runtime.Aborted,
    runtime.OutOfRange,
    runtime.Unimplemented,
    runtime.Internal,
    runtime.Unavailable,
    runtime.DataLoss,
    runtime.Unauthenticated,
]
DETAILS: list[Message] = [
    error_details_pb2.ErrorInfo(reason="USER_NOT_FOUND", domain="users.example.com"),
    error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="id")]
    ),
    error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=3)),
    error_details_pb2.QuotaFailure(
        violations=[error_details_pb2.QuotaFailure.Violation(subject="user:1")]
    ),
    error_details_pb2.ResourceInfo(resource_type="user", resource_name="users/1"),
    error_details_pb2.PreconditionFailure(
        violations=[error_details_pb2.PreconditionFailure.Violation(type="TOS")]
    ),
    errors_pb2.ErrorInfo(reason="DOMAIN", metadata={"k": "v"}),
    errors_pb2.RateLimitInfo(requests_per_unit=10, unit="minute", retry_after_seconds=6),
]


class Raising(user_service.UserServiceBase):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def get_user(self, request, context):
        raise self.error

    async def stream_user_updates(
        self, request: user_pb2.StreamUserUpdatesRequest, context: object
    ) -> AsyncIterator[user_pb2.UserUpdate]:
        yield user_pb2.UserUpdate()
        raise self.error


async def call_with(
    servicer: user_service.UserServiceBase, errors: runtime.ErrorMap | None = None
) -> runtime.ServiceError:
    server = grpc.aio.server()
    user_service.add_user_service_to_server(servicer, server, errors=errors)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with user_client.UserServiceClient.connect(f"127.0.0.1:{port}") as client:
            with pytest.raises(runtime.ServiceError) as caught:
                await client.get_user(user_pb2.GetUserRequest(id="1"))
            return caught.value
    finally:
        await server.stop(None)


@pytest.mark.parametrize("error_class", ERRORS, ids=lambda c: c.__name__)
async def test_every_status_and_detail_round_trips(error_class: type[runtime.ServiceError]) -> None:
    received = await call_with(Raising(error_class("it failed", DETAILS)))
    assert type(received) is error_class
    assert received.message == "it failed"
    assert received.details == tuple(DETAILS)
    assert received.rpc_error is not None and received.rpc_error.code() == error_class.code


async def test_typed_detail_accessors() -> None:
    received = await call_with(Raising(runtime.NotFound("gone", DETAILS)))
    assert received.error_info == DETAILS[0]
    assert received.bad_request == DETAILS[1]
    assert received.retry_info == DETAILS[2]
    assert received.quota_failure == DETAILS[3]
    assert received.resource_info == DETAILS[4]
    assert received.precondition_failure == DETAILS[5]
    assert received.detail(errors_pb2.RateLimitInfo) == DETAILS[7]


class UserMissing(LookupError):
    pass


class DeletedUser(UserMissing):
    pass


async def test_domain_exceptions_map_through_the_error_map() -> None:
    errors = runtime.ErrorMap(
        {
            UserMissing: runtime.NotFound,
            PermissionError: lambda e: runtime.PermissionDenied(
                "not yours", [error_details_pb2.ErrorInfo(reason="NOT_OWNER")]
            ),
        }
    )
    missing = await call_with(Raising(DeletedUser("user 1 was deleted")), errors)
    assert isinstance(missing, runtime.NotFound) and missing.message == "user 1 was deleted"
    denied = await call_with(Raising(PermissionError("secret internals")), errors)
    assert isinstance(denied, runtime.PermissionDenied)
    assert denied.error_info is not None and denied.error_info.reason == "NOT_OWNER"


async def test_bugs_answer_internal_with_a_request_id_and_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="protoc_gen_pyservice.errors"):
        received = await call_with(Raising(ZeroDivisionError("secret: password=hunter2")))
    assert isinstance(received, runtime.Internal)
    assert "hunter2" not in received.message and "ZeroDivisionError" not in received.message
    request_info = received.detail(error_details_pb2.RequestInfo)
    assert request_info is not None and request_info.request_id in received.message
    (record,) = caplog.records
    assert request_info.request_id in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


async def test_validation_failures_carry_bad_request_and_common_validation_error() -> None:
    server = grpc.aio.server()
    errors = runtime.ErrorMap(validation_detail=errors_pb2.ValidationError)
    user_service.add_user_service_to_server(Raising(RuntimeError()), server, errors=errors)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with user_client.UserServiceClient.connect(f"127.0.0.1:{port}") as client:
            with pytest.raises(runtime.InvalidArgument) as caught:
                await client.get_user(user_pb2.GetUserRequest(id=""))
    finally:
        await server.stop(None)
    assert caught.value.bad_request is not None
    assert [v.field for v in caught.value.bad_request.field_violations] == ["id"]
    common = caught.value.detail(errors_pb2.ValidationError)
    assert common is not None and [v.field for v in common.field_violations] == ["id"]


async def test_stream_errors_reach_the_client_typed() -> None:
    server = grpc.aio.server()
    user_service.add_user_service_to_server(Raising(runtime.Aborted("conflict")), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with user_client.UserServiceClient.connect(f"127.0.0.1:{port}") as client:
            received = []
            with pytest.raises(runtime.Aborted) as caught:
                async for update in client.stream_user_updates(user_pb2.StreamUserUpdatesRequest()):
                    received.append(update)
    finally:
        await server.stop(None)
    assert len(received) == 1  # the update sent before the failure is not swallowed
    assert caught.value.message == "conflict"
