import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from google.rpc import error_details_pb2
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import validation
from protoc_gen_pyservice.runtime.compat import MAX_GENERATED_API

from tests.conftest import PROJECT_INCLUDES, WKT_INCLUDE


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


def test_violations_convert_to_bad_request_and_common_validation_error() -> None:
    from common.v1 import errors_pb2

    violations = [
        runtime.Violation("email", "string.email", "value must be a valid email address"),
        runtime.Violation('labels["k"]', "string.min_len", "value length must be at least 2", True),
    ]
    bad_request = validation.to_bad_request(violations)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [(v.field, v.description, v.reason) for v in bad_request.field_violations] == [
        ("email", "value must be a valid email address", "STRING_EMAIL"),
        ('labels["k"]', "value length must be at least 2", "STRING_MIN_LEN"),
    ]
    common = validation.fill_field_violations(violations, errors_pb2.ValidationError())
    assert [(v.field, v.description) for v in common.field_violations] == [
        ("email", "value must be a valid email address"),
        ('labels["k"]', "value length must be at least 2"),
    ]


def test_a_type_without_rules_needs_no_generated_module() -> None:
    from google.protobuf import empty_pb2, timestamp_pb2

    assert runtime.collect_violations(empty_pb2.Empty()) == []
    assert runtime.collect_violations(timestamp_pb2.Timestamp(seconds=-5)) == []


def test_rules_without_a_generated_module_are_a_clear_error(tmp_path: Path) -> None:
    """A message type with rules whose x_validate module was never generated must not pass."""
    proto = tmp_path / "nomodule.proto"
    proto.write_text(
        'syntax = "proto3";\npackage nomodule;\nimport "validate/validate.proto";\n'
        "message Ruled { string name = 1 [(validate.rules).string.min_len = 1]; }\n"
    )
    protoc = [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}"]
    includes = [f"-I{PROJECT_INCLUDES[-1]}", f"-I{WKT_INCLUDE}"]
    subprocess.run([*protoc, *includes, f"--python_out={tmp_path}", "nomodule.proto"], check=True)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("nomodule_pb2")
        with pytest.raises(runtime.MissingValidatorError, match="nomodule_validate"):
            runtime.collect_violations(module.Ruled())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("nomodule_pb2", None)
