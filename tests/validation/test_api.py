"""The runtime API: collect_violations returns every violation, validate raises ValidationError
carrying the same list, Violation's shape, messages without rules, one violation per (path,
rule), no mutation, and one x_validate.py module next to each x_pb2.py."""

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import empty_pb2, timestamp_pb2

from .conftest import PROTO_ROOT, module_name, pairs, proto_files, runtime

SEVEN = [
    ("age", "int32.gte_lte", False),
    ("email", "string.email", False),
    ("name", "string.min_len", False),
    ("remote", "message.required", False),
    ('scores["x"]', "string.min_len", True),
    ("tags", "repeated.unique", False),
    ("tags[2]", "string.max_len", False),
]


@pytest.fixture(scope="module")
def ks(load: Any) -> Any:
    return load("kitchen_sink")


@pytest.fixture(scope="module")
def other(load: Any) -> Any:
    return load("cross/other")


def broken(ks: Any) -> Any:
    return ks.KitchenSink(
        email="nope", name="a", age=-1, tags=["a", "a", "toolong"], scores={"x": 1}
    )


def fixed(ks: Any, other: Any) -> Any:
    return ks.KitchenSink(
        email="a@example.com",
        name="ab",
        age=150,
        tags=["a", "b", "fives"],
        scores={"xx": 1},
        remote=other.Remote(code="ABC"),
        created=timestamp_pb2.Timestamp(seconds=int(time.time()) - 3600),
    )


def test_seven_broken_rules_seven_violations(ks: Any) -> None:
    violations = runtime().collect_violations(broken(ks))
    assert len(violations) == 7
    assert pairs(violations) == SEVEN


def test_eighth_rule(ks: Any) -> None:
    message = broken(ks)
    message.created.seconds = int(time.time()) + 3600
    assert pairs(runtime().collect_violations(message)) == sorted(
        [*SEVEN, ("created", "timestamp.lt_now", False)]
    )


def test_fixed_kitchen_sink_is_valid(ks: Any, other: Any) -> None:
    assert runtime().collect_violations(fixed(ks, other)) == []
    assert runtime().validate(fixed(ks, other)) is None


def test_validate_raises_with_the_same_list(ks: Any) -> None:
    message = broken(ks)
    with pytest.raises(runtime().ValidationError) as raised:
        runtime().validate(message)
    assert list(raised.value.violations) == list(runtime().collect_violations(message))
    assert isinstance(raised.value, Exception)


@pytest.mark.parametrize(("field", "value"), [("email", ""), ("name", "é"), ("age", 151)])
def test_validate_raises_for_a_single_violation(
    ks: Any, other: Any, field: str, value: Any
) -> None:
    message = fixed(ks, other)
    setattr(message, field, value)
    with pytest.raises(runtime().ValidationError) as raised:
        runtime().validate(message)
    assert [v.field_path for v in raised.value.violations] == [field]


def test_collect_is_deterministic(ks: Any) -> None:
    message = broken(ks)
    assert runtime().collect_violations(message) == runtime().collect_violations(message)


def test_violation_shape(ks: Any) -> None:
    violation_cls = runtime().Violation
    assert violation_cls._fields == ("field_path", "rule_id", "message", "for_key", "rule")
    # protoc-gen-validate's violations carry no rule path; protovalidate's do.
    assert violation_cls("a", "string.email", "m") == ("a", "string.email", "m", False, "")
    for violation in runtime().collect_violations(broken(ks)):
        assert isinstance(violation, violation_cls)
        assert isinstance(violation.message, str)
        assert violation.message
        assert isinstance(violation.for_key, bool)


def test_list_is_a_list(ks: Any) -> None:
    assert isinstance(runtime().collect_violations(broken(ks)), list)


def test_at_most_one_violation_per_path_and_rule(ks: Any, other: Any) -> None:
    message = fixed(ks, other)
    message.tags[:] = ["a", "a", "a", "b", "b", "b"]
    violations = runtime().collect_violations(message)
    assert pairs(violations) == [("tags", "repeated.unique", False)]
    assert len(violations) == 1


def test_validation_does_not_mutate(ks: Any) -> None:
    message = ks.KitchenSink(email="nope")
    before = message.SerializeToString(deterministic=True)
    runtime().collect_violations(message)
    with pytest.raises(runtime().ValidationError):
        runtime().validate(message)
    assert not message.HasField("remote")
    assert not message.HasField("created")
    assert message.SerializeToString(deterministic=True) == before


def test_well_known_message_without_rules_is_valid() -> None:
    assert runtime().collect_violations(empty_pb2.Empty()) == []
    assert runtime().validate(empty_pb2.Empty()) is None


@pytest.mark.parametrize("filled", [False, True])
def test_vt_message_without_rules_is_valid(load: Any, filled: bool) -> None:
    pb = load("messages")
    message = pb.NoRules()
    if filled:
        message.text = "x"
        message.tags.extend(["", ""])
        message.children["a"].value = ""
        message.child.value = ""
    assert runtime().collect_violations(message) == []
    assert runtime().validate(message) is None


def test_a_validate_module_next_to_every_pb2(validation_out: Path) -> None:
    for proto in proto_files():
        stem = proto.removesuffix(".proto")
        assert (validation_out / f"{stem}_pb2.py").is_file(), proto
        if "\nmessage " not in (PROTO_ROOT / proto).read_text():
            continue  # only extensions (predefined rules): no validator to write
        assert (validation_out / f"{stem}_validate.py").is_file(), proto


def test_runtime_names() -> None:
    module = runtime()
    for name in ("collect_violations", "validate", "ValidationError", "Violation"):
        assert hasattr(module, name), name


def test_cross_package_validation_in_a_fresh_interpreter(validation_out: Path) -> None:
    """Only vt/messages.proto's own modules imported: the validator for vt.cross.Remote (in
    another file and package) is found without the test importing it."""
    script = f"""
import sys
sys.path.insert(0, {str(validation_out)!r})
import importlib
pb = importlib.import_module({module_name("vt/messages.proto", "_pb2")!r})
importlib.import_module({module_name("vt/messages.proto", "_validate")!r})
from vt.cross import other_pb2
from protoc_gen_pyservice.runtime.validation import collect_violations
message = pb.Outer(
    required_inner=pb.Inner(name="x"),
    required_skipped=pb.Inner(name="x"),
    remote=other_pb2.Remote(code="bad"),
)
print(sorted((v.field_path, v.rule_id) for v in collect_violations(message)))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[('remote.code', 'string.pattern')]"
