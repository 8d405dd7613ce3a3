"""Server-side plumbing generated servicers use: handlers that map errors, and registration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NamedTuple, NoReturn, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message
from protoc_gen_pyservice.runtime import context as context_vars
from protoc_gen_pyservice.runtime import validation
from protoc_gen_pyservice.runtime.errors import (
    NO_ERROR_MAP,
    STATUS_DETAILS_KEY,
    ErrorMap,
    InvalidArgument,
    ServiceError,
    Unimplemented,
    internal_error,
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
    trailers: list[tuple[str, str | bytes]] = []
    if error.details:
        trailers.append((STATUS_DETAILS_KEY, error.to_status().SerializeToString()))
    request_id = context_vars.request_id()
    if request_id is not None:  # abort() replaces the trailers the interceptor set
        trailers.append((context_vars.REQUEST_ID_HEADER, request_id))
    await context.abort(error.code, error.message, tuple(trailers))


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
        validator(request, "", found)
        return invalid_request(request, found, errors) if found else None

    return check


def invalid_request(
    request: Message, violations: list[validation.Violation], errors: ErrorMap = NO_ERROR_MAP
) -> InvalidArgument:
    """INVALID_ARGUMENT naming every violation, with a google.rpc.BadRequest detail (and the
    ErrorMap's validation detail, such as common.v1.ValidationError, when it names one)."""
    summary = "; ".join(f"{v.field_path}: {v.message}" for v in violations[:5])
    if len(violations) > 5:
        summary += f"; and {len(violations) - 5} more"
    details = [validation.to_bad_request(violations)]
    if errors.validation_detail is not None:
        details.append(validation.fill_field_violations(violations, errors.validation_detail()))
    return InvalidArgument(f"invalid {request.DESCRIPTOR.full_name}: {summary}", details)


def _as_service_error(exception: Exception, errors: ErrorMap, method: str) -> ServiceError:
    """A handler's exception as the status to answer: mapped, or INTERNAL with a request id."""
    mapped = errors.translate(exception)
    if mapped is not None:
        return mapped
    request_id = context_vars.request_id() or context_vars.new_request_id()
    return internal_error(exception, method, request_id)


async def _checked_stream(
    requests: AsyncIterator[Req], check: Callable[[Message], ServiceError | None]
) -> AsyncIterator[Req]:
    async for request in requests:
        error = check(request)
        if error is not None:
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
    """The grpc handler for one RPC: validation first, then the behavior, every exception
    answered with a status (ServiceError as raised, mapped domain errors, else INTERNAL)."""
    check = _request_check(spec.request_type, spec.validate, errors)
    behavior = spec.behavior
    deserialize = spec.request_type.FromString
    serialize = spec.response_type.SerializeToString

    async def fail(context: Context[Any, Any], exception: Exception) -> NoReturn:
        if isinstance(exception, ServiceError):
            await abort(context, exception)
        await abort(context, _as_service_error(exception, errors, method))

    if spec.kind == "unary_unary":

        async def unary_unary(request: Any, context: Context[Any, Any]) -> Any:
            try:
                if check is not None and (error := check(request)) is not None:
                    raise error
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exception:
                await fail(context, exception)

        return grpc.unary_unary_rpc_method_handler(unary_unary, deserialize, serialize)

    if spec.kind == "unary_stream":

        async def unary_stream(request: Any, context: Context[Any, Any]) -> AsyncIterator[Any]:
            try:
                if check is not None and (error := check(request)) is not None:
                    raise error
                async for response in behavior(request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as exception:
                await fail(context, exception)

        return grpc.unary_stream_rpc_method_handler(unary_stream, deserialize, serialize)

    if spec.kind == "stream_unary":

        async def stream_unary(requests: AsyncIterator[Any], context: Context[Any, Any]) -> Any:
            try:
                if check is not None:
                    requests = _checked_stream(requests, check)
                return await behavior(requests, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exception:
                await fail(context, exception)

        return grpc.stream_unary_rpc_method_handler(stream_unary, deserialize, serialize)

    async def stream_stream(
        requests: AsyncIterator[Any], context: Context[Any, Any]
    ) -> AsyncIterator[Any]:
        try:
            if check is not None:
                requests = _checked_stream(requests, check)
            async for response in behavior(requests, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exception:
            await fail(context, exception)

    return grpc.stream_stream_rpc_method_handler(stream_stream, deserialize, serialize)


def add_service(
    server: grpc.aio.Server,
    service_name: str,
    handlers: Mapping[str, HandlerSpec],
    *,
    errors: ErrorMap | None = None,
) -> None:
    """Register one service's handlers under `/service_name/Method` paths."""
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
