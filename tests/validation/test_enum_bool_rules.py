"""EnumRules (const, defined_only, in, not_in; open proto3 enums hold undefined numbers) and
BoolRules (const)."""

from typing import Any

import pytest

from .conftest import build, check, expect

RED, GREEN, BLUE = 1, 2, 3
OK = {"const_e": GREEN, "in_list": RED, "not_in_list": RED, "defined_in": RED}


@pytest.fixture(scope="module")
def pb(load: Any) -> Any:
    return load("enums")


def test_baseline_is_valid(pb: Any) -> None:
    assert check(pb.Enums(**OK)) == []


def test_default_message(pb: Any) -> None:
    assert check(pb.Enums()) == [
        ("const_e", "enum.const", False),
        ("defined_in", "enum.in", False),
        ("in_list", "enum.in", False),
        ("not_in_list", "enum.not_in", False),
    ]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("const_e", GREEN, None),
        ("const_e", RED, "enum.const"),
        ("const_e", 0, "enum.const"),
        ("const_e", 99, "enum.const"),
        ("defined", 0, None),
        ("defined", BLUE, None),
        ("defined", 4, "enum.defined_only"),
        ("defined", -1, "enum.defined_only"),
        ("defined", 99, "enum.defined_only"),
        ("in_list", RED, None),
        ("in_list", BLUE, None),
        ("in_list", GREEN, "enum.in"),
        ("in_list", 0, "enum.in"),
        ("in_list", 99, "enum.in"),
        ("not_in_list", 0, "enum.not_in"),
        ("not_in_list", 99, None),
        ("defined_in", GREEN, None),
        ("defined_in", BLUE, "enum.in"),
        ("shade", 1, None),
        ("shade", 2, "enum.defined_only"),
        ("level", 2, None),
        ("level", 5, "enum.defined_only"),
        ("status", 1, None),
        ("status", 2, "enum.defined_only"),
        ("sign", -1, None),
        ("sign", -2, "enum.defined_only"),
        ("sign", 1, "enum.defined_only"),
        ("free", 12345, None),
    ],
)
def test_enum_rule(pb: Any, field: str, value: int, rule: str | None) -> None:
    assert check(build(pb.Enums, OK, **{field: value})) == expect(field, rule)


def test_undefined_and_not_in_list_breaks_both_rules(pb: Any) -> None:
    assert check(build(pb.Enums, OK, defined_in=99)) == [
        ("defined_in", "enum.defined_only", False),
        ("defined_in", "enum.in", False),
    ]


@pytest.mark.parametrize(
    ("value", "rule"), [(None, None), (0, None), (GREEN, None), (99, "enum.defined_only")]
)
def test_optional_enum_checked_only_when_set(pb: Any, value: int | None, rule: str | None) -> None:
    fields = {} if value is None else {"maybe": value}
    assert check(build(pb.Enums, OK, **fields)) == expect("maybe", rule)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"must_true": True}, []),
        ({"must_true": True, "must_false": False}, []),
        ({}, [("must_true", "bool.const", False)]),
        ({"must_true": False}, [("must_true", "bool.const", False)]),
        ({"must_true": True, "must_false": True}, [("must_false", "bool.const", False)]),
        (
            {"must_true": False, "must_false": True},
            [("must_false", "bool.const", False), ("must_true", "bool.const", False)],
        ),
        ({"must_true": True, "maybe_true": True}, []),
        ({"must_true": True, "maybe_true": False}, [("maybe_true", "bool.const", False)]),
    ],
)
def test_bool_const(pb: Any, fields: dict[str, bool], expected: list[Any]) -> None:
    assert check(pb.Flags(**fields)) == expected
