"""Patterns run on RE2: no pattern or input can make validation backtrack for ever."""

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from protoc_gen_pyservice.pipeline import generate
from protoc_gen_pyservice.runtime import collect_violations

from tests.conftest import PROJECT_INCLUDES, WKT_INCLUDE, CompileProtos

HOSTILE = [r"^(a+)+$", r"^(a|aa)+$", r"^(a|a?)+$", r"(x+x+)+y", r"^(\w+\s?)*$"]


def proto_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def hostile_module(compile_protos: CompileProtos, tmp_path: Path) -> Iterator[ModuleType]:
    fields = "\n".join(
        f"  string f{index} = {index + 1} [(validate.rules).string.pattern = {proto_string(p)}];"
        for index, p in enumerate(HOSTILE)
    )
    source = (
        'syntax = "proto3";\npackage redos;\nimport "validate/validate.proto";\n'
        f"message M {{\n{fields}\n}}\n"
    )
    response = generate(compile_protos({"redos.proto": source}))
    assert not response.error, response.error
    out = tmp_path / "out"
    for file in response.file:
        (out / file.name).parent.mkdir(parents=True, exist_ok=True)
        (out / file.name).write_text(file.content)
    # The _pb2 module comes from protoc's own Python generator.
    protoc = [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}"]
    includes = [f"-I{PROJECT_INCLUDES[-1]}", f"-I{WKT_INCLUDE}"]
    subprocess.run([*protoc, *includes, f"--python_out={out}", "redos.proto"], check=True)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("redos_pb2")
    finally:
        sys.path.remove(str(out))
        for name in ("redos_pb2", "redos_validate"):
            sys.modules.pop(name, None)


def test_hostile_patterns_on_megabyte_inputs_finish(hostile_module: ModuleType) -> None:
    evil = "a" * 1_000_000 + "!"
    message = hostile_module.M(**{f"f{index}": evil for index in range(len(HOSTILE))})
    found = collect_violations(message)
    # RE2 answers each in linear time; none of these patterns matches the input.
    assert sorted(v.field_path for v in found) == [f"f{i}" for i in range(len(HOSTILE))]
