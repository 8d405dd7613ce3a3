"""MessageRules (required, skip), recursive validation of embedded messages (nested, recursive
types, across files and packages), (validate.disabled), (validate.ignored), required oneofs and
proto3 optional fields."""

from typing import Any

import pytest

from .conftest import check


@pytest.fixture(scope="module")
def pb(load: Any) -> Any:
    return load("messages")


@pytest.fixture(scope="module")
def other(load: Any) -> Any:
    return load("cross/other")


def outer(pb: Any, **fields: Any) -> Any:
    fields.setdefault("required_inner", pb.Inner(name="x"))
    fields.setdefault("required_skipped", pb.Inner(name="x"))
    return pb.Outer(**fields)


def test_valid(pb: Any) -> None:
    assert check(outer(pb)) == []


def test_required_unset(pb: Any) -> None:
    assert check(pb.Outer()) == [
        ("required_inner", "message.required", False),
        ("required_skipped", "message.required", False),
    ]


def test_required_set_to_empty_message_is_set(pb: Any) -> None:
    """An empty embedded message is present: required holds, and its own rules run."""
    assert check(outer(pb, required_inner=pb.Inner())) == [
        ("required_inner.name", "string.min_len", False)
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"skipped": "bad"}, []),
        ({"required_skipped": "bad"}, []),
        ({"plain": "bad"}, [("plain.name", "string.min_len", False)]),
        ({"plain": "ok"}, []),
    ],
)
def test_skip_and_recursion(pb: Any, fields: dict[str, str], expected: list[Any]) -> None:
    inner = {"bad": pb.Inner(name=""), "ok": pb.Inner(name="y")}
    assert check(outer(pb, **{k: inner[v] for k, v in fields.items()})) == expected


def test_unset_embedded_message_is_not_validated(pb: Any) -> None:
    message = outer(pb)
    assert not message.HasField("plain")
    assert check(message) == []


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (None, []),
        ({}, []),
        ({"nested": {}}, [("payload.nested.name", "string.min_len", False)]),
        ({"nested": {"name": "n"}}, []),
    ],
)
def test_nested_path(pb: Any, payload: dict[str, Any] | None, expected: list[Any]) -> None:
    fields = {}
    if payload is not None:
        middle = pb.Middle()
        if "nested" in payload:
            middle.nested.CopyFrom(pb.Inner(**payload["nested"]))
        fields["payload"] = middle
    assert check(outer(pb, **fields)) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [("ABC", []), ("abc", [("remote.code", "string.pattern", False)])],
)
def test_cross_package_embedded(pb: Any, other: Any, code: str, expected: list[Any]) -> None:
    assert check(outer(pb, remote=other.Remote(code=code))) == expected


def test_cross_package_message_on_its_own(other: Any) -> None:
    assert check(other.Remote(code="ABCD")) == [("code", "string.pattern", False)]
    assert check(other.Remote(code="XYZ")) == []


def test_recursive_type(pb: Any) -> None:
    tree = pb.Node(
        id="root",
        child=pb.Node(id="c", child=pb.Node(id="")),
        children=[pb.Node(id="a"), pb.Node(id="", children=[pb.Node(id="")])],
    )
    assert check(tree) == [
        ("child.child.id", "string.min_len", False),
        ("children[1].children[0].id", "string.min_len", False),
        ("children[1].id", "string.min_len", False),
    ]


def test_deep_recursion(pb: Any) -> None:
    root = node = pb.Node(id="0")
    for depth in range(1, 30):
        node.child.id = str(depth)
        node = node.child
    node.id = ""
    assert check(root) == [(".".join(["child"] * 29) + ".id", "string.min_len", False)]


@pytest.mark.parametrize("name", ["Disabled", "Ignored"])
@pytest.mark.parametrize("broken", [False, True])
def test_disabled_and_ignored_messages_report_nothing(pb: Any, name: str, broken: bool) -> None:
    fields = {"name": "a", "plain": pb.Inner()} if broken else {}
    assert check(getattr(pb, name)(**fields)) == []


def test_disabled_and_ignored_embedded_report_nothing(pb: Any) -> None:
    holder = pb.Holder(
        disabled=pb.Disabled(name="a", plain=pb.Inner()),
        ignored=pb.Ignored(name="a", plain=pb.Inner()),
        required_disabled=pb.Disabled(),
    )
    assert check(holder) == []


def test_required_rule_on_a_disabled_message_field_still_applies(pb: Any) -> None:
    """The rule belongs to Holder, which is not disabled."""
    assert check(pb.Holder()) == [("required_disabled", "message.required", False)]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, [("kind", "oneof.required", False)]),
        ({"email": "a@example.com"}, []),
        ({"email": "bad"}, [("email", "string.email", False)]),
        ({"email": ""}, [("email", "string.email", False)]),
        ({"count": 1}, []),
        ({"count": 0}, [("count", "int32.gt", False)]),
        ({"inner": "ok"}, []),
        ({"inner": "bad"}, [("inner.name", "string.min_len", False)]),
        ({"count": 1, "code": "abc"}, []),
        ({"count": 1, "code": ""}, [("code", "string.len", False)]),
        ({"count": 1, "code": "abcd"}, [("code", "string.len", False)]),
        ({"count": 1, "number": 10}, []),
        ({"count": 1, "number": 0}, [("number", "int64.gte", False)]),
        ({"code": "ab"}, [("code", "string.len", False), ("kind", "oneof.required", False)]),
    ],
)
def test_oneof(pb: Any, fields: dict[str, Any], expected: list[Any]) -> None:
    inner = {"ok": pb.Inner(name="x"), "bad": pb.Inner()}
    if "inner" in fields:
        fields = {**fields, "inner": inner[fields["inner"]]}
    assert check(pb.Choice(**fields)) == expected


def test_oneof_last_member_set_wins(pb: Any) -> None:
    choice = pb.Choice(count=0)
    choice.email = "a@example.com"
    assert choice.WhichOneof("kind") == "email"
    assert check(choice) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, []),
        ({"nick": "ab"}, []),
        ({"nick": ""}, [("nick", "string.min_len", False)]),
        ({"nick": "a"}, [("nick", "string.min_len", False)]),
        ({"age": 18}, []),
        ({"age": 0}, [("age", "int32.gte", False)]),
        ({"age": 17}, [("age", "int32.gte", False)]),
        ({"ratio": 0.5}, []),
        ({"ratio": 0.0}, [("ratio", "double.gt", False)]),
        ({"ratio": -0.0}, [("ratio", "double.gt", False)]),
        (
            {"nick": "", "age": 0, "ratio": 0.0},
            [
                ("age", "int32.gte", False),
                ("nick", "string.min_len", False),
                ("ratio", "double.gt", False),
            ],
        ),
    ],
)
def test_proto3_optional(pb: Any, fields: dict[str, Any], expected: list[Any]) -> None:
    assert check(pb.Optionals(**fields)) == expected


def test_optional_cleared_is_unset_again(pb: Any) -> None:
    message = pb.Optionals(nick="")
    message.ClearField("nick")
    assert check(message) == []


@pytest.mark.parametrize(
    ("val", "expected"),
    [
        (None, []),  # PGV's "message - required - valid (unset)"
        ("ok", []),
        ("bad", [("val.name", "string.min_len", False)]),
    ],
)
def test_required_on_a_proto3_optional_field_applies_only_when_set(
    pb: Any, val: str | None, expected: list[Any]
) -> None:
    inner = {"ok": pb.Inner(name="x"), "bad": pb.Inner()}
    message = pb.MessageRequiredButOptional()
    if val is not None:
        message.val.CopyFrom(inner[val])
    assert message.HasField("val") is (val is not None)
    assert check(message) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, [("one", "oneof.required", False)]),  # not also "val is required"
        ({"other": "x"}, []),
        ({"val": "ok"}, []),
        ({"val": "bad"}, [("val.name", "string.min_len", False)]),
    ],
)
def test_required_on_a_oneof_member_applies_only_when_set(
    pb: Any, fields: dict[str, str], expected: list[Any]
) -> None:
    inner = {"ok": pb.Inner(name="x"), "bad": pb.Inner()}
    if "val" in fields:
        fields = {"val": inner[fields["val"]]}
    assert check(pb.MessageRequiredOneof(**fields)) == expected
