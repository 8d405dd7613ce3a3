"""Run by hand, the plugin answers --version and --help; protoc runs it without arguments."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.compiler import plugin_pb2
from protoc_gen_pyservice import __version__

from tests.conftest import CompileProtos

SERVICE = """
syntax = "proto3";
package tiny.v1;
message Ping {}
service Pinger { rpc Send(Ping) returns (Ping); }
"""

PLUGIN = str(Path(sys.executable).parent / "protoc-gen-pyservice")


def run(*arguments: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PLUGIN, *arguments], input=stdin, capture_output=True, check=False, timeout=60
    )


def test_version_names_the_package_version() -> None:
    result = run("--version")
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.decode() == f"protoc-gen-pyservice {__version__}\n"
    assert __version__ == importlib.metadata.version("protoc-gen-pyservice")


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_is_one_usage_line(flag: str) -> None:
    result = run(flag)
    assert (result.returncode, result.stderr) == (0, b"")
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("usage: protoc-gen-pyservice ")


@pytest.mark.parametrize(
    ("arguments", "named"),
    [(["--frobnicate"], "--frobnicate"), (["x.proto"], "x.proto"), (["--version", "-v"], "-v")],
)
def test_other_arguments_are_one_stderr_line_and_exit_2(
    compile_protos: CompileProtos, arguments: list[str], named: str
) -> None:
    request = compile_protos({"tiny.proto": SERVICE})
    result = run(*arguments, stdin=request.SerializeToString())
    assert result.returncode == 2 and result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("protoc-gen-pyservice: unexpected argument")
    assert repr(named) in lines[0]


def test_without_arguments_it_is_still_a_plugin(compile_protos: CompileProtos) -> None:
    result = run(stdin=compile_protos({"tiny.proto": SERVICE}).SerializeToString())
    assert (result.returncode, result.stderr) == (0, b"")
    response = plugin_pb2.CodeGeneratorResponse.FromString(result.stdout)
    assert not response.error and response.file
