"""Server-side plumbing generated servicers use: handlers that decode, validate and map
errors, and registration.

Methods that take one request are registered with grpc as request-streaming: the handler
then starts as soon as the call does, so it reads the request itself, under a time limit, and
decodes it itself (an undecodable request is INVALID_ARGUMENT, not grpc's UNKNOWN). On the wire
unary and streaming requests look the same, so peers see no difference.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NamedTuple, NoReturn, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message
from protoc_gen_pyservice.runtime import cel, timeouts, validation
from protoc_gen_pyservice.runtime import context as context_vars
from protoc_gen_pyservice.runtime.errors import (
    NO_ERROR_MAP,
    STATUS_DETAILS_KEY,
    DeadlineExceeded,
    ErrorMap,
    InvalidArgument,
    ServiceError,
    Unimplemented,
    internal_error,
    reply,
)

logger = logging.getLogger("protoc_gen_pyservice.server")

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


# Seconds a call that takes one request may wait for it (unless its own deadline is sooner):
# a peer that opens calls and never sends their message cannot park them indefinitely.
REQUEST_TIMEOUT_SECONDS = 10.0
_REQUEST_WAIT = timeouts.WaitBound(REQUEST_TIMEOUT_SECONDS)

# Trailers abort() writes itself; the handler's other trailers are kept.
_ABORT_TRAILERS = (STATUS_DETAILS_KEY, context_vars.REQUEST_ID_HEADER)


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: ServiceError) -> NoReturn:
    """End the RPC with the error's code, message and (when it has any) status details,
    keeping the trailers the handler set; message and details cut as errors.reply() cuts
    them."""
    message, status = reply(error)
    trailers: list[tuple[str, str | bytes]] = [
        (key, value)
        for key, value in context.trailing_metadata() or ()
        if key not in _ABORT_TRAILERS
    ]
    if status is not None:
        trailers.append((STATUS_DETAILS_KEY, status))
    request_id = context_vars.request_id()
    if request_id is not None:
        trailers.append((context_vars.REQUEST_ID_HEADER, request_id))
    await context.abort(error.code, message, tuple(trailers))


async def read_request(
    context: grpc.aio.ServicerContext[Any, Any], request_type: type[Message]
) -> Message:
    """The one request of a call, read within REQUEST_TIMEOUT_SECONDS and decoded: a request
    that does not arrive is DEADLINE_EXCEEDED, one that does not decode INVALID_ARGUMENT."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= REQUEST_TIMEOUT_SECONDS:
        raw = await context.read()  # the call's own deadline comes first; grpc enforces it
    else:
        raw = await _read_watched(context)
    if not isinstance(raw, bytes):
        raise InvalidArgument(f"no {request_type.DESCRIPTOR.full_name} request was sent")
    return decode_request(raw, request_type)


def decode_request(raw: bytes, request_type: type[Message]) -> Message:
    try:
        return request_type.FromString(raw)
    except Exception:  # any failure to parse untrusted bytes means the same thing
        raise InvalidArgument(
            f"request is not a valid {request_type.DESCRIPTOR.full_name}"
        ) from None


async def _read_watched(context: grpc.aio.ServicerContext[Any, Any]) -> object:
    waits = _REQUEST_WAIT.here()
    task = asyncio.current_task()
    assert task is not None
    waits.tasks.add(task)
    try:
        return await context.read()
    except asyncio.CancelledError:
        if not waits.expired(task):
            raise
        task.uncancel()
        raise DeadlineExceeded(f"no request received within {REQUEST_TIMEOUT_SECONDS:g}s") from None
    finally:
        waits.tasks.discard(task)


def _request_check(
    request_type: type[Message], validate: bool, errors: ErrorMap
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
        try:
            validator(request, "", found)
        except cel.EvaluationError as error:
            # A custom rule that cannot be evaluated on this input (an overflow, a missing
            # key) is the request's doing, not the server's: protovalidate's EvaluationError.
            return InvalidArgument(
                f"invalid {request.DESCRIPTOR.full_name}: a validation rule could not be "
                f"evaluated: {str(error)[:80]}"
            )
        return validation.invalid_request(request, found, errors) if found else None

    return check


def _as_service_error(exception: Exception, errors: ErrorMap, method: str) -> ServiceError:
    """A handler's exception as the status to answer: mapped, or INTERNAL with a request id."""
    mapped = errors.translate(exception)
    if mapped is not None:
        return mapped
    request_id = context_vars.request_id() or context_vars.new_request_id()
    return internal_error(exception, method, request_id)


async def close_responses(responses: object) -> None:
    """Close a stream handler's generator here, in its call, rather than leave it to the
    garbage collector: its clean-up then runs in the call's task, whatever ended the stream."""
    close = getattr(responses, "aclose", None)
    if close is not None:
        await close()


async def _decoded_stream(
    requests: AsyncIterator[bytes],
    request_type: type[Message],
    check: Callable[[Message], ServiceError | None] | None,
) -> AsyncIterator[Message]:
    async for raw in requests:
        request = decode_request(raw, request_type)
        if check is not None and (error := check(request)) is not None:
            raise error
        yield request


class HandlerSpec(NamedTuple):
    """One RPC's handler as generated code declares it; add_service() builds the real one."""

    kind: str  # unary_unary, unary_stream, stream_unary, stream_stream
    behavior: Callable[..., Any]
    request_type: type[Message]
    response_type: type[Message]
    validate: bool
    timeout: float | None = None  # server-side default deadline (pyservice.method).timeout
    public: bool = False  # callable without authentication
    roles: tuple[str, ...] = ()  # roles a caller's token must carry


def unary_unary_handler(
    behavior: Callable[[Req, Context[Req, Resp]], Awaitable[Resp]],
    request_type: type[Req],
    response_type: type[Resp],
    *,
    validate: bool = False,
    timeout: float | None = None,
    public: bool = False,
    roles: tuple[str, ...] = (),
) -> HandlerSpec:
    return HandlerSpec(
        "unary_unary", behavior, request_type, response_type, validate, timeout, public, roles
    )


def unary_stream_handler(
    behavior: Callable[[Req, Context[Req, Resp]], AsyncIterator[Resp]],
    request_type: type[Req],
    response_type: type[Resp],
    *,
    validate: bool = False,
    timeout: float | None = None,
    public: bool = False,
    roles: tuple[str, ...] = (),
) -> HandlerSpec:
    return HandlerSpec(
        "unary_stream", behavior, request_type, response_type, validate, timeout, public, roles
    )


def stream_unary_handler(
    behavior: Callable[[AsyncIterator[Req], Context[Req, Resp]], Awaitable[Resp]],
    request_type: type[Req],
    response_type: type[Resp],
    *,
    validate: bool = False,
    timeout: float | None = None,
    public: bool = False,
    roles: tuple[str, ...] = (),
) -> HandlerSpec:
    return HandlerSpec(
        "stream_unary", behavior, request_type, response_type, validate, timeout, public, roles
    )


def stream_stream_handler(
    behavior: Callable[[AsyncIterator[Req], Context[Req, Resp]], AsyncIterator[Resp]],
    request_type: type[Req],
    response_type: type[Resp],
    *,
    validate: bool = False,
    timeout: float | None = None,
    public: bool = False,
    roles: tuple[str, ...] = (),
) -> HandlerSpec:
    return HandlerSpec(
        "stream_stream", behavior, request_type, response_type, validate, timeout, public, roles
    )


def build_handler(
    spec: HandlerSpec, method: str, errors: ErrorMap
) -> grpc.RpcMethodHandler[Any, Any]:
    """The grpc handler for one RPC: read and decode, validate, run the behavior, and answer
    every exception with a status (ServiceError as raised, mapped domain errors, else
    INTERNAL). Requests arrive as raw bytes: decoding is ours (see the module docstring)."""
    check = _request_check(spec.request_type, spec.validate, errors)
    behavior = spec.behavior
    request_type = spec.request_type
    serialize = spec.response_type.SerializeToString

    async def fail(context: Context[Any, Any], exception: Exception) -> NoReturn:
        if isinstance(exception, ServiceError):
            await abort(context, exception)
        await abort(context, _as_service_error(exception, errors, method))

    if spec.kind == "unary_unary":

        async def unary_unary(_: AsyncIterator[bytes], context: Context[Any, Any]) -> Any:
            try:
                request = await read_request(context, request_type)
                if check is not None and (error := check(request)) is not None:
                    raise error
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exception:
                await fail(context, exception)

        return grpc.stream_unary_rpc_method_handler(unary_unary, None, serialize)

    if spec.kind == "unary_stream":

        async def unary_stream(
            _: AsyncIterator[bytes], context: Context[Any, Any]
        ) -> AsyncIterator[Any]:
            try:
                request = await read_request(context, request_type)
                if check is not None and (error := check(request)) is not None:
                    raise error
                responses = behavior(request, context)
                try:
                    async for response in responses:
                        yield response
                finally:
                    await close_responses(responses)
            except grpc.aio.AbortError:
                raise
            except Exception as exception:
                await fail(context, exception)

        return grpc.stream_stream_rpc_method_handler(unary_stream, None, serialize)

    if spec.kind == "stream_unary":

        async def stream_unary(requests: AsyncIterator[bytes], context: Context[Any, Any]) -> Any:
            try:
                return await behavior(_decoded_stream(requests, request_type, check), context)
            except grpc.aio.AbortError:
                raise
            except Exception as exception:
                await fail(context, exception)

        return grpc.stream_unary_rpc_method_handler(stream_unary, None, serialize)

    async def stream_stream(
        requests: AsyncIterator[bytes], context: Context[Any, Any]
    ) -> AsyncIterator[Any]:
        try:
            responses = behavior(_decoded_stream(requests, request_type, check), context)
            try:
                async for response in responses:
                    yield response
            finally:
                await close_responses(responses)
        except grpc.aio.AbortError:
            raise
        except Exception as exception:
            await fail(context, exception)

    return grpc.stream_stream_rpc_method_handler(stream_stream, None, serialize)


def add_service(
    server: grpc.aio.Server,
    service_name: str,
    handlers: Mapping[str, HandlerSpec],
    *,
    errors: ErrorMap | None = None,
    stubs: type | None = None,
) -> None:
    """Register one service's handlers under `/service_name/Method` paths.

    `stubs` is the generated base class: the RPCs the servicer leaves to it answer
    UNIMPLEMENTED, and are named in one warning now rather than discovered by a caller later.
    """
    if stubs is not None:
        _warn_unimplemented(service_name, handlers, stubs)
    error_map = errors or NO_ERROR_MAP
    built = {
        name: build_handler(spec, f"/{service_name}/{name}", error_map)
        for name, spec in handlers.items()
    }
    # Registered methods skip grpcio's per-call generic-handler lookup.
    server.add_registered_method_handlers(service_name, built)  # type: ignore[attr-defined]
    registered_services(server).append(service_name)
    methods = registered_methods(server)
    for name, spec in handlers.items():
        methods[f"/{service_name}/{name}"] = spec


def _warn_unimplemented(
    service_name: str, handlers: Mapping[str, HandlerSpec], stubs: type
) -> None:
    missing = [
        name
        for name, spec in handlers.items()
        if getattr(spec.behavior, "__func__", None) is getattr(stubs, spec.behavior.__name__, None)
    ]
    if missing:
        logger.warning(
            "%s: %d of %d RPCs not implemented, they answer UNIMPLEMENTED: %s",
            service_name,
            len(missing),
            len(handlers),
            ", ".join(missing),
        )


def registered_services(server: grpc.aio.Server) -> list[str]:
    """The services add_service() put on a server, for health and reflection."""
    services: list[str] | None = getattr(server, "_pyservice_services", None)
    if services is None:
        services = []
        server._pyservice_services = services  # type: ignore[attr-defined]
    return services


def registered_methods(server: grpc.aio.Server) -> dict[str, HandlerSpec]:
    """The methods add_service() put on a server, by path, with what their protos declare."""
    methods: dict[str, HandlerSpec] | None = getattr(server, "_pyservice_methods", None)
    if methods is None:
        methods = {}
        server._pyservice_methods = methods  # type: ignore[attr-defined]
    return methods
