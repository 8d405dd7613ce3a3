"""Keepalive between our server, our client and the source document's clients: the Go client
pings every 10 s even without calls, ours and Node's every 30 s; the server must not answer
with GOAWAY however long a connection or a response stream stays idle, and a client must still
notice a server that vanished."""

import asyncio
from collections.abc import Iterable
from typing import Any

import grpc
import grpc.aio
import pytest
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import serve
from protoc_gen_pyservice.runtime.client import DEFAULT_CHANNEL_OPTIONS
from user.v1 import user_client, user_pb2, user_service

from tests.behaviour.in_memory_users import InMemoryUsers


async def test_pings_every_five_seconds_without_calls_keep_the_connection() -> None:
    # Half the document's 10 s, so the test waits less: still allowed by the server.
    client_options = [
        ("grpc.keepalive_time_ms", 5_000),
        ("grpc.keepalive_timeout_ms", 1_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    service = serve.build_server(
        [(user_service.add_user_service_to_server, InMemoryUsers())],
        serve.ServerSettings(address="127.0.0.1:0"),
    )
    await service.start()
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{service.port}", options=client_options
        ) as channel:
            users = user_client.UserServiceClient(channel)
            await users.list_users(user_pb2.ListUsersRequest(page_size=1))
            await asyncio.sleep(12)  # two pings and more, with no call in flight
            # A GOAWAY (too_many_pings) would have closed the connection.
            assert channel.get_state() is grpc.ChannelConnectivity.READY
            await users.list_users(user_pb2.ListUsersRequest(page_size=1))
    finally:
        await service.stop(0)


# Idle streams under the real option names with every interval divided by SCALE (30 s pings
# become 1 s ones): the same ping policing, in seconds rather than minutes.
SCALE = 30


def _scaled(options: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(name, value // SCALE) for name, value in options if name.endswith("_ms")]


def _scaled_server() -> serve.Service:
    return serve.build_server(
        [(user_service.add_user_service_to_server, InMemoryUsers())],
        serve.ServerSettings(address="127.0.0.1:0", extra_options=_scaled(serve.KEEPALIVE_OPTIONS)),
    )


def _scaled_client(port: int) -> user_client.UserServiceClient:
    return user_client.UserServiceClient.connect(
        f"127.0.0.1:{port}", options=_scaled(DEFAULT_CHANNEL_OPTIONS)
    )


class Relay:
    """A TCP relay to a server that can fall silent like a peer whose host died: from then on
    it passes nothing on, either way, and closes nothing."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._silent = False
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def go_silent(self) -> None:
        self._silent = True

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        server, to_server = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers += [to_client, to_server]
        await asyncio.gather(self._pipe(client, to_server), self._pipe(server, to_client))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65_536):
                if not self._silent:
                    writer.write(data)
                    await writer.drain()
        except ConnectionError:
            pass
        if not self._silent:
            writer.close()


async def test_an_idle_response_stream_outlives_many_keepalive_pings() -> None:
    # Client and server ping each other every second; nothing else is sent. While the
    # server's minimum had a name grpc does not know, grpc's default 5 min applied: the
    # client's pings became strikes and the stream ended in GOAWAY (too_many_pings) in 5 s,
    # as it did after 4 min at the real 30 s.
    service = _scaled_server()
    await service.start()
    try:
        async with _scaled_client(service.port) as users:
            updates = users.stream_user_updates(user_pb2.StreamUserUpdatesRequest())
            first = asyncio.ensure_future(anext(updates))
            try:
                done, _ = await asyncio.wait([first], timeout=8)
                assert not done, f"the idle stream ended: {first.exception()!r}"
                created = await users.create_user(
                    user_pb2.CreateUserRequest(
                        email="idle@example.com", first_name="I", last_name="L", password="12345678"
                    )
                )
                update = await asyncio.wait_for(first, 5)
                assert update.user.id == created.user.id
            finally:
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)
    finally:
        await service.stop(0)


async def test_a_server_that_falls_silent_ends_an_idle_stream_within_a_ping_and_its_timeout() -> (
    None
):
    # Past the two pings grpc lets a client send while it sends nothing else: by default it
    # then pings once a minute, and the stream would wait that long to hear of a dead server.
    service = _scaled_server()
    await service.start()
    relay = Relay(service.port)
    try:
        async with _scaled_client(await relay.start()) as users:
            updates = users.stream_user_updates(user_pb2.StreamUserUpdatesRequest())
            first = asyncio.ensure_future(anext(updates))
            try:
                done, _ = await asyncio.wait([first], timeout=3.5)
                assert not done, f"the idle stream ended: {first.exception()!r}"
                relay.go_silent()
                with pytest.raises(runtime.Unavailable):
                    # A ping every second, unanswered for a third of one: 1.33 s at most.
                    await asyncio.wait_for(first, 3)
            finally:
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)
    finally:
        await relay.close()
        await service.stop(0)
