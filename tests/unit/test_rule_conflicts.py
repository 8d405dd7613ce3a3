"""Bad rules are compile errors naming file, message, field and the conflict."""

import pytest
from protoc_gen_pyservice.pipeline import generate

from tests.conftest import CompileProtos

HEADER = """
syntax = "proto3";
package bad.v1;
import "validate/validate.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
enum Colour { COLOUR_UNSPECIFIED = 0; COLOUR_RED = 1; }
message Item { string name = 1; }
"""


def error_for(compile_protos: CompileProtos, field: str) -> str:
    source = HEADER + "message M {\n  " + field + "\n}\n"
    response = generate(compile_protos({"bad.proto": source}))
    return response.error


CONFLICTS = [
    ("int32 f = 1 [(validate.rules).string.min_len = 1];", "string rules do not apply to a int32"),
    (
        "google.protobuf.Int32Value f = 1 [(validate.rules).string.min_len = 1];",
        "string rules do not apply to google.protobuf.Int32Value",
    ),
    (
        "repeated string f = 1 [(validate.rules).string.min_len = 1];",
        "string rules do not apply to a repeated field",
    ),
    (
        "string f = 1 [(validate.rules).repeated.min_items = 1];",
        "repeated rules apply only to repeated fields",
    ),
    (
        "repeated string f = 1 [(validate.rules).map.min_pairs = 1];",
        "map rules do not apply to a repeated field",
    ),
    (
        "map<string, string> f = 1 [(validate.rules).repeated.min_items = 1];",
        "repeated rules do not apply to a map field",
    ),
    (
        "int32 f = 1 [(validate.rules).int32 = {const: 1, gt: 0}];",
        "const cannot be combined with gt",
    ),
    (
        'string f = 1 [(validate.rules).string = {const: "a", min_len: 1}];',
        "const cannot be combined with min_len",
    ),
    ("int32 f = 1 [(validate.rules).int32 = {in: [1], gt: 0}];", "in cannot be combined with gt"),
    (
        "int32 f = 1 [(validate.rules).int32 = {in: [1], not_in: [2]}];",
        "in cannot be combined with not_in",
    ),
    ("int32 f = 1 [(validate.rules).int32 = {lt: 5, lte: 6}];", "lt and lte cannot both be set"),
    ("int32 f = 1 [(validate.rules).int32 = {gt: 5, gte: 6}];", "gt and gte cannot both be set"),
    ("int32 f = 1 [(validate.rules).int32 = {gt: 5, lt: 5}];", "leaves no valid value"),
    ("double f = 1 [(validate.rules).double = {gte: 1.5, lt: 1.5}];", "leaves no valid value"),
    (
        "string f = 1 [(validate.rules).string = {len: 3, min_len: 1}];",
        "len cannot be combined with min_len or max_len",
    ),
    (
        "string f = 1 [(validate.rules).string = {len_bytes: 3, max_bytes: 4}];",
        "len_bytes cannot be combined",
    ),
    ("bytes f = 1 [(validate.rules).bytes = {len: 3, max_len: 4}];", "len cannot be combined"),
    (
        "string f = 1 [(validate.rules).string = {min_len: 5, max_len: 2}];",
        "min_len (5) is greater than max_len (2)",
    ),
    (
        "string f = 1 [(validate.rules).string = {min_bytes: 5, max_bytes: 2}];",
        "min_bytes (5) is greater than max_bytes (2)",
    ),
    (
        "bytes f = 1 [(validate.rules).bytes = {min_len: 5, max_len: 2}];",
        "min_len (5) is greater than max_len (2)",
    ),
    (
        "repeated int32 f = 1 [(validate.rules).repeated = {min_items: 3, max_items: 1}];",
        "min_items (3) is greater than max_items (1)",
    ),
    (
        "map<string, string> f = 1 [(validate.rules).map = {min_pairs: 3, max_pairs: 1}];",
        "min_pairs (3) is greater than max_pairs (1)",
    ),
    (
        'string f = 1 [(validate.rules).string = {prefix: "abcdef", max_len: 3}];',
        "prefix 'abcdef' is longer than max_len (3)",
    ),
    (
        'string f = 1 [(validate.rules).string = {suffix: "éé", max_bytes: 3}];',
        "suffix 'éé' is longer than max_bytes (3)",
    ),
    (
        'string f = 1 [(validate.rules).string = {contains: "abcd", len: 2}];',
        "contains 'abcd' is longer than len (2)",
    ),
    (
        'string f = 1 [(validate.rules).string = {pattern: "a", in: ["a"]}];',
        "pattern cannot be combined with in",
    ),
    (
        'string f = 1 [(validate.rules).string = {pattern: "a", well_known_regex: HTTP_HEADER_NAME}];',
        "pattern cannot be combined with well_known_regex",
    ),
    ('string f = 1 [(validate.rules).string.pattern = "(a"];', "is not valid RE2"),
    ('string f = 1 [(validate.rules).string.pattern = "(?=lookahead)"];', "is not valid RE2"),
    (
        "Colour f = 1 [(validate.rules).enum = {defined_only: true, in: [1, 7]}];",
        "in value 7 is not a defined enum number",
    ),
    (
        "repeated Item f = 1 [(validate.rules).repeated.unique = true];",
        "repeated.unique does not apply to message items",
    ),
    (
        "map<string, string> f = 1 [(validate.rules).map.no_sparse = true];",
        "no_sparse applies only to maps with message values",
    ),
    (
        "google.protobuf.Timestamp f = 1 [(validate.rules).timestamp = {lt_now: true, gt: {seconds: 1}}];",
        "lt_now cannot be combined with gt",
    ),
    (
        "google.protobuf.Timestamp f = 1 [(validate.rules).timestamp = {within: {seconds: 1}, lt: {seconds: 1}}];",
        "within cannot be combined with lt",
    ),
    (
        "google.protobuf.Timestamp f = 1 [(validate.rules).timestamp = {lt_now: true, gt_now: true}];",
        "lt_now and gt_now cannot both be set",
    ),
    (
        "google.protobuf.Timestamp f = 1 [(validate.rules).timestamp.within = {seconds: 0}];",
        "within must be a positive duration",
    ),
    (
        "google.protobuf.Timestamp f = 1 [(validate.rules).timestamp.within = {seconds: -5}];",
        "within must be a positive duration",
    ),
    (
        "google.protobuf.Duration f = 1 [(validate.rules).duration.lt = {seconds: 1, nanos: -5}];",
        "duration.lt is not a normalised duration",
    ),
    (
        "google.protobuf.Duration f = 1 [(validate.rules).duration.gt = {nanos: 1000000000}];",
        "duration.gt is not a normalised duration",
    ),
    (
        "google.protobuf.Timestamp f = 1 [(validate.rules).timestamp.gt = {nanos: -1}];",
        "timestamp.gt is not a normalised timestamp",
    ),
    (
        "google.protobuf.Duration f = 1 [(validate.rules).timestamp.required = true];",
        "timestamp rules do not apply to google.protobuf.Duration",
    ),
    (
        "string f = 1 [(validate.rules).message.required = true];",
        "message rules apply only to message fields",
    ),
    (
        "map<string, string> f = 1 [(validate.rules).map.keys.int32.gt = 1];",
        "int32 rules do not apply to a string field",
    ),
]


@pytest.mark.parametrize(("field", "fragment"), CONFLICTS)
def test_conflicting_rules_are_an_error(
    compile_protos: CompileProtos, field: str, fragment: str
) -> None:
    error = error_for(compile_protos, field)
    assert error.startswith("bad.proto: bad.v1.M.f"), error
    assert fragment in error, error


LEGAL = [
    "int32 f = 1 [(validate.rules).int32 = {gt: 10, lt: 5}];",  # exclusive range, outside (5, 10)
    "int32 f = 1 [(validate.rules).int32 = {gte: 10, lte: 5}];",
    "int32 f = 1 [(validate.rules).int32 = {gte: 5, lte: 5}];",  # a single value
    "string f = 1 [(validate.rules).string = {len: 0}];",
    'string f = 1 [(validate.rules).string = {const: ""}];',
    "int32 f = 1 [(validate.rules).int32 = {const: 0}];",
    'string f = 1 [(validate.rules).string = {prefix: "ab", max_len: 2}];',
    "google.protobuf.Int32Value f = 1 [(validate.rules).int32.gt = 1];",
    "Colour f = 1 [(validate.rules).enum = {defined_only: true, in: [0, 1]}];",
    "google.protobuf.Timestamp f = 1 [(validate.rules).timestamp = {gt_now: true, within: {seconds: 60}}];",
    'string f = 1 [(validate.rules).string.pattern = "\\"quoted\\" \\\\d+ \\n"];',
    # Rule sets that check nothing: no loop over the items with nothing in it.
    "repeated string f = 1 [(validate.rules).repeated.items.string = {}];",
    "map<string, string> f = 1 [(validate.rules).map.values.string = {ignore_empty: true}];",
    "repeated google.protobuf.StringValue f = 1 [(validate.rules).repeated.items.string = {}];",
]


@pytest.mark.parametrize("field", LEGAL)
def test_legal_rules_generate(compile_protos: CompileProtos, field: str) -> None:
    assert error_for(compile_protos, field) == ""
