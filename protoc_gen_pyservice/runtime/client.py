"""Client-side plumbing generated clients use: typed callables, deadlines and channel ownership."""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, ClassVar, Final, Generic, Literal, Protocol, Self, TypeAlias, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message
from protoc_gen_pyservice.runtime import validation
from protoc_gen_pyservice.runtime.errors import as_received, from_rpc_error

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

Channel: TypeAlias = grpc.aio.Channel
# What a client-streaming call accepts: grpc.aio takes sync and async iterators alike.
RequestStream: TypeAlias = AsyncIterator[T] | Iterator[T]
Metadata: TypeAlias = Sequence[tuple[str, str | bytes]]


class _Default(enum.Enum):
    DEFAULT_TIMEOUT = enum.auto()


DEFAULT_TIMEOUT: Final = _Default.DEFAULT_TIMEOUT
# Per-call timeout: seconds, None for no deadline, or DEFAULT_TIMEOUT for the method's default.
Timeout: TypeAlias = float | Literal[_Default.DEFAULT_TIMEOUT] | None


def resolve_timeout(timeout: Timeout, default: float | None) -> float | None:
    """The deadline for one call: the caller's choice, else the method's default."""
    return default if timeout is DEFAULT_TIMEOUT else timeout


# A stream the server refused (HTTP/2 REFUSED_STREAM: over its concurrent-stream limit) was
# never seen by the server's application (RFC 9113, section 8.7), so sending it again is safe
# for any method. grpc surfaces it only as UNAVAILABLE with this text.
_REFUSED_STREAM = "RST_STREAM with error code 7"
REFUSED_STREAM_ATTEMPTS = 10


def _refused_backoff(attempt: int) -> float:
    """Seconds before resending a refused stream: exponential from 5 ms, capped at 200 ms,
    with jitter so a refused burst does not come back as one."""
    delay: float = min(0.2, 0.005 * 2.0 ** (attempt - 1))
    return delay * random.uniform(0.5, 1.0)


def _deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _time_left(deadline: float | None) -> float | None:
    """The timeout for a resend: what is left of the first call's deadline (0 once it has
    passed, so grpc reports DEADLINE_EXCEEDED as it does)."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def refused_stream(error: grpc.aio.AioRpcError) -> bool:
    """Whether a call failed only because the server refused its stream."""
    return error.code() is grpc.StatusCode.UNAVAILABLE and _REFUSED_STREAM in (
        error.details() or ""
    )


class UnaryCall(Generic[Req, Resp]):
    """A unary method of a channel; a call the server refused before seeing it (a burst past
    its stream limit) is sent again, within the call's deadline."""

    def __init__(self, call: grpc.aio.UnaryUnaryMultiCallable[Req, Resp]) -> None:
        self._call = call

    async def __call__(
        self,
        request: Req,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
    ) -> Resp:
        deadline = _deadline_after(timeout)
        attempt = 1
        while True:
            try:
                return await self._call(
                    request, timeout=timeout, metadata=metadata, wait_for_ready=wait_for_ready
                )
            except grpc.aio.AioRpcError as error:
                if attempt >= REFUSED_STREAM_ATTEMPTS or not refused_stream(error):
                    raise
            await asyncio.sleep(_refused_backoff(attempt))
            attempt += 1
            timeout = _time_left(deadline)


def unary_unary_callable(
    channel: Channel, path: str, request_type: type[Req], response_type: type[Resp]
) -> UnaryCall[Req, Resp]:
    return UnaryCall(
        channel.unary_unary(
            path,
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
            _registered_method=True,  # type: ignore[call-arg]
        )
    )


class ResponseStream(Protocol[T_co]):
    """What iterate_responses() reads: a grpc streaming call, or a ServerStreamCall's."""

    def __aiter__(self) -> AsyncIterator[T_co]: ...

    def cancel(self) -> bool: ...


class ServerStreamCall(Generic[Req, Resp]):
    """A server-streaming method of a channel; a call the server refused before seeing it is
    sent again, as for UnaryCall, as long as no response has arrived."""

    def __init__(self, call: grpc.aio.UnaryStreamMultiCallable[Req, Resp]) -> None:
        self._call = call

    def __call__(
        self,
        request: Req,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
    ) -> _ResendingStream[Resp]:
        def start(remaining: float | None) -> grpc.aio.UnaryStreamCall[Req, Resp]:
            return self._call(
                request, timeout=remaining, metadata=metadata, wait_for_ready=wait_for_ready
            )

        return _ResendingStream(start, timeout)


class _ResendingStream(Generic[Resp]):
    def __init__(
        self,
        start: Callable[[float | None], grpc.aio.UnaryStreamCall[Any, Resp]],
        timeout: float | None,
    ) -> None:
        self._start = start
        self._deadline = _deadline_after(timeout)
        self._current = start(timeout)

    def cancel(self) -> bool:
        return self._current.cancel()

    async def __aiter__(self) -> AsyncIterator[Resp]:
        attempt = 1
        while True:
            received = False
            try:
                async for response in self._current:
                    received = True
                    yield response
                return
            except grpc.aio.AioRpcError as error:
                if received or attempt >= REFUSED_STREAM_ATTEMPTS or not refused_stream(error):
                    raise
            await asyncio.sleep(_refused_backoff(attempt))
            attempt += 1
            self._current = self._start(_time_left(self._deadline))


def unary_stream_callable(
    channel: Channel, path: str, request_type: type[Req], response_type: type[Resp]
) -> ServerStreamCall[Req, Resp]:
    return ServerStreamCall(
        channel.unary_stream(
            path,
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
            _registered_method=True,  # type: ignore[call-arg]
        )
    )


def stream_unary_callable(
    channel: Channel, path: str, request_type: type[Req], response_type: type[Resp]
) -> grpc.aio.StreamUnaryMultiCallable[Req, Resp]:
    return channel.stream_unary(
        path,
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
        _registered_method=True,  # type: ignore[call-arg]
    )


def stream_stream_callable(
    channel: Channel, path: str, request_type: type[Req], response_type: type[Resp]
) -> grpc.aio.StreamStreamMultiCallable[Req, Resp]:
    return channel.stream_stream(
        path,
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
        _registered_method=True,  # type: ignore[call-arg]
    )


async def iterate_responses(call: ResponseStream[Resp]) -> AsyncIterator[Resp]:
    """The responses of a streaming call; leaving the loop early cancels the call, and a
    failed call raises the typed error (ServiceError subclass) with its details."""
    try:
        async for response in call:
            yield response
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from error
    finally:
        call.cancel()


# The keepalive and size settings every connect() channel gets: it pings an idle connection
# every 30 s (the server builder accepts pings 5 s apart), messages up to 4 MiB, and reply
# metadata up to 32 KiB like the server builder's (gRPC's default 8 KiB soft limit fails
# replies between 8 and 16 KiB at random). A dead server is noticed within 40 s, even under
# an idle response stream: without max_pings_without_data 0 grpc sends two pings on a
# connection that sends nothing and then one a minute, and it waits ping_timeout_ms (default
# 1 min), not keepalive_timeout_ms, for a keepalive ping's ack.
DEFAULT_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.ping_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ("grpc.max_metadata_size", 32 * 1024),
    ("grpc.absolute_max_metadata_size", 32 * 1024),
    ("grpc.enable_retries", 1),
)

# Retries for methods safe to repeat: gRPC's own retry policy, with exponential backoff and
# jitter, on UNAVAILABLE only. Methods that are not idempotent are never retried.
RETRY_POLICY: dict[str, Any] = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}

TokenProvider = Callable[[], str | Awaitable[str]]


class BearerToken(  # grpc's interceptor classes are generic only in their stubs
    grpc.aio.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.aio.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.aio.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.aio.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Adds `authorization: Bearer <token>` to every call, asking `provider` each time (so a
    provider can refresh tokens)."""

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider

    async def _details(self, details: Any) -> Any:
        token = self._provider()
        if inspect.isawaitable(token):
            token = await token
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add("authorization", f"Bearer {token}")
        return details._replace(metadata=metadata)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(await self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(await self._details(details), request)

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(await self._details(details), requests)

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(await self._details(details), requests)


_REFUSED_BEFORE_SENDING = "not sent: the client validated the request (validate=True)"


class ServiceClient:
    """What every generated client shares: its channel, and closing it when it owns it.

    Build one from a channel you manage (`FooClient(channel)`), or let it open its own
    (`async with FooClient.connect("host:port") as client:`). Share one client, and so one
    long-lived channel, across all calls: channels multiplex and reconnect by themselves.
    `validate=True` checks each unary request against its rules before sending it.
    """

    SERVICE_NAME: ClassVar[str] = ""
    # Methods the proto marks safe to retry (idempotency_level or (pyservice.method).retryable).
    RETRYABLE_METHODS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def service_config(cls) -> str:
        """gRPC service config JSON: retries with backoff for the retryable methods only."""
        methods = [{"service": cls.SERVICE_NAME, "method": m} for m in cls.RETRYABLE_METHODS]
        config = (
            {"methodConfig": [{"name": methods, "retryPolicy": RETRY_POLICY}]} if methods else {}
        )
        return json.dumps(config, sort_keys=True)

    def __init__(self, channel: Channel, *, validate: bool = False) -> None:
        self._channel = channel
        self._owns_channel = False
        self._validate = validate

    def _check_request(self, request: Message) -> None:
        """With `validate=True`, refuse to send an invalid request: raise the InvalidArgument
        the server would answer with, `.rpc_error` and BadRequest details included (but not a
        detail the server's ErrorMap adds, which a client cannot know). Its cause, the
        ValidationError, lists the violations."""
        if self._validate:
            try:
                validation.validate(request)
            except validation.ValidationError as invalid:
                refused = validation.invalid_request(request, invalid.violations)
                raise as_received(refused, _REFUSED_BEFORE_SENDING) from invalid

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        validate: bool = False,
        token: TokenProvider | None = None,
    ) -> Self:
        """A client over a new channel to `target`, closed with the client: keepalive,
        retries for the retryable methods, and `authorization: Bearer` from `token`. An
        option in `options` replaces the default of the same name.

        Keep the client for the life of the program; one channel serves every call.
        """
        # grpc takes the first of options given twice: the caller's come first.
        all_options = [
            *options,
            *DEFAULT_CHANNEL_OPTIONS,
            ("grpc.service_config", cls.service_config()),
        ]
        interceptors: Any = [BearerToken(token)] if token is not None else None
        if credentials is None:
            channel = grpc.aio.insecure_channel(
                target, options=all_options, interceptors=interceptors
            )
        else:
            channel = grpc.aio.secure_channel(
                target, credentials, options=all_options, interceptors=interceptors
            )
        client = cls(channel, validate=validate)
        client._owns_channel = True
        return client

    @property
    def channel(self) -> Channel:
        return self._channel

    async def close(self, grace: float | None = None) -> None:
        """Close the channel if this client opened it; a borrowed channel is left open."""
        if self._owns_channel:
            await self._channel.close(grace)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
