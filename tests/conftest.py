"""Shared helpers: compile protos with grpcio-tools' protoc into real CodeGeneratorRequests."""

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import grpc_tools
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"
WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
PROJECT_INCLUDES = (
    ROOT / "proto",
    ROOT / "protoc_gen_pyservice" / "proto",
    ROOT / ".pyservice" / "include",
)

# CI replays the same examples every run: a red build must be reproducible, not bad luck.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

if str(GENERATED) not in sys.path:
    sys.path.insert(0, str(GENERATED))


def descriptor_set(
    proto_root: Path, files: Iterable[str], includes: Iterable[Path] = ()
) -> descriptor_pb2.FileDescriptorSet:
    """Compile `files` (relative to proto_root) with their imports and source info."""
    with tempfile.TemporaryDirectory() as scratch:
        return _compile(proto_root, files, includes, Path(scratch) / "set.binpb")


def _compile(
    proto_root: Path, files: Iterable[str], includes: Iterable[Path], out: Path
) -> descriptor_pb2.FileDescriptorSet:
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_root}",
        *(f"-I{path}" for path in includes),
        f"-I{WKT_INCLUDE}",
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={out}",
        *files,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def make_request(
    proto_root: Path,
    files: list[str],
    parameter: str = "",
    includes: Iterable[Path] = PROJECT_INCLUDES,
) -> plugin_pb2.CodeGeneratorRequest:
    fds = descriptor_set(proto_root, files, includes)
    request = plugin_pb2.CodeGeneratorRequest(parameter=parameter, file_to_generate=files)
    request.proto_file.extend(fds.file)
    request.compiler_version.major = 35
    return request


CompileProtos = Callable[..., plugin_pb2.CodeGeneratorRequest]


@pytest.fixture
def compile_protos(tmp_path: Path) -> CompileProtos:
    """compile_protos({"a/b.proto": "..."}, parameter="") -> CodeGeneratorRequest."""

    def compile_(sources: dict[str, str], parameter: str = "") -> plugin_pb2.CodeGeneratorRequest:
        for name, text in sources.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return make_request(tmp_path, list(sources), parameter)

    return compile_


def project_request(parameter: str = "") -> plugin_pb2.CodeGeneratorRequest:
    """The request buf sends for our own protos (user.v1 and common.v1)."""
    return make_request(
        ROOT / "proto",
        ["common/v1/errors.proto", "user/v1/user.proto"],
        parameter,
        includes=PROJECT_INCLUDES[1:],
    )
