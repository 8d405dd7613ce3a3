import pytest
from google.rpc import error_details_pb2
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime.compat import MAX_GENERATED_API


def test_incompatible_generated_code_fails_at_import_with_advice() -> None:
    runtime.ensure_compatible(MAX_GENERATED_API)
    with pytest.raises(ImportError, match="regenerate the code with the installed plugin"):
        runtime.ensure_compatible(MAX_GENERATED_API + 1)


def test_resolve_timeout() -> None:
    assert runtime.resolve_timeout(runtime.DEFAULT_TIMEOUT, 5.0) == 5.0
    assert runtime.resolve_timeout(None, 5.0) is None  # explicitly no deadline
    assert runtime.resolve_timeout(1.5, 5.0) == 1.5


def test_service_error_packs_details_into_a_status() -> None:
    info = error_details_pb2.ErrorInfo(reason="USER_NOT_FOUND", domain="users.example.com")
    status = runtime.NotFound("no such user", [info]).to_status()
    assert status.code == 5 and status.message == "no such user"
    unpacked = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(unpacked) and unpacked == info
