"""Client-side plumbing generated clients use: typed callables, deadlines and channel ownership."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterator, Sequence
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeAlias, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message
from protoc_gen_pyservice.runtime import validation
from protoc_gen_pyservice.runtime.errors import from_rpc_error

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)

T = TypeVar("T")

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


def unary_unary_callable(
    channel: Channel, path: str, request_type: type[Req], response_type: type[Resp]
) -> grpc.aio.UnaryUnaryMultiCallable[Req, Resp]:
    return channel.unary_unary(
        path,
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
        _registered_method=True,  # type: ignore[call-arg]
    )


def unary_stream_callable(
    channel: Channel, path: str, request_type: type[Req], response_type: type[Resp]
) -> grpc.aio.UnaryStreamMultiCallable[Req, Resp]:
    return channel.unary_stream(
        path,
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
        _registered_method=True,  # type: ignore[call-arg]
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


async def iterate_responses(
    call: grpc.aio.UnaryStreamCall[Any, Resp] | grpc.aio.StreamStreamCall[Any, Resp],
) -> AsyncIterator[Resp]:
    """The responses of a streaming call; leaving the loop early cancels the call, and a
    failed call raises the typed error (ServiceError subclass) with its details."""
    try:
        async for response in call:
            yield response
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from error
    finally:
        call.cancel()


class ServiceClient:
    """What every generated client shares: its channel, and closing it when it owns it.

    Build one from a channel you manage (`FooClient(channel)`), or let it open its own
    (`async with FooClient.connect("host:port") as client:`). Share one client, and so one
    long-lived channel, across all calls: channels multiplex and reconnect by themselves.
    `validate=True` checks each unary request against its rules before sending it.
    """

    def __init__(self, channel: Channel, *, validate: bool = False) -> None:
        self._channel = channel
        self._owns_channel = False
        self._validate = validate

    def _check_request(self, request: Message) -> None:
        """With `validate=True`, refuse to send an invalid request (raises ValidationError)."""
        if self._validate:
            validation.validate(request)

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        validate: bool = False,
    ) -> Self:
        """A client over a new channel to `target`, closed with the client."""
        if credentials is None:
            channel = grpc.aio.insecure_channel(target, options=list(options))
        else:
            channel = grpc.aio.secure_channel(target, credentials, options=list(options))
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
