"""The server's keepalive enforcement against the source document's client settings: the Go
client pings every 10 s even without calls; the server must not answer with GOAWAY."""

import asyncio

import grpc
import grpc.aio
from protoc_gen_pyservice.runtime import serve
from user.v1 import user_client, user_pb2, user_service

from examples.user_server import InMemoryUsers


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
