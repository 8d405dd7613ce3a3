"""protoc's plugin contract: what comes back for good, bad and hostile requests."""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.compiler import plugin_pb2
from protoc_gen_pyservice import pipeline
from protoc_gen_pyservice.pipeline import generate

from tests.conftest import CompileProtos, project_request

PLUGIN = str(Path(sys.executable).parent / "protoc-gen-pyservice")


def run_plugin(data: bytes, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PLUGIN], input=data, capture_output=True, env={**os.environ, **env}, check=False
    )


def response_of(result: subprocess.CompletedProcess[bytes]) -> plugin_pb2.CodeGeneratorResponse:
    assert result.returncode == 0, result.stderr
    return plugin_pb2.CodeGeneratorResponse.FromString(result.stdout)


@pytest.mark.parametrize("data", [b"", b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\x0f", b"garbage!"])
def test_unparseable_input_is_one_stderr_line_and_nonzero_exit(data: bytes) -> None:
    result = run_plugin(data)
    assert result.returncode == 1
    assert result.stdout == b""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("protoc-gen-pyservice: ")
    assert "Traceback" not in result.stderr.decode()


def test_success_advertises_features_and_editions() -> None:
    response = response_of(run_plugin(project_request().SerializeToString()))
    assert not response.HasField("error")
    assert response.supported_features == (
        plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
        | plugin_pb2.CodeGeneratorResponse.FEATURE_SUPPORTS_EDITIONS
    )
    assert response.minimum_edition == 998  # EDITION_PROTO2
    assert response.maximum_edition == 1001  # EDITION_2024
    assert [f.name for f in response.file] == [
        "user/v1/user_client.py",
        "user/v1/user_service.py",
        "user/v1/user_testing.py",
        "user/v1/user_validate.py",
    ]


def test_unknown_parameter_is_an_error_response() -> None:
    request = project_request(parameter="flavour=spicy")
    response = response_of(run_plugin(request.SerializeToString()))
    assert response.error.startswith("plugin option 'flavour': unknown option")
    assert not response.file


def test_file_to_generate_missing_from_proto_file() -> None:
    request = project_request()
    request.file_to_generate.append("ghost/v1/ghost.proto")
    response = generate(request)
    assert response.error == "ghost/v1/ghost.proto: is in file_to_generate but not in proto_file"


def test_dependency_missing_from_request() -> None:
    request = project_request()
    names = [file.name for file in request.proto_file]
    del request.proto_file[names.index("google/protobuf/empty.proto")]
    response = generate(request)
    assert "which is not before it in proto_file" in response.error


def test_bug_becomes_internal_error_response(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "render_file", explode)
    response = generate(project_request())
    assert response.error.startswith("internal error: RuntimeError: boom")
    assert "report" in response.error


def test_request_can_be_dumped_for_replay(tmp_path: Path) -> None:
    data = project_request().SerializeToString()
    dump = tmp_path / "request.bin"
    run_plugin(data, PYSERVICE_DUMP_REQUEST=str(dump))
    replayed = generate(plugin_pb2.CodeGeneratorRequest.FromString(dump.read_bytes()))
    assert replayed == plugin_pb2.CodeGeneratorResponse.FromString(run_plugin(data).stdout)


def test_unwritable_dump_path_is_one_stderr_line(tmp_path: Path) -> None:
    result = run_plugin(b"x", PYSERVICE_DUMP_REQUEST=str(tmp_path / "missing" / "r.bin"))
    assert result.returncode == 1
    assert result.stderr.decode().startswith("protoc-gen-pyservice: cannot save the request")
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_output_is_identical_whatever_the_file_order_and_hash_seed() -> None:
    request = project_request()
    expected = run_plugin(request.SerializeToString(), PYTHONHASHSEED="0").stdout
    shuffled = plugin_pb2.CodeGeneratorRequest()
    shuffled.CopyFrom(request)
    files = list(shuffled.file_to_generate)
    random.Random(4).shuffle(files)
    shuffled.ClearField("file_to_generate")
    shuffled.file_to_generate.extend(reversed(files))
    for seed in ("1", "12345"):
        assert run_plugin(shuffled.SerializeToString(), PYTHONHASHSEED=seed).stdout == expected


HOSTILE = r'''
syntax = "proto3";
package hostile.v1;

// Comment with """triple quotes""", a backslash \ and \n, {{ jinja }} {% if %}, # ; and
//   an indented line, trailing spaces,
// and a line that ends in a quote"
service Quote {
  // "Quoted" start; and "end"
  rpc Say(Said) returns (Said);
}
// ''single'' quotes and a lone backslash \
message Said {
  string text = 1; // trailing """ too
}
'''


def test_hostile_comments_stay_inside_docstrings(compile_protos: CompileProtos) -> None:
    response = generate(compile_protos({"hostile.proto": HOSTILE}))
    assert not response.error
    service = next(f for f in response.file if f.name == "hostile_service.py").content
    compile(service, "hostile_service.py", "exec")
    assert '\\"\\"\\"triple quotes\\"\\"\\"' in service
    assert "{{ jinja }} {% if %}" in service


def test_names_with_semicolons_hashes_and_newlines_in_parameters_are_rejected() -> None:
    for parameter in ("client=true;rm -rf", "client=true\nservice=false", "#=1"):
        response = generate(project_request(parameter=parameter))
        assert response.error.startswith("plugin option ")
