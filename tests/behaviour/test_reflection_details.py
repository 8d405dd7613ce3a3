"""With reflection on, a server also serves the descriptors of the error details it sends:
google.rpc.Status, google.rpc's error_details and the application's own detail types."""

import asyncio
import base64
import json
from typing import Any

import grpc
import grpc.aio
import pytest
from common.v1 import errors_pb2
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import serve

from tests.behaviour.in_memory_users import InMemoryUsers
from tests.behaviour.test_production import started
from tests.conftest import ROOT

BUF = ROOT / ".venv" / "bin" / "buf"
INFO = error_details_pb2.ErrorInfo(reason="USER_GONE", domain="users.example.com")
DETAIL_TYPES = [
    ("google.rpc.Status", "google/rpc/status.proto"),
    ("google.rpc.ErrorInfo", "google/rpc/error_details.proto"),
    ("google.rpc.BadRequest", "google/rpc/error_details.proto"),
    ("google.rpc.RetryInfo", "google/rpc/error_details.proto"),
    ("google.rpc.RequestInfo", "google/rpc/error_details.proto"),
    ("google.rpc.QuotaFailure", "google/rpc/error_details.proto"),
    ("google.rpc.PreconditionFailure", "google/rpc/error_details.proto"),
    ("google.rpc.ResourceInfo", "google/rpc/error_details.proto"),
    ("google.rpc.Help", "google/rpc/error_details.proto"),
    ("google.rpc.LocalizedMessage", "google/rpc/error_details.proto"),
    ("google.rpc.DebugInfo", "google/rpc/error_details.proto"),
    # The application's own, imported by the server that sends them.
    ("common.v1.ErrorInfo", "common/v1/errors.proto"),
    ("common.v1.ValidationError", "common/v1/errors.proto"),
    ("common.v1.RateLimitInfo", "common/v1/errors.proto"),
]


class Gone(InMemoryUsers):
    async def get_user(self, request, context):
        raise runtime.NotFound("gone", [INFO, errors_pb2.ErrorInfo(reason="DOMAIN")])


async def files_containing(port: int, symbols: list[str]) -> dict[str, list[str]]:
    """For each symbol, the file names the reflection service answers with (empty: not found)."""
    requests = [reflection_pb2.ServerReflectionRequest(file_containing_symbol=s) for s in symbols]
    found: dict[str, list[str]] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        async for reply in stub.ServerReflectionInfo(iter(requests)):
            protos = reply.file_descriptor_response.file_descriptor_proto
            found[reply.original_request.file_containing_symbol] = [
                descriptor_pb2.FileDescriptorProto.FromString(data).name for data in protos
            ]
    return found


async def test_reflection_serves_the_error_detail_types() -> None:
    service = await started(serve.ServerSettings(reflection=True), Gone())
    try:
        found = await files_containing(service.port, [symbol for symbol, _ in DETAIL_TYPES])
    finally:
        await service.stop(0)
    for symbol, file in DETAIL_TYPES:
        assert found[symbol][:1] == [file], symbol


@pytest.mark.skipif(not BUF.exists(), reason="buf is not installed in .venv")
async def test_buf_curl_shows_an_errors_detail_as_its_type_and_bytes() -> None:
    service = await started(serve.ServerSettings(reflection=True), Gone())
    try:
        url = f"http://127.0.0.1:{service.port}/user.v1.UserService/GetUser"
        process = await asyncio.create_subprocess_exec(
            str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
            "-d", '{"id": "1"}', url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), 60)
        finally:
            if process.returncode is None:
                process.kill()
    finally:
        await service.stop(0)
    assert process.returncode == 5 << 3, stderr  # buf curl exits with the code, shifted
    answer = json.loads(stderr)
    assert (answer["code"], answer["message"]) == ("not_found", "gone")
    detail = answer["details"][0]
    assert detail["type"] == "google.rpc.ErrorInfo"
    assert decoded(detail)["reason"] == "USER_GONE"


def decoded(detail: dict[str, Any]) -> dict[str, Any]:
    """A detail as buf curl prints it: decoded under `debug` for the types buf itself is built
    with, else only as base64 `value` (buf 1.75 does not ask reflection for detail types)."""
    if "debug" in detail:
        debug: dict[str, Any] = detail["debug"]
        return debug
    value = base64.b64decode(detail["value"] + "=" * (-len(detail["value"]) % 4))
    return {"reason": error_details_pb2.ErrorInfo.FromString(value).reason}
