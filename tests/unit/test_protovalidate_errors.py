"""protovalidate rules that cannot compile are generation errors naming the file, the message,
the field and, for CEL, the rule and its expression; never a traceback."""

import pytest
from protoc_gen_pyservice.pipeline import generate

from tests.conftest import CompileProtos

HEADER = """
syntax = "proto3";
package bad.v1;
import "buf/validate/validate.proto";
import "validate/validate.proto";
"""


def error_for(compile_protos: CompileProtos, body: str) -> str:
    response = generate(compile_protos({"bad.proto": HEADER + body}))
    return response.error


ERRORS = [
    (
        'message M { string f = 1 [(buf.validate.field).cel = {id: "x", expression: "this +"}]; }',
        "bad.proto: bad.v1.M.f: CEL rule 'x' ('this +') does not parse",
    ),
    (
        'message M { string f = 1 [(buf.validate.field).cel = {id: "x", expression: "nope > 1"}]; }',
        "undeclared reference to 'nope'",
    ),
    (
        'message M { int32 f = 1 [(buf.validate.field).cel = {id: "x", expression: "this + \'a\'"}]; }',
        "no matching overload for + on int, string",
    ),
    (
        'message M { int32 f = 1 [(buf.validate.field).cel = {id: "x", expression: "this + 1u > 0u"}]; }',
        "no matching overload for + on int, uint",
    ),
    (
        "message M { option (buf.validate.message).cel = "
        '{id: "m", expression: "this.missing == 1"}; int32 f = 1; }',
        "bad.proto: bad.v1.M: CEL rule 'm' ('this.missing == 1') bad.v1.M has no field 'missing'",
    ),
    (
        'message M { int32 f = 1 [(buf.validate.field).cel = {id: "x", expression: "this"}]; }',
        "gives int; it must give a bool or a string",
    ),
    (
        'message M { int32 f = 1 [(buf.validate.field).cel = {id: "x", expression: "1 / 0 == 1"}]; }',
        "fails for every input: division by zero",
    ),
    (
        "message M { int32 f = 1 [(buf.validate.field).string.min_len = 1]; }",
        "bad.proto: bad.v1.M.f: string rules do not apply to a int32 value",
    ),
    (
        "message M { repeated string f = 1 [(buf.validate.field).string.min_len = 1]; }",
        "string rules do not apply to a repeated value",
    ),
    (
        "message M { string f = 1 [(validate.rules).string.min_len = 1, "
        "(buf.validate.field).string.min_len = 1]; }",
        "bad.proto: bad.v1.M.f: has both (validate.rules) and (buf.validate.field)",
    ),
    (
        'message M { option (buf.validate.message).oneof = {fields: ["a", "nope"]}; string a = 1; }',
        "message oneof rule names no field 'nope'",
    ),
    (
        "message M { string f = 1 [(buf.validate.field).cel = "
        '{id: "x", expression: "this.matches(\'[\')"}]; }',
        "invalid regular expression",
    ),
]


@pytest.mark.parametrize(("body", "expected"), ERRORS)
def test_a_rule_that_cannot_compile_is_a_generation_error(
    compile_protos: CompileProtos, body: str, expected: str
) -> None:
    error = error_for(compile_protos, body)
    assert expected in error
    assert "Traceback" not in error and "internal error" not in error


def test_both_rule_languages_in_one_file_compile(compile_protos: CompileProtos) -> None:
    body = (
        "message A { string f = 1 [(validate.rules).string.min_len = 1]; }\n"
        "message B { string f = 1 [(buf.validate.field).string.min_len = 1]; }\n"
    )
    response = generate(compile_protos({"good.proto": HEADER.replace("bad.v1", "good.v1") + body}))
    assert not response.error
    [validator] = [f.content for f in response.file if f.name.endswith("_validate.py")]
    assert '"string.min_len"' in validator and "def check_a(" in validator
    assert "def check_b(" in validator


def test_unique_on_message_items_is_refused(compile_protos: CompileProtos) -> None:
    """As protovalidate refuses it: CEL's unique() compares scalars only."""
    body = (
        'import "google/protobuf/duration.proto";\n'
        "message M { repeated google.protobuf.Duration d = 1 "
        "[(buf.validate.field).repeated.unique = true]; }"
    )
    error = error_for(compile_protos, body)
    assert "bad.proto: bad.v1.M.d: repeated.unique is not supported for message items" in error
