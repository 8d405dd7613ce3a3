"""A pattern RE2 rejects is one clean line from the plugin, and nothing on its stderr."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.compiler import plugin_pb2

from tests.conftest import CompileProtos

PLUGIN = str(Path(sys.executable).parent / "protoc-gen-pyservice")

SOURCE = """
syntax = "proto3";
package pkg;
import "validate/validate.proto";
message Msg {
  string name = 1 [(validate.rules).string.pattern = PATTERN];
}
"""


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r'"(a)\\1"', r'pattern "(a)\1" is not valid RE2: invalid escape sequence: \1'),
        ('"(?=x)"', 'pattern "(?=x)" is not valid RE2: invalid perl operator: (?='),
        # A line break inside the pattern must not break the error line.
        (r'"(a\n"', r'pattern "(a\n" is not valid RE2: missing ): (a\n'),
    ],
)
def test_invalid_pattern_is_one_line_naming_the_field(
    compile_protos: CompileProtos, pattern: str, expected: str
) -> None:
    request = compile_protos({"x.proto": SOURCE.replace("PATTERN", pattern)})
    result = subprocess.run(
        [PLUGIN],
        input=request.SerializeToString(),
        capture_output=True,
        env={key: value for key, value in os.environ.items() if key != "PYSERVICE_DEBUG"},
        check=False,
    )
    assert result.returncode == 0
    assert result.stderr == b""
    response = plugin_pb2.CodeGeneratorResponse.FromString(result.stdout)
    assert response.error == f"x.proto: pkg.Msg.name: string rules: {expected}"
    assert not response.file


def test_runtime_rejects_an_invalid_pattern_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    from protoc_gen_pyservice.runtime import validation

    with pytest.raises(validation.PatternError) as raised:
        validation.pattern(r"(a)\1")
    assert str(raised.value) == r"pattern '(a)\\1' is not valid RE2: invalid escape sequence: \1"
    assert capfd.readouterr().err == ""
    assert validation.pattern("b+")("abbc")  # valid patterns still compile and match
    assert validation.pattern(b"b+")(b"abbc")
