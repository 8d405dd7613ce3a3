"""Every standard rule of buf/validate/validate.proto, one message each, against protovalidate.

For each rule the table gives the rule as a proto writes it and the values to try; the test
generates one proto with a message per rule, compiles it with our plugin, and validates every
value with both the generated validator and the `protovalidate` package. Both must report the
same violations (field path, rule id, rule path, for_key) for every value of every rule, or
the same evaluation error.
"""

import importlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import protovalidate
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from protoc_gen_pyservice.runtime import cel, validation

from tests.validation.conftest import PLUGIN, _protoc
from tests.validation.test_protovalidate import theirs

STRINGS = [
    "",
    "a",
    "ab",
    "abc",
    "abcd",
    "abcdefgh",
    "ABC",
    "é",
    "€€",
    "a b",
    "a\x00b",
    "user@example.com",
    "a@b",
    "a@-b.com",
    "example.com",
    "-bad.com",
    "1.2",
    "1.2.3.4",
    "01.2.3.4",
    "256.1.1.1",
    "::1",
    "fe80::1%eth0",
    "::ffff:1.2.3.4",
    "2001:db8::/32",
    "10.0.0.0/8",
    "10.0.0.1/8",
    "1.2.3.4/33",
    "host:80",
    "[::1]:443",
    "host:080",
    "host:65536",
    "https://example.com/a?b#c",
    "https://exa mple.com",
    "/relative/path",
    "%zz",
    "123e4567-e89b-12d3-a456-426614174000",
    "123e4567e89b12d3a456426614174000",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "foo.bar",
    ".foo.bar",
    "x-header",
    ":authority",
    "a\r\nb",
    "tab\there",
]
INT32 = [-(2**31), -10, -5, -1, 0, 1, 2, 3, 5, 6, 10, 100, 2**31 - 1]
INT64 = [-(2**63), *INT32[1:-1], 2**63 - 1]
UINT32 = [0, 1, 2, 3, 5, 6, 10, 100, 2**32 - 1]
UINT64 = [*UINT32[:-1], 2**64 - 1]
DOUBLES = [-math.inf, -10.0, -5.0, -0.0, 0.0, 1.0, 2.0, 5.0, 5.5, 10.0, math.inf, math.nan]
BYTES = [b"", b"\x01", b"ab", b"abc", b"\x01\x02\x03\x04", bytes(16), b"\xff\xfe", b"\x00"]
SECONDS = [(-10, 0), (0, 0), (0, 500_000_000), (1, 0), (2, 0), (5, 0), (10, 0), (60, 1)]
NOW_OFFSETS = [-7200, -10, 30, 7200]  # seconds from now, far from any edge the clock moves
ENUMS = [0, 1, 2, 3, -1]
LISTS = [[], [1], [1, 2], [1, 1], [0, 2], [1, 2, 3, 4]]
MAPS: list[dict[str, int]] = [{}, {"a": 1}, {"": 1}, {"a": 0}, {"a": 1, "b": 2, "c": 3}]
MASKS = [[], ["a"], ["a.b"], ["b"], ["a", "b"], ["ab"]]

NUMBER_RULES = [
    "const: 5",
    "lt: 5",
    "lte: 5",
    "gt: 5",
    "gte: 5",
    "gt: 1, lt: 10",
    "gt: 10, lt: 1",
    "gte: 1, lte: 10",
    "gte: 10, lte: 1",
    "gt: 1, lte: 10",
    "gte: 1, lt: 10",
    "in: [1, 2]",
    "not_in: [1]",
]
STRING_RULES = [
    'const: "abc"',
    "len: 3",
    "min_len: 2",
    "max_len: 3",
    "len_bytes: 3",
    "min_bytes: 2",
    "max_bytes: 3",
    'pattern: "^[a-z]+$"',
    'prefix: "ab"',
    'suffix: "bc"',
    'contains: "b"',
    'not_contains: "b"',
    'in: ["a", "abc"]',
    'not_in: ["abc"]',
    *(
        f"{name}: true"
        for name in (
            "email",
            "hostname",
            "ip",
            "ipv4",
            "ipv6",
            "uri",
            "uri_ref",
            "address",
            "uuid",
            "tuuid",
            "ip_with_prefixlen",
            "ipv4_with_prefixlen",
            "ipv6_with_prefixlen",
            "ip_prefix",
            "ipv4_prefix",
            "ipv6_prefix",
            "host_and_port",
            "ulid",
            "protobuf_fqn",
            "protobuf_dot_fqn",
        )
    ),
    "well_known_regex: KNOWN_REGEX_HTTP_HEADER_NAME",
    "well_known_regex: KNOWN_REGEX_HTTP_HEADER_VALUE",
    "well_known_regex: KNOWN_REGEX_HTTP_HEADER_NAME, strict: false",
    "well_known_regex: KNOWN_REGEX_HTTP_HEADER_VALUE, strict: false",
]
BYTES_RULES = [
    'const: "abc"',
    "len: 3",
    "min_len: 2",
    "max_len: 3",
    'pattern: "^[a-z]+$"',
    'prefix: "\\x01"',
    'suffix: "c"',
    'contains: "b"',
    'in: ["abc", "\\x01"]',
    'not_in: ["abc"]',
    "ip: true",
    "ipv4: true",
    "ipv6: true",
    "uuid: true",
]
TIME_RULES = [
    "const: {seconds: 5}",
    "lt: {seconds: 5}",
    "lte: {seconds: 5}",
    "gt: {seconds: 5}",
    "gte: {seconds: 5}",
    "gt: {seconds: 1}, lt: {seconds: 10}",
    "gt: {seconds: 10}, lt: {seconds: 1}",
    "gte: {seconds: 1}, lte: {seconds: 10}",
]

# (name, field type, rules on it, values, how a value is set)
Setter = Callable[[Any, Any], None]


def _plain(message: Any, value: Any) -> None:
    message.v = value


def _items(message: Any, value: Any) -> None:
    message.v.extend(value)


def _entries(message: Any, value: Any) -> None:
    message.v.update(value)


def _duration(message: Any, value: Any) -> None:
    message.v.CopyFrom(duration_pb2.Duration(seconds=value[0], nanos=value[1]))


def _timestamp(message: Any, value: Any) -> None:
    message.v.CopyFrom(timestamp_pb2.Timestamp(seconds=value[0], nanos=value[1]))


def _from_now(message: Any, value: Any) -> None:
    message.v.CopyFrom(timestamp_pb2.Timestamp(seconds=int(time.time()) + value))


def _mask(message: Any, value: Any) -> None:
    message.v.CopyFrom(field_mask_pb2.FieldMask(paths=value))


def _cases() -> Iterator[tuple[str, str, str, list[Any], Setter]]:
    numbers: dict[str, list[Any]] = {
        "int32": INT32,
        "sint32": INT32,
        "sfixed32": INT32,
        "int64": INT64,
        "sint64": INT64,
        "sfixed64": INT64,
        "uint32": UINT32,
        "fixed32": UINT32,
        "uint64": UINT64,
        "fixed64": UINT64,
        "double": DOUBLES,
        "float": DOUBLES,
    }
    for family, values in numbers.items():
        for rule in NUMBER_RULES:
            yield f"{family} {rule}", family, f"{family} = {{{rule}}}", values, _plain
    for family in ("double", "float"):
        yield f"{family} finite", family, f"{family}.finite = true", DOUBLES, _plain
    for rule in STRING_RULES:
        yield f"string {rule}", "string", f"string = {{{rule}}}", STRINGS, _plain
    for rule in BYTES_RULES:
        yield f"bytes {rule}", "bytes", f"bytes = {{{rule}}}", BYTES, _plain
    for value in ("true", "false"):
        yield f"bool const {value}", "bool", f"bool.const = {value}", [True, False], _plain
    for rule in ("const: 1", "defined_only: true", "in: [1, 2]", "not_in: [1]"):
        yield f"enum {rule}", "RuleColor", f"enum = {{{rule}}}", ENUMS, _plain
    for rule in [*TIME_RULES, "in: [{seconds: 1}]", "not_in: [{seconds: 1}]"]:
        yield (
            f"duration {rule}",
            "google.protobuf.Duration",
            f"duration = {{{rule}}}",
            SECONDS,
            _duration,
        )
    for rule in TIME_RULES:
        yield (
            f"timestamp {rule}",
            "google.protobuf.Timestamp",
            f"timestamp = {{{rule}}}",
            SECONDS,
            _timestamp,
        )
    for rule in ("lt_now: true", "gt_now: true", "within: {seconds: 3600}"):
        yield (
            f"timestamp {rule}",
            "google.protobuf.Timestamp",
            f"timestamp = {{{rule}}}",
            NOW_OFFSETS,
            _from_now,
        )
    for rule in ("min_items: 2", "max_items: 2", "unique: true", "items: {int32: {gt: 0}}"):
        yield f"repeated {rule}", "repeated int32", f"repeated = {{{rule}}}", LISTS, _items
    for rule in (
        "min_pairs: 1",
        "max_pairs: 2",
        "keys: {string: {min_len: 1}}",
        "values: {int32: {gt: 0}}",
    ):
        yield f"map {rule}", "map<string, int32>", f"map = {{{rule}}}", MAPS, _entries
    for rule in ('const: {paths: ["a"]}', 'in: ["a"]', 'not_in: ["a"]'):
        yield (
            f"field_mask {rule}",
            "google.protobuf.FieldMask",
            f"field_mask = {{{rule}}}",
            MASKS,
            _mask,
        )
    yield "required string", "string", "required = true", ["", "a"], _plain
    yield "required optional", "optional string", "required = true", [None, "", "a"], _plain
    yield "required repeated", "repeated int32", "required = true", [[], [0]], _items
    yield (
        "ignore if zero",
        "int32",
        "int32.gt = 5, (buf.validate.field).ignore = IGNORE_IF_ZERO_VALUE",
        INT32,
        _plain,
    )
    yield (
        "ignore always",
        "int32",
        "int32.gt = 5, (buf.validate.field).ignore = IGNORE_ALWAYS",
        INT32,
        _plain,
    )


CASES = list(_cases())
PROTO = (
    'syntax = "proto3";\npackage vtr;\n'
    'import "buf/validate/validate.proto";\n'
    'import "google/protobuf/duration.proto";\n'
    'import "google/protobuf/field_mask.proto";\n'
    'import "google/protobuf/timestamp.proto";\n'
    "enum RuleColor { RULE_COLOR_UNSPECIFIED = 0; RULE_COLOR_RED = 1; RULE_COLOR_BLUE = 2; }\n"
    + "".join(
        f"message R{index} {{ {field_type} v = 1 [(buf.validate.field).{rules}]; }}\n"
        for index, (_, field_type, rules, _, _) in enumerate(CASES)
    )
)


@pytest.fixture(scope="module")
def rules_module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    source = tmp_path_factory.mktemp("rules_src")
    out = tmp_path_factory.mktemp("rules_out")
    (source / "vtr").mkdir()
    (source / "vtr" / "rules.proto").write_text(PROTO)
    _protoc(
        f"-I{source}",
        f"--plugin=protoc-gen-pyservice={PLUGIN}",
        f"--python_out={out}",
        f"--pyservice_out={out}",
        "vtr/rules.proto",
    )
    sys.path.insert(0, str(out))
    importlib.invalidate_caches()
    module = importlib.import_module("vtr.rules_pb2")
    importlib.import_module("vtr.rules_validate")
    return module


def _ours(message: Any) -> list[tuple[str, str, str, bool]]:
    return sorted(
        (v.field_path, v.rule_id, v.rule, v.for_key) for v in validation.collect_violations(message)
    )


@pytest.mark.parametrize(("index", "name"), [(i, case[0]) for i, case in enumerate(CASES)])
def test_each_rule_agrees_with_protovalidate(rules_module: Any, index: int, name: str) -> None:
    _, _, _, values, setter = CASES[index]
    message_class = getattr(rules_module, f"R{index}")
    for value in values:
        message = message_class()
        if value is not None:
            setter(message, value)
        try:
            expected = theirs(message)
        except protovalidate.EvaluationError:
            with pytest.raises(cel.EvaluationError):
                _ours(message)
            continue
        assert _ours(message) == expected, (name, value)


def test_the_table_covers_every_rule_family(rules_module: Any) -> None:
    families = {name.split()[0] for name, *_ in CASES}
    assert families >= {
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
        "float",
        "double",
        "string",
        "bytes",
        "bool",
        "enum",
        "duration",
        "timestamp",
        "repeated",
        "map",
        "field_mask",
        "required",
        "ignore",
    }
    assert len(CASES) > 200
