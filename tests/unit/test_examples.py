"""The example solver: pattern shapes, format judges held to the runtime, and whole testing
modules generated from small protos (and from random rule sets), run against their validators."""

import importlib
import itertools
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import re2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.model import examples, formats
from protoc_gen_pyservice.model.patterns import PatternShape
from protoc_gen_pyservice.model.plan import Check, CheckKind
from protoc_gen_pyservice.model.solve import Domain, Values
from protoc_gen_pyservice.options import Options
from protoc_gen_pyservice.pipeline import planned_files
from protoc_gen_pyservice.runtime import testing, validation

from tests.conftest import PROJECT_INCLUDES, WKT_INCLUDE, descriptor_set
from tests.examples_check import problems

PLUGIN = Path(sys.executable).parent / "protoc-gen-pyservice"
_packages = itertools.count()


def build(tmp_path: Path, body: str, *, syntax: str = 'syntax = "proto3";') -> ModuleType:
    """The testing module of a proto with `body` (messages and a service), in a package of
    its own, imported with its _pb2 and validator modules."""
    package = f"examples{next(_packages)}"
    source = tmp_path / "src"
    (source / package).mkdir(parents=True)
    (source / package / "api.proto").write_text(
        f'{syntax}\npackage {package};\nimport "validate/validate.proto";\n'
        'import "buf/validate/validate.proto";\n'
        'import "google/protobuf/timestamp.proto";\n' + body
    )
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{source}",
            f"-I{PROJECT_INCLUDES[-1]}",
            f"-I{WKT_INCLUDE}",
            f"--plugin=protoc-gen-pyservice={PLUGIN}",
            f"--python_out={out}",
            f"--pyservice_out={out}",
            f"{package}/api.proto",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(out))
    importlib.invalidate_caches()
    return importlib.import_module(f"{package}.api_testing")


# Pattern shapes


@pytest.mark.parametrize(
    "pattern",
    [
        "^[a-z]+$",
        "[0-9]+",
        "^[A-Z]{3}$",
        r"^[a-z]+\d{2,}\.\\$",
        r"\S",
        "^(foo|bar)-x?[^,]{2,4}$",
        r"^(?P<year>\d{4})-(?:\d\d)$",
        r"^\w+@\w+\.com$",
        r"^[\x41-\x43]\t$",
        "^a.b*?c$",
    ],
)
def test_simple_pattern_shapes_give_matching_examples(pattern: str) -> None:
    shape = PatternShape.parse(pattern)
    assert shape is not None
    for example in shape.examples((5, 12, 40)):
        assert re2.search(pattern, example), example


@pytest.mark.parametrize(
    "pattern", [r"^\p{L}+$", "(?i)abc", r"\bword", r"(a)\1", "[[:alpha:]]", "a{2", "a^b", "(a"]
)
def test_other_shapes_are_refused(pattern: str) -> None:
    assert PatternShape.parse(pattern) is None


def test_a_stretched_example_reaches_the_length_asked_for() -> None:
    shape = PatternShape.parse("^[a-z]+[0-9]{2,}$")
    assert shape is not None
    assert {len(text) for text in shape.examples((10,))} >= {3, 10}


# Format judges: certain answers agree with the runtime's checks.

_TEXT = st.text(st.sampled_from("abcz09.-_@:/ %[]éAZ\n\t\x00\x7f"), max_size=24) | st.sampled_from(
    [seed for seeds in formats.SEEDS.values() for seed in seeds]
)


@settings(max_examples=400, deadline=None)
@given(text=_TEXT, function=st.sampled_from(sorted(set(formats.JUDGES) - {"is_ip_bytes"})))
def test_format_judges_are_never_wrong(text: str, function: str) -> None:
    for strict in (True, False):
        judged = formats.JUDGES[function](text, strict)
        if judged is None:
            continue
        check = getattr(validation, function)
        actual = check(text, strict) if function.startswith("is_header") else check(text)
        assert judged == actual, (function, text, strict)


@pytest.mark.parametrize("function", sorted(formats.SEEDS))
def test_seeds_pass_and_breakers_fail_their_format(function: str) -> None:
    judge = formats.JUDGES[function]
    arguments: Any = (True,) if function.startswith("is_header") else ()
    for text in formats.SEEDS[function]:
        value = text.encode("latin-1") if function == "is_ip_bytes" else text
        assert judge(value, None) is True
        assert getattr(validation, function)(value, *arguments)
    for text in formats.BREAKERS[function][:1]:
        value = text.encode("latin-1") if function == "is_ip_bytes" else text
        assert judge(value, None) is False
        assert not getattr(validation, function)(value, *arguments)


@pytest.mark.parametrize("function", sorted(formats.JUDGES))
@pytest.mark.parametrize("longest", [False, True])
def test_each_format_gives_many_distinct_values(function: str, longest: bool) -> None:
    """Enough for `unique` with `min_items`: padding never makes another uuid or address,
    so values are varied within the format, and within a maximum length (`longest`)."""
    family = "bytes" if function == "is_ip_bytes" else "string"
    strict: Any = True if function.startswith("is_header") else None
    checks = [Check(CheckKind.FORMAT, "string.format", "", arg=strict, function=function)]
    if longest:
        size = max(len(seed) for seed in formats.SEEDS[function])
        checks.append(Check(CheckKind.LEN_GT, "string.max_len", "", arg=size))
    found = Values(Domain(family), tuple(checks), {}, ignore_empty=False).passing(50, filled=True)
    assert found is not None and len(set(found)) == 50
    arguments: Any = (True,) if strict else ()
    for value in found:
        assert getattr(validation, function)(value, *arguments), value
        assert not longest or len(value) <= checks[-1].arg  # type: ignore[operator]


@pytest.mark.parametrize("key", ["k", 'a"b\\c', "", 7, -3, True, False])
def test_key_text_is_the_runtimes(key: Any) -> None:
    assert examples.key_text(key) == validation.key_text(key)


# Whole modules from small protos


def test_a_pattern_without_a_derivable_example_asks_for_one(tmp_path: Path) -> None:
    module = build(
        tmp_path,
        """
message Letters {
  string word = 1 [(validate.rules).string = {pattern: "^\\\\p{Lu}\\\\p{Ll}+$", min_len: 4}];
  string other = 2 [(validate.rules).string.min_len = 1];
}
service Words { rpc Spell(Letters) returns (Letters); }
""",
    )
    field = f"{module.__name__.removesuffix('.api_testing')}.Letters.word"
    with pytest.raises(testing.ExampleNeeded) as needed:
        module.valid_letters()
    message = str(needed.value)
    assert field in message and "string.pattern" in message
    assert f"provide_example({field!r}, value)" in message
    # Every case builds on the valid request, so each needs the example too, and the rules
    # of the field itself cannot be broken from a value the generator does not know.
    assert [(s.field_path, s.rule_id) for s in module.SKIPPED_CASES] == [
        ("word", "string.min_len"),
        ("word", "string.pattern"),
    ]
    # A case of another field builds on the valid request too: it names the same field.
    [other] = module.INVALID_LETTERS
    with pytest.raises(testing.ExampleNeeded, match=f"provide_example\\({field!r}, value\\)"):
        other.build()
    testing.provide_example(field, "Ábcd")
    assert problems(module) == []
    assert [case.field_path for case in module.INVALID_LETTERS] == ["other"]


def test_a_list_without_derivable_items_asks_for_all_of_them(tmp_path: Path) -> None:
    module = build(
        tmp_path,
        """
message Codes {
  repeated string codes = 1 [(validate.rules).repeated = {
    unique: true, min_items: 3, items: {string: {pattern: "^\\\\p{Lu}{2}$"}}
  }];
  int32 page = 2 [(validate.rules).int32.gt = 0];
}
service S { rpc Call(Codes) returns (Codes); }
""",
    )
    field = f"{module.__name__.removesuffix('.api_testing')}.Codes.codes"
    for build_request in (module.valid_codes, *(case.build for case in module.INVALID_CODES)):
        with pytest.raises(testing.ExampleNeeded) as needed:
            build_request()
        assert needed.value.field == field
        assert "it needs 3, all distinct" in str(needed.value)
    testing.provide_example(field, ["ÀB", "ÉF", "ÎJ"])
    assert problems(module) == []
    assert [case.field_path for case in module.INVALID_CODES] == ["page"]


def test_rules_that_cannot_be_broken_alone_are_skipped_with_a_reason(tmp_path: Path) -> None:
    module = build(
        tmp_path,
        """
message Limits {
  string maybe = 1 [(validate.rules).string = {min_len: 1, ignore_empty: true}];
  repeated string one = 2 [(validate.rules).repeated = {unique: true, max_items: 1}];
  uint32 top = 3 [(validate.rules).uint32.lte = 4294967295];
  repeated int32 some = 4 [(validate.rules).repeated = {min_items: 1, ignore_empty: true}];
}
service S { rpc Call(Limits) returns (Limits); }
""",
    )
    assert problems(module) == []
    assert [(s.field_path, s.rule_id, s.reason) for s in module.SKIPPED_CASES] == [
        ("maybe", "string.min_len", "an empty value is not checked (ignore_empty)"),
        ("one", "repeated.unique", "at most one item is allowed"),
        ("top", "uint32.lte", "no value breaks this rule while passing the others"),
        ("some", "repeated.min_items", "an empty collection is not checked (ignore_empty)"),
    ]
    assert [case.name for case in module.INVALID_LIMITS] == ["one-repeated.max_items"]


def test_keyword_fields_clocks_and_long_values(tmp_path: Path) -> None:
    module = build(
        tmp_path,
        """
enum Mode { MODE_UNSPECIFIED = 0; MODE_ON = 1; }
message Odd {
  string class = 1 [(validate.rules).string.min_len = 2];
  Mode mode = 2 [(validate.rules).enum = {defined_only: true, not_in: [0]}];
  string long = 3 [(validate.rules).string = {min_len: 300, prefix: "id-"}];
  google.protobuf.Timestamp soon = 4 [(validate.rules).timestamp = {
    required: true, gt_now: true, within: {seconds: 86400}
  }];
  map<string, Odd> children = 5;
}
service S { rpc Call(Odd) returns (Odd); }
""",
    )
    assert problems(module) == []
    valid = module.valid_odd()
    assert getattr(valid, "class") == "aa" and valid.mode == 1
    assert len(valid.long) == 300 and valid.long.startswith("id-")
    source = Path(str(module.__file__)).read_text()
    assert '"id-" + "a" * 297' in source
    assert 'setattr(request, "class", ' in source
    assert "soon=testing.timestamp_from_now(" in source
    assert "request.mode = testing.enum_number(" in source


def test_a_field_named_self_builds_under_the_pure_python_backend(tmp_path: Path) -> None:
    """Its constructor is `__init__(self, **kwargs)`: `self` is set once the message is built."""
    module = build(
        tmp_path,
        """
message Inner { string self = 1 [(validate.rules).string.min_len = 1]; }
message Selfish {
  string self = 1 [(validate.rules).string.min_len = 2];
  Inner inner = 2 [(validate.rules).message.required = true];
  repeated Inner items = 3 [(validate.rules).repeated.min_items = 1];
}
service S { rpc Call(Selfish) returns (Selfish); }
""",
    )
    source = Path(str(module.__file__)).read_text()
    assert 'testing.with_fields(api_pb2.Inner(), {"self": "a"})' in source
    assert "yield the SClient connected to it" in source  # "a" would not fit every name
    out = Path(str(module.__file__)).parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "tests.examples_check", module.__name__],
        env={**os.environ, "PYTHONPATH": f"{out}{os.pathsep}{Path.cwd()}"}
        | {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    valid = module.valid_selfish()
    assert valid.self == "aa" and valid.items[0].self == "a"


def test_proto2_required_fields_and_closed_enums(tmp_path: Path) -> None:
    module = build(
        tmp_path,
        """
enum Closed { CLOSED_ONE = 1; CLOSED_TWO = 2; }
message Legacy {
  required string name = 1;
  required Closed kind = 2 [(validate.rules).enum.defined_only = true];
  optional int32 count = 3 [(validate.rules).int32.gt = 0];
}
service S { rpc Call(Legacy) returns (Legacy); }
""",
        syntax='syntax = "proto2";',
    )
    assert problems(module) == []  # serializing checks that required fields are set
    assert [(s.field_path, s.rule_id) for s in module.SKIPPED_CASES] == [
        ("kind", "enum.defined_only")  # a closed enum field holds no other number
    ]


def test_names_that_would_clash_are_told_apart(tmp_path: Path) -> None:
    module = build(
        tmp_path,
        """
message Get { message Request { string id = 1 [(validate.rules).string.min_len = 1]; } }
message GetRequest { string id = 1; }
service Users { rpc A(Get.Request) returns (GetRequest); rpc B(GetRequest) returns (Get); }
service users { rpc C(GetRequest) returns (GetRequest); }
""",
    )
    names = set(vars(module))
    assert {"valid_get_request", "INVALID_GET_REQUEST"} <= names  # Get.Request, first
    package = module.__name__.removesuffix(".api_testing")
    assert f"valid_{package}_get_request" in names  # GetRequest, qualified
    assert {"serve_users", "users_client_fixture", "serve_users_", "users_client_fixture_"} <= names
    assert problems(module) == []


def test_requests_from_other_files(tmp_path: Path) -> None:
    module = build(
        tmp_path,
        """
import "google/protobuf/empty.proto";
service S { rpc Ping(google.protobuf.Empty) returns (google.protobuf.Timestamp); }
""",
    )
    assert module.INVALID_EMPTY == ()
    assert runtime.collect_violations(module.valid_empty()) == []


def test_unique_items_of_every_format(tmp_path: Path) -> None:
    formats_used = ["uuid", "ipv4", "ipv6", "ip", "email", "hostname", "uri", "uri_ref", "address"]
    fields = "\n".join(
        f"  repeated string {name} = {number} [(validate.rules).repeated = "
        f"{{unique: true, min_items: {2 + number % 4}, max_items: 9, "
        f"items: {{string: {{{name}: true, max_len: 40}}}}}}];"
        for number, name in enumerate(formats_used, 1)
    )
    module = build(
        tmp_path,
        f"""
message Lists {{
{fields}
  map<string, string> ids = 20 [(validate.rules).map = {{
    min_pairs: 3, keys: {{string: {{uuid: true}}}}, values: {{string: {{ipv4: true}}}}
  }}];
  repeated bytes hosts = 21 [(validate.rules).repeated = {{
    unique: true, min_items: 3, items: {{bytes: {{ip: true}}}}
  }}];
}}
service S {{ rpc Call(Lists) returns (Lists); }}
""",
    )
    valid = module.valid_lists()
    assert len(valid.uuid) == 3 and len(set(valid.uuid)) == 3
    assert len(valid.ipv4) == 4 and len(valid.ids) == 3
    assert problems(module) == []
    # Only the length no value of these formats reaches.
    skipped = [(s.field_path, s.rule_id) for s in module.SKIPPED_CASES]
    assert skipped == [(f"{name}[]", "string.max_len") for name in ("uuid", "ipv4", "ipv6", "ip")]


# The solver's own copy of the checks (solve.Values._passes) against the generated
# validators: one field per CheckKind, so a new kind fails here until it is covered.
_ONE_FIELD_PER_CHECK_KIND = {
    CheckKind.NOT_EQUAL: 'string const = 1 [(validate.rules).string.const = "x"];',
    CheckKind.NOT_IDENTICAL: "bool on = 2 [(validate.rules).bool.const = true];",
    CheckKind.NOT_IN: 'string member = 3 [(validate.rules).string = {in: ["a", "b"]}];',
    CheckKind.IN: 'string other = 4 [(validate.rules).string = {not_in: ["a"]}];',
    CheckKind.RANGE: "int32 count = 5 [(validate.rules).int32 = {gt: 0, lte: 9}];",
    CheckKind.LEN_NE: "string code = 6 [(validate.rules).string.len = 3];",
    CheckKind.LEN_LT: "string name = 7 [(validate.rules).string.min_len = 2];",
    CheckKind.EMPTY: "string id = 8 [(validate.rules).string.min_len = 1];",
    CheckKind.LEN_GT: "string short = 9 [(validate.rules).string.max_len = 4];",
    CheckKind.UTF8_LEN_NE: "string word = 10 [(validate.rules).string.len_bytes = 4];",
    CheckKind.UTF8_LEN_LT: "string text = 11 [(validate.rules).string.min_bytes = 2];",
    CheckKind.UTF8_LEN_GT: "string tiny = 12 [(validate.rules).string.max_bytes = 5];",
    CheckKind.NO_PREFIX: 'string key = 13 [(validate.rules).string.prefix = "k-"];',
    CheckKind.NO_SUFFIX: 'string file = 14 [(validate.rules).string.suffix = ".py"];',
    CheckKind.NO_CONTAINS: 'string path = 15 [(validate.rules).string.contains = "/"];',
    CheckKind.CONTAINS: 'string safe = 16 [(validate.rules).string.not_contains = "!"];',
    CheckKind.NO_MATCH: 'string slug = 17 [(validate.rules).string.pattern = "^[a-z]+$"];',
    CheckKind.FORMAT: "string mail = 18 [(validate.rules).string.email = true];",
    CheckKind.NOT_UNIQUE: "repeated int32 tags = 19 [(validate.rules).repeated.unique = true];",
    CheckKind.NOT_BEFORE_NOW: (
        "google.protobuf.Timestamp past = 20 [(validate.rules).timestamp.lt_now = true];"
    ),
    CheckKind.NOT_AFTER_NOW: (
        "google.protobuf.Timestamp future = 21 [(validate.rules).timestamp.gt_now = true];"
    ),
    CheckKind.NOT_WITHIN: (
        "google.protobuf.Timestamp near = 22 [(validate.rules).timestamp.within.seconds = 60];"
    ),
    # protovalidate's rules, in the same message as protoc-gen-validate's.
    CheckKind.CEL: (
        "int32 even = 23 [(buf.validate.field).cel = "
        '{id: "even", message: "must be even", expression: "this % 2 == 0"}];'
    ),
}


def test_the_solver_agrees_with_the_validators_on_every_check_kind(tmp_path: Path) -> None:
    body = (
        "message Every {\n  "
        + "\n  ".join(_ONE_FIELD_PER_CHECK_KIND.values())
        + "\n}\nservice S { rpc Call(Every) returns (Every); }\n"
    )
    module = build(tmp_path, body)
    package = module.__name__.removesuffix(".api_testing")
    source = tmp_path / "src"
    files = descriptor_set(source, [f"{package}/api.proto"], PROJECT_INCLUDES[1:]).file
    [(_, plans)] = planned_files(files, [f"{package}/api.proto"], Options())
    kinds = {
        check.kind: field.name
        for message in plans.validation.messages
        for field in message.fields
        for check in (*field.collection_checks, *(field.value.checks if field.value else ()))
    }
    assert set(kinds) == set(CheckKind), "give each CheckKind a field above"
    assert all(f" {name} = " in _ONE_FIELD_PER_CHECK_KIND[kind] for kind, name in kinds.items())
    assert problems(module) == []
    assert len(module.INVALID_EVERY) == len(CheckKind) and module.SKIPPED_CASES == ()


# Random rule sets: whatever combination a proto declares, the examples hold.

_TEXT_OPTIONAL = {
    "prefix": st.sampled_from(['"a"', '"é"', '"x-"']),
    "suffix": st.sampled_from(['"z"', '"!"']),
    "contains": st.sampled_from(['"mid"', '"b"']),
    "not_contains": st.sampled_from(['"bad"', '"q"']),
    "pattern": st.sampled_from(['"^[a-z!é-]+$"', '"[0-9]"', '"^x"', '"\\\\S"']),
    "not_in": st.sampled_from(['"admin"', '""']),
    "format": st.sampled_from(["email", "hostname", "uuid", "ipv4"]),
    "ignore_empty": st.just("true"),
}


@st.composite
def _string_rules(draw: st.DrawFn) -> dict[str, Any]:
    """Rules protoc-gen-validate accepts together: `in` alone, bounds in order, and room
    for a prefix, suffix or substring (none longer than 3)."""
    if draw(st.booleans()) and draw(st.booleans()):
        return {"in": draw(st.sampled_from(['"red", "green"', '"a", ""'])), "ignore_empty": "true"}
    rules: dict[str, Any] = draw(st.fixed_dictionaries({}, optional=_TEXT_OPTIONAL))
    for low, high, room in (("min_len", "max_len", 6), ("min_bytes", "max_bytes", 12)):
        bounds = draw(st.sampled_from(["", "low", "high", "both"]))
        minimum = draw(st.integers(0, 6))
        if bounds in ("low", "both"):
            rules[low] = minimum
        if bounds in ("high", "both"):
            rules[high] = max(minimum, room) + draw(st.integers(0, 6))
    return rules


@st.composite
def _number_rules(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"in": draw(st.sampled_from(["1, 2, 3", "-1, 0"]))}
    rules: dict[str, Any] = {}
    if draw(st.booleans()):
        rules["gt"] = draw(st.integers(-5, 5))
    if draw(st.booleans()):  # above or below gt: a range, or a reversed one
        rules["lte"] = rules.get("gt", 0) + draw(st.sampled_from([-3, -1, 1, 4]))
    if draw(st.booleans()):
        rules["not_in"] = draw(st.sampled_from(["0", "2, 3"]))
    if draw(st.booleans()):
        rules["ignore_empty"] = "true"
    return rules


@st.composite
def _list_rules(draw: st.DrawFn) -> dict[str, Any]:
    """`unique` with up to 12 items at least, the most common wish for lists of ids."""
    rules: dict[str, Any] = {"unique": draw(st.sampled_from(["true", "false"]))}
    rules["min_items"] = draw(st.integers(0, 12))
    if draw(st.booleans()):
        rules["max_items"] = rules["min_items"] + draw(st.integers(0, 3))
    return rules


def _rules_text(rules: dict[str, Any]) -> str:
    def rule(name: str, value: Any) -> str:
        if name == "format":  # one of the `well_known` oneof
            return f"{value}: true"
        return f"{name}: [{value}]" if name in ("in", "not_in") else f"{name}: {value}"

    return ", ".join(rule(name, value) for name, value in rules.items())


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    text=st.lists(_string_rules(), min_size=1, max_size=3),
    numbers=st.lists(_number_rules(), max_size=2),
    repeated=st.none() | _list_rules(),
)
def test_random_rule_sets(
    tmp_path_factory: pytest.TempPathFactory,
    text: list[dict[str, Any]],
    numbers: list[dict[str, Any]],
    repeated: dict[str, Any] | None,
) -> None:
    fields = [
        f"string s{index} = {index + 1} [(validate.rules).string = {{{_rules_text(rules)}}}];"
        for index, rules in enumerate(text)
    ]
    if repeated is not None:  # the first string rules on items of a list
        fields[0] = (
            f"repeated string s0 = 1 [(validate.rules).repeated = {{{_rules_text(repeated)}, "
            f"items: {{string: {{{_rules_text(text[0])}}}}}}}];"
        )
    fields += [
        f"int64 n{index} = {index + 10} [(validate.rules).int64 = {{{_rules_text(rules)}}}];"
        for index, rules in enumerate(numbers)
    ]
    body = (
        "message Random {\n  "
        + "\n  ".join(fields)
        + "\n}\nservice S { rpc Call(Random) returns (Random); }\n"
    )
    tmp_path = tmp_path_factory.mktemp("random")
    try:
        module = build(tmp_path, body)
    except AssertionError as refused:
        assume(" rules: " not in str(refused))  # contradictory rules: the plugin says so
        raise
    if not _derivable(module):
        return
    assert problems(module) == []


def _derivable(module: ModuleType) -> bool:
    try:
        module.valid_random()
    except testing.ExampleNeeded:
        return False
    return True
