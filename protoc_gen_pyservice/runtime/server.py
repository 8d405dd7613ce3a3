"""Server-side plumbing generated servicers use: handlers that map errors, and registration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message
from protoc_gen_pyservice.runtime.errors import STATUS_DETAILS_KEY, ServiceError, Unimplemented

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


def unary_unary_handler(
    behavior: Callable[[Req, Context[Req, Resp]], Awaitable[Resp]],
    request_type: type[Req],
    response_type: type[Resp],
) -> grpc.RpcMethodHandler[Req, Resp]:
    async def handle(request: Req, context: Context[Req, Resp]) -> Resp:
        try:
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
) -> grpc.RpcMethodHandler[Req, Resp]:
    async def handle(request: Req, context: Context[Req, Resp]) -> AsyncIterator[Resp]:
        try:
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
) -> grpc.RpcMethodHandler[Req, Resp]:
    async def handle(requests: AsyncIterator[Req], context: Context[Req, Resp]) -> Resp:
        try:
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
) -> grpc.RpcMethodHandler[Req, Resp]:
    async def handle(
        requests: AsyncIterator[Req], context: Context[Req, Resp]
    ) -> AsyncIterator[Resp]:
        try:
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
