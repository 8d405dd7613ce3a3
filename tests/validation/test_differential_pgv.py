"""Differential tests: our generated validators against protoc-gen-validate's own Python runtime.

Random messages of the rule-bearing test protos, with field values drawn around each rule's
own constants, must get the same verdict (valid or not) from both. PGV's runtime reads the
`FieldDescriptor.label` protobuf 7 removed, so messages with embedded message fields are
compared only where it does not crash. Every known disagreement is listed in KNOWN_PGV_ERRORS
with the reason the specification (the comments in validate.proto) sides with us.
"""

import math
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.validation.conftest import runtime

pgv = pytest.importorskip("protoc_gen_validate.validator")

# (module, message) pairs whose fields are all scalars, repeated scalars or maps of scalars.
MESSAGES = [
    ("strings", "Lengths"),
    ("strings", "Matching"),
    ("strings", "Formats"),
    ("strings", "Headers"),
    ("strings", "Empties"),
    ("bytes", "Blobs"),
    ("numbers", "Int32Msg"),
    ("numbers", "Int64Msg"),
    ("numbers", "UInt32Msg"),
    ("numbers", "SInt64Msg"),
    ("numbers", "Fixed32Msg"),
    ("numbers", "SFixed64Msg"),
    ("numbers", "DoubleMsg"),
    ("numbers", "FloatMsg"),
    ("enums", "Enums"),
]

SAMPLE_TEXT = [
    "",
    "a",
    "é",
    "😀",
    "abc",
    "a@b.co",
    "not an email",
    "example.com",
    "-bad-.com",
    "1.2.3.4",
    "::1",
    "256.1.1.1",
    "http://example.com/x?y#z",
    "/relative",
    "550e8400-e29b-41d4-a716-446655440000",
    "x-custom-header",
    "bad\r\nvalue",
]

_EQUAL_BOUNDS = (
    "PGV's runtime reads equal gte and lte as a reversed range and accepts every value; "
    "validate.proto reverses a range only when the lower bound is larger"
)
# (message, field) pairs where PGV's runtime accepts values validate.proto rejects, and why.
# A disagreement passes only when we reject and every field we reject is listed here.
KNOWN_PGV_ERRORS: dict[tuple[str, str], str] = {
    ("Formats", "uri_ref"): (
        "PGV's runtime rejects a uri_ref only when it has a fragment and no scheme or path; "
        "RFC 3986, which validate.proto names, forbids spaces, control characters and a colon "
        "in the first segment of a relative reference"
    ),
    **{
        (message, "point"): _EQUAL_BOUNDS
        for message in (
            "Int32Msg",
            "Int64Msg",
            "UInt32Msg",
            "SInt64Msg",
            "Fixed32Msg",
            "SFixed64Msg",
            "DoubleMsg",
            "FloatMsg",
        )
    },
}


def rule_constants(field: FieldDescriptor) -> list[Any]:
    """Every literal appearing in the field's rules: the places where verdicts change."""
    from validate import validate_pb2

    options: Any = field.GetOptions()
    if not options.HasExtension(validate_pb2.rules):
        return []
    rules: Any = options.Extensions[validate_pb2.rules]
    family = rules.WhichOneof("type")
    if family is None:
        return []
    found: list[Any] = []
    for descriptor, value in getattr(rules, family).ListFields():
        values = list(value) if descriptor.is_repeated else [value]
        found.extend(v for v in values if isinstance(v, int | float | str | bytes))
    return found


def candidates(field: FieldDescriptor) -> list[Any]:
    constants = rule_constants(field)
    if field.type == FieldDescriptor.TYPE_STRING:
        texts = [c for c in constants if isinstance(c, str)]
        lengths = [c for c in constants if isinstance(c, int) and not isinstance(c, bool)]
        derived = [t + "x" for t in texts] + ["x" + t for t in texts] + [t[:-1] for t in texts]
        sized = ["a" * n for length in lengths for n in (max(length - 1, 0), length, length + 1)]
        sized += ["é" * n for length in lengths for n in (max(length // 2, 0), length)]
        return SAMPLE_TEXT + texts + derived + sized
    if field.type == FieldDescriptor.TYPE_BYTES:
        blobs: list[bytes] = [c for c in constants if isinstance(c, bytes)]
        lengths = [c for c in constants if isinstance(c, int) and not isinstance(c, bool)]
        sized_blobs = [
            b"\x01" * n for length in lengths for n in (max(length - 1, 0), length, length + 1)
        ]
        return [
            b"",
            b"a",
            b"\x00\xff",
            bytes(4),
            bytes(16),
            *blobs,
            *(b + b"!" for b in blobs),
            *sized_blobs,
        ]
    if field.type == FieldDescriptor.TYPE_BOOL:
        return [False, True]
    numbers = [c for c in constants if isinstance(c, int | float) and not isinstance(c, bool)]
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        near = [n + d for n in numbers for d in (-0.5, 0.0, 0.5)]
        return [0.0, -0.0, 1.0, -1.0, *near, math.inf, -math.inf]
    integers = [int(n) + d for n in numbers for d in (-1, 0, 1)]
    return [v for v in (0, 1, -1, *integers) if _fits(field, v)]


def _fits(field: FieldDescriptor, value: int) -> bool:
    unsigned = field.type in (
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
    )
    wide = field.type in (
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    )
    bits = 64 if wide else 32
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return bool(low <= value <= high)


def field_values(cls: Any, field: FieldDescriptor) -> tuple[list[Any], list[Any]]:
    """A field's candidate values, split by our verdict on that field alone.

    Drawing mostly from the values we accept keeps most messages valid but for a field or two,
    so each comparison says something about those fields rather than "both saw some error".
    """
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        values: list[Any] = [v.number for v in field.enum_type.values] + [99, -1]
    else:
        values = candidates(field)
    accepted: list[Any] = []
    rejected: list[Any] = []
    for value in values:
        instance = cls(**{field.name: [value] if field.is_repeated else value})
        paths = {v.field_path.split("[")[0] for v in runtime().collect_violations(instance)}
        (rejected if field.name in paths else accepted).append(value)
    return accepted, rejected


def message_strategy(cls: Any) -> st.SearchStrategy[Any]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in cls.DESCRIPTOR.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            continue
        accepted, rejected = field_values(cls, field)
        mostly_valid = st.sampled_from(accepted or rejected)
        element = st.one_of(
            mostly_valid, mostly_valid, mostly_valid, st.sampled_from(rejected or accepted)
        )
        fields[field.name] = st.lists(element, max_size=3) if field.is_repeated else element
    return st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))


def pgv_verdict(message: Any) -> bool | None:
    """True when PGV's runtime accepts the message, False when it rejects it, None if it crashed."""
    try:
        pgv.validate(message)
    except pgv.ValidationFailed:
        return False
    except AttributeError:  # protobuf 7 removed FieldDescriptor.label, which PGV reads
        return None
    return True


def _compare(message: str) -> Callable[[Any], None]:
    def compare(instance: Any) -> None:
        ours = not runtime().collect_violations(instance)
        theirs = pgv_verdict(instance)
        if theirs is None or ours == theirs:
            return
        found = runtime().collect_violations(instance)
        rejected_fields = {v.field_path.split("[")[0] for v in found}
        explained = not ours and all(
            (message, name) in KNOWN_PGV_ERRORS for name in rejected_fields
        )
        if not explained:
            pytest.fail(
                f"{message} {instance!r}: ours={ours} pgv={theirs}; our violations: {found}"
            )

    return compare


@pytest.mark.parametrize(("module", "message"), MESSAGES)
def test_verdicts_agree_with_pgv(load: Callable[[str], Any], module: str, message: str) -> None:
    cls = getattr(load(module), message)
    compare = _compare(message)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(message_strategy(cls))
    def run(instance: Any) -> None:
        compare(instance)

    run()


def valid_baseline(cls: Any) -> dict[str, Any]:
    """A message's fields set to values we accept one by one."""
    baseline: dict[str, Any] = {}
    for field in cls.DESCRIPTOR.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            continue
        accepted, _ = field_values(cls, field)
        if accepted:
            baseline[field.name] = [accepted[0]] if field.is_repeated else accepted[0]
    return baseline


@pytest.mark.parametrize(
    ("module", "message", "field", "value"),
    [
        ("strings", "Formats", "uri_ref", "has a space"),
        ("strings", "Formats", "uri_ref", "::1"),
        ("numbers", "Int32Msg", "point", 8),
        ("numbers", "DoubleMsg", "point", 0.0),
    ],
)
def test_known_pgv_errors_are_pinned(
    load: Callable[[str], Any], module: str, message: str, field: str, value: Any
) -> None:
    cls = getattr(load(module), message)
    instance = cls(**{**valid_baseline(cls), field: value})
    assert pgv_verdict(instance) is True, (
        "PGV's runtime now agrees: drop the KNOWN_PGV_ERRORS entry"
    )
    assert [v.field_path for v in runtime().collect_violations(instance)] == [field]
    assert (message, field) in KNOWN_PGV_ERRORS


@pytest.mark.parametrize(
    ("module", "message", "fields", "valid"),
    [
        # protoc-gen-validate's harness: "message - required - valid (unset)" and its kin.
        ("messages", "MessageRequiredButOptional", {}, True),
        ("messages", "MessageRequiredButOptional", {"val": {"name": "x"}}, True),
        ("messages", "MessageRequiredOneof", {}, False),
        ("messages", "MessageRequiredOneof", {"other": "x"}, True),
        ("messages", "MessageRequiredOneof", {"val": {"name": "x"}}, True),
        ("wkt", "OptionalRequired", {}, True),
        ("wkt", "OptionalRequired", {"wait": {"seconds": 1}}, True),
        ("wkt", "OptionalRequired", {"wait": {}}, False),
    ],
)
def test_required_on_oneof_members_agrees_with_pgv(
    load: Callable[[str], Any], module: str, message: str, fields: dict[str, Any], valid: bool
) -> None:
    instance = getattr(load(module), message)(**fields)
    assert pgv_verdict(instance) is valid
    assert (not runtime().collect_violations(instance)) is valid
