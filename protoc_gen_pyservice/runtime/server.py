"""Server-side plumbing generated servicers use: handlers that map errors, and registration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message
from protoc_gen_pyservice.runtime import validation
from protoc_gen_pyservice.runtime.errors import (
    STATUS_DETAILS_KEY,
    InvalidArgument,
    ServiceError,
    Unimplemented,
)

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
Context = grpc.aio.ServicerContext[Req, Resp]


def unimplemented(method: str) -> Unimplemented:
    """The error an RPC nobody implemented answers with."""
    return Unimplemented(f"method not implemented: {method}")


def unimplemented_stream(method: str) -> AsyncIterator[NoReturn]:
    """A response stream that fails at once with UNIMPLEMENTED."""
    return _FailingStream(unimplemented(method))


class _FailingStream:
    """An async iterator whose first step raises; stands in for an unwritten stream handler."""

    def __init__(self, error: ServiceError) -> None:
        self._error = error

    def __aiter__(self) -> _FailingStream:
        return self

    async def __anext__(self) -> NoReturn:
        raise self._error


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: ServiceError) -> NoReturn:
    """End the RPC with the error's code, message and (when it has any) status details."""
    trailers: tuple[tuple[str, bytes], ...] = ()
    if error.details:
        trailers = ((STATUS_DETAILS_KEY, error.to_status().SerializeToString()),)
    await context.abort(error.code, error.message, trailers)


def _request_check(
    request_type: type[Message], validate: bool
) -> Callable[[Message], ServiceError | None] | None:
    """The check run on every request before the handler, or None when there is nothing to check.

    The validator is looked up once, here, so a request pays only for its own checks.
    """
    if not validate:
        return None
    validator = validation.validator_for(request_type)
    if validator is None:
        return None

    def check(request: Message) -> ServiceError | None:
        found: list[validation.Violation] = []
        validator(request, "", found)
        return invalid_request(request, found) if found else None

    return check


def invalid_request(request: Message, violations: list[validation.Violation]) -> InvalidArgument:
    """INVALID_ARGUMENT naming every violation, with a google.rpc.BadRequest detail."""
    summary = "; ".join(f"{v.field_path}: {v.message}" for v in violations[:5])
    if len(violations) > 5:
        summary += f"; and {len(violations) - 5} more"
    return InvalidArgument(
        f"invalid {request.DESCRIPTOR.full_name}: {summary}",
        [validation.to_bad_request(violations)],
    )


async def _checked_stream(
    requests: AsyncIterator[Req], check: Callable[[Message], ServiceError | None]
) -> AsyncIterator[Req]:
    async for request in requests:
        error = check(request)
        if error is not None:
            raise error
        yield request


def unary_unary_handler(
    behavior: Callable[[Req, Context[Req, Resp]], Awaitable[Resp]],
    request_type: type[Req],
    response_type: type[Resp],
    *,
    validate: bool = False,
) -> grpc.RpcMethodHandler[Req, Resp]:
    check = _request_check(request_type, validate)

    async def handle(request: Req, context: Context[Req, Resp]) -> Resp:
        try:
            if check is not None and (error := check(request)) is not None:
                raise error
            return await behavior(request, context)
        except ServiceError as error:
            await abort(context, error)

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


def unary_stream_handler(
    behavior: Callable[[Req, Context[Req, Resp]], AsyncIterator[Resp]],
    request_type: type[Req],
    response_type: type[Resp],
    *,
    validate: bool = False,
) -> grpc.RpcMethodHandler[Req, Resp]:
    check = _request_check(request_type, validate)

    async def handle(request: Req, context: Context[Req, Resp]) -> AsyncIterator[Resp]:
        try:
            if check is not None and (error := check(request)) is not None:
                raise error
            async for response in behavior(request, context):
                yield response
        except ServiceError as error:
            await abort(context, error)

    return grpc.unary_stream_rpc_method_handler(
        handle,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


def stream_unary_handler(
    behavior: Callable[[AsyncIterator[Req], Context[Req, Resp]], Awaitable[Resp]],
    request_type: type[Req],
    response_type: type[Resp],
    *,
    validate: bool = False,
) -> grpc.RpcMethodHandler[Req, Resp]:
    check = _request_check(request_type, validate)

    async def handle(requests: AsyncIterator[Req], context: Context[Req, Resp]) -> Resp:
        try:
            if check is not None:
                requests = _checked_stream(requests, check)
            return await behavior(requests, context)
        except ServiceError as error:
            await abort(context, error)

    return grpc.stream_unary_rpc_method_handler(
        handle,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


def stream_stream_handler(
    behavior: Callable[[AsyncIterator[Req], Context[Req, Resp]], AsyncIterator[Resp]],
    request_type: type[Req],
    response_type: type[Resp],
    *,
    validate: bool = False,
) -> grpc.RpcMethodHandler[Req, Resp]:
    check = _request_check(request_type, validate)

    async def handle(
        requests: AsyncIterator[Req], context: Context[Req, Resp]
    ) -> AsyncIterator[Resp]:
        try:
            if check is not None:
                requests = _checked_stream(requests, check)
            async for response in behavior(requests, context):
                yield response
        except ServiceError as error:
            await abort(context, error)

    return grpc.stream_stream_rpc_method_handler(
        handle,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


def add_service(
    server: grpc.aio.Server,
    service_name: str,
    handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]],
) -> None:
    """Register one service's handlers under `/service_name/Method` paths."""
    # Registered methods skip grpcio's per-call generic-handler lookup.
    server.add_registered_method_handlers(service_name, dict(handlers))  # type: ignore[attr-defined]
