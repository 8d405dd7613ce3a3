"""The model built from small inline protos compiled by grpcio-tools' protoc."""

import keyword

import pytest
from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.model.build import ModelBuilder
from protoc_gen_pyservice.model.families import FieldRules, NumberRules, RepeatedRules, StringRules
from protoc_gen_pyservice.model.nodes import File, Idempotency, Kind
from protoc_gen_pyservice.options import Options
from protoc_gen_pyservice.pipeline import generate

from tests.conftest import CompileProtos, project_request

STREAMS = """
syntax = "proto3";
package demo.v1;
import "pyservice/options.proto";

// The demo service.
service Demo {
  // One in, one out.
  rpc Unary(Ping) returns (Pong);
  rpc ServerStream(Ping) returns (stream Pong);
  rpc ClientStream(stream Ping) returns (Pong) {
    option (pyservice.method).timeout = {seconds: 2, nanos: 500000000};
  }
  rpc Bidi(stream Ping) returns (stream Pong);
  rpc Grpc(Ping) returns (Pong);
  rpc FooPb2(Ping) returns (Pong);
  rpc Close(Ping) returns (Pong) { option idempotency_level = IDEMPOTENT; }
  rpc class(Ping) returns (Pong) {
    option (pyservice.method).retryable = false;
    option idempotency_level = NO_SIDE_EFFECTS;
  }
}
message Ping {
  map<string, Pong> by_name = 1;
  oneof choice { string a = 2; int32 b = 3; }
  optional string maybe = 4;
  string plain = 5; // trailing comment
  message Inner { enum Colour { COLOUR_UNSPECIFIED = 0; } }
}
message Pong {}
"""


def build(request, name: str, options: Options | None = None) -> File:
    return ModelBuilder(request.proto_file, options or Options()).model(name)


def test_methods_kinds_names_and_options(compile_protos: CompileProtos) -> None:
    model = build(compile_protos({"demo.proto": STREAMS}), "demo.proto", Options(default_timeout=7))
    (service,) = model.services
    assert service.doc.lines == ("The demo service.",)
    assert (service.base_class, service.client_class, service.register_function) == (
        "DemoBase",
        "DemoClient",
        "add_demo_to_server",
    )
    by_name = {m.name: m for m in service.methods}
    assert [m.kind for m in service.methods[:4]] == [
        Kind.UNARY_UNARY,
        Kind.UNARY_STREAM,
        Kind.STREAM_UNARY,
        Kind.STREAM_STREAM,
    ]
    assert by_name["Unary"].path == "/demo.v1.Demo/Unary"
    assert by_name["Unary"].doc.lines == ("One in, one out.",)
    assert by_name["Unary"].timeout == 7  # the plugin parameter
    assert by_name["ServerStream"].timeout is None  # streams stay open unless the proto says
    assert by_name["ClientStream"].timeout == 2.5  # the proto option wins
    assert by_name["Close"].client_name == "close_"  # the client has close() itself
    assert by_name["Close"].servicer_name == "close"
    assert by_name["Close"].retryable and by_name["Close"].idempotency is Idempotency.IDEMPOTENT
    assert by_name["class"].servicer_name == "class_"
    # A method named like a module the class body uses would shadow it in annotations.
    assert by_name["Grpc"].servicer_name == "grpc_" and by_name["FooPb2"].client_name == "foo_pb2_"
    assert not by_name["class"].retryable  # explicit option beats idempotency_level


def test_messages_fields_maps_oneofs_presence(compile_protos: CompileProtos) -> None:
    model = build(compile_protos({"demo.proto": STREAMS}), "demo.proto")
    ping = model.messages[0]
    fields = {f.name: f for f in ping.fields}
    entry = fields["by_name"].map_entry
    assert entry is not None and entry.value.type_ref is not None
    assert entry.value.type_ref.qualname == "Pong"
    assert [m.ref.qualname for m in ping.messages] == ["Ping.Inner"]  # map entry excluded
    assert ping.messages[0].enums[0].ref.qualname == "Ping.Inner.Colour"
    assert [o.name for o in ping.oneofs] == ["choice"]  # synthetic oneof of `maybe` excluded
    assert fields["a"].oneof == "choice" and fields["a"].has_presence
    assert fields["maybe"].oneof is None and fields["maybe"].has_presence
    assert fields["maybe"].proto3_optional
    assert not fields["a"].proto3_optional and not fields["plain"].proto3_optional
    assert not fields["plain"].has_presence
    assert fields["plain"].doc.lines == ("trailing comment",)


def test_validate_rules_are_read_into_the_model() -> None:
    model = build(project_request(), "user/v1/user.proto")
    by_name = {m.ref.qualname: m for m in model.messages}
    page_size = by_name["ListUsersRequest"].fields[0]
    assert page_size.rules is not None and page_size.rules.type_rules is not None
    # One frozen type per rule family: unset rules are None.
    assert page_size.rules.type_rules == NumberRules("int32", gte=1, lte=100)
    email = by_name["CreateUserRequest"].fields[0]
    assert email.rules is not None
    assert email.rules.type_rules == StringRules(well_known="email", max_len=254)
    methods = {m.name: m for m in model.services[0].methods}
    assert methods["GetUser"].timeout == 5 and methods["ListUsers"].timeout == 10
    assert methods["GetUser"].retryable and not methods["CreateUser"].retryable


def test_editions_presence(compile_protos: CompileProtos) -> None:
    source = """
edition = "2023";
package ed;
message M {
  string explicit = 1;
  string implicit = 2 [features.field_presence = IMPLICIT];
}
"""
    fields = build(compile_protos({"ed.proto": source}), "ed.proto").messages[0].fields
    assert [f.has_presence for f in fields] == [True, False]


def test_missing_type_is_an_error_naming_the_method(compile_protos: CompileProtos) -> None:
    request = compile_protos({"demo.proto": STREAMS})
    demo = next(f for f in request.proto_file if f.name == "demo.proto")
    demo.service[0].method[0].input_type = ".demo.v1.Nope"
    with pytest.raises(GenerationError) as caught:
        build(request, "demo.proto")
    assert str(caught.value) == (
        "demo.proto: demo.v1.Demo.Unary: request type '.demo.v1.Nope' is not defined in the request"
    )


def test_bad_timeout_option_is_an_error(compile_protos: CompileProtos) -> None:
    source = STREAMS.replace("seconds: 2, nanos: 500000000", "seconds: -3")
    with pytest.raises(GenerationError, match=r"demo.v1.Demo.ClientStream: \(pyservice.method\)"):
        build(compile_protos({"demo.proto": source}), "demo.proto")


def test_zero_timeout_opts_out_of_the_default(compile_protos: CompileProtos) -> None:
    source = STREAMS.replace("seconds: 2, nanos: 500000000", "seconds: 0")
    model = build(compile_protos({"demo.proto": source}), "demo.proto", Options(default_timeout=9))
    methods = {m.name: m for m in model.services[0].methods}
    assert methods["ClientStream"].timeout is None and methods["Unary"].timeout == 9


SOFT_KEYWORDS = """
syntax = "proto3";
package soft.v1;
message Ping { string match = 1; string case = 2; string type = 3; string class = 4; }
service Soft {
  rpc Match(Ping) returns (Ping);
  rpc Case(Ping) returns (Ping);
  rpc Type(Ping) returns (Ping);
  rpc Class(Ping) returns (Ping);
}
"""


def test_soft_keywords_name_methods_as_they_are(compile_protos: CompileProtos) -> None:
    model = build(compile_protos({"soft.proto": SOFT_KEYWORDS}), "soft.proto")
    (service,) = model.services
    assert [(m.servicer_name, m.client_name) for m in service.methods] == [
        ("match", "match"),
        ("case", "case"),
        ("type", "type"),
        ("class_", "class_"),
    ]


def test_output_does_not_depend_on_the_interpreters_keywords(
    compile_protos: CompileProtos, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11 knows no `type` soft keyword, 3.12 on do: the plugin asks neither."""
    request = compile_protos({"soft.proto": SOFT_KEYWORDS})
    outputs = []
    for soft_keywords in (["_", "case", "match"], ["_", "case", "match", "type"]):
        monkeypatch.setattr(keyword, "softkwlist", soft_keywords)
        monkeypatch.setattr(keyword, "issoftkeyword", frozenset(soft_keywords).__contains__)
        outputs.append(generate(request).SerializeToString())
    assert outputs[0] == outputs[1]


def test_a_minimum_of_zero_makes_no_check(compile_protos) -> None:
    request = compile_protos(
        {
            "zero/v1/zero.proto": (
                'syntax = "proto3";\npackage zero.v1;\nimport "validate/validate.proto";\n'
                "message Zero {\n"
                "  string text = 1 [(validate.rules).string = {min_len: 0, min_bytes: 0}];\n"
                "  repeated string items = 2 [(validate.rules).repeated.min_items = 0];\n"
                "  map<string, string> pairs = 3 [(validate.rules).map.min_pairs = 0];\n"
                "}\n"
            )
        }
    )
    generated = {file.name: file.content for file in generate(request).file}
    validators = generated["zero/v1/zero_validate.py"]
    assert "< 0" not in validators


def test_both_rule_languages_read_into_one_typed_model(compile_protos: CompileProtos) -> None:
    """`(validate.rules)` and `(buf.validate.field)` give the same frozen family type."""
    source = """
syntax = "proto3";
package both;
import "validate/validate.proto";
import "buf/validate/validate.proto";
message M {
  string a = 1 [(validate.rules).string = {min_len: 2, max_len: 9, in: ["ab", "abc"]}];
  string b = 2 [(buf.validate.field).string = {min_len: 2, max_len: 9, in: ["ab", "abc"]}];
  repeated int32 c = 3 [(validate.rules).repeated = {max_items: 3, items: {int32: {gt: 0}}}];
  repeated int32 d = 4 [(buf.validate.field).repeated = {max_items: 3, items: {int32: {gt: 0}}}];
}
"""
    fields = build(compile_protos({"both.proto": source}), "both.proto").messages[0].fields
    a, b, c, d = fields
    expected = StringRules(min_len=2, max_len=9, in_=("ab", "abc"))
    assert a.rules is not None and a.rules.type_rules == expected
    assert b.protovalidate is not None and b.protovalidate.family == expected
    assert c.rules is not None and d.protovalidate is not None
    assert c.rules.type_rules == d.protovalidate.family
    assert d.protovalidate.family == RepeatedRules(
        max_items=3, items=FieldRules(type_rules=NumberRules("int32", gt=0))
    )
