"""A client that dies mid-stream, for test_hostile: `python hostile_client.py PORT STREAMS`.

It opens STREAMS StreamUserUpdates calls, waits until every one has delivered an update (so
each has a running handler on the server), prints `ready`, then publishes large updates it
never reads, with unary calls always in flight, until the test kills it with SIGKILL.
"""

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "generated"))

import grpc.aio
from user.v1 import user_pb2

STREAM = "/user.v1.UserService/StreamUserUpdates"
CREATE = "/user.v1.UserService/CreateUser"
UPDATE = "/user.v1.UserService/UpdateUser"


def renamed(user_id: str, number: int) -> user_pb2.UpdateUserRequest:
    # Names at their 100-character limit fill the unread streams' flow-control windows:
    # handlers block at `yield`.
    letter = "KL"[number % 2]
    return user_pb2.UpdateUserRequest(id=user_id, first_name=letter * 100, last_name=letter * 100)


async def main(port: int, streams: int) -> None:
    # No BDP probing: the receive windows of the streams it stops reading stay at 64 KiB.
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.http2.bdp_probe", 0)])
    watch = channel.unary_stream(
        STREAM,
        request_serializer=user_pb2.StreamUserUpdatesRequest.SerializeToString,
        response_deserializer=user_pb2.UserUpdate.FromString,
    )
    create = channel.unary_unary(
        CREATE,
        request_serializer=user_pb2.CreateUserRequest.SerializeToString,
        response_deserializer=user_pb2.CreateUserResponse.FromString,
    )
    update = channel.unary_unary(
        UPDATE,
        request_serializer=user_pb2.UpdateUserRequest.SerializeToString,
        response_deserializer=user_pb2.UpdateUserResponse.FromString,
    )
    created = await create(
        user_pb2.CreateUserRequest(
            email=f"k{os.getpid()}@example.com", first_name="K", last_name="L", password="12345678"
        )
    )
    user_id = created.user.id
    calls = [watch(user_pb2.StreamUserUpdatesRequest()) for _ in range(streams)]
    pending = {asyncio.ensure_future(call.read()) for call in calls}
    number = 0
    for _ in range(100):  # bounded: the test gives up on `ready` long before this ends
        await update(renamed(user_id, number))
        number += 1
        _, pending = await asyncio.wait(pending, timeout=0.1)
        if not pending:
            break
    print("ready" if not pending else "not ready", flush=True)
    while True:
        await asyncio.gather(*(update(renamed(user_id, number + i)) for i in range(10)))
        number += 10


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
