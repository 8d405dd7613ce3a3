"""The numeric rules families (float, double, the ten integer kinds): const, the four bounds and
their combinations (protovalidate-style rule ids, `_exclusive` for PGV's reversed ranges), in,
not_in and ignore_empty; then NaN, infinities, -0.0 and the integer extremes."""

import math
from typing import Any

import pytest

from .conftest import build, check, expect

FAMILIES = {
    "float": "FloatMsg",
    "double": "DoubleMsg",
    "int32": "Int32Msg",
    "int64": "Int64Msg",
    "uint32": "UInt32Msg",
    "uint64": "UInt64Msg",
    "sint32": "SInt32Msg",
    "sint64": "SInt64Msg",
    "fixed32": "Fixed32Msg",
    "fixed64": "Fixed64Msg",
    "sfixed32": "SFixed32Msg",
    "sfixed64": "SFixed64Msg",
}

# A valid value for every field of every <Family>Msg (see vt/numbers.proto for the bounds).
BASELINE = {
    "const_v": 5,
    "lt": 0,
    "lte": 0,
    "gt": 11,
    "gte": 10,
    "gt_lt": 5,
    "gt_lte": 5,
    "gte_lt": 5,
    "gte_lte": 5,
    "gt_lt_ex": 0,
    "gt_lte_ex": 0,
    "gte_lt_ex": 0,
    "gte_lte_ex": 0,
    "in_list": 1,
    "not_in_list": 0,
    "ignore_empty": 0,
    "point": 7,
}

# (field, value, rule suffix or None when valid): the same table for every family.
CASES = [
    ("const_v", 5, None),
    ("const_v", 4, "const"),
    ("const_v", 6, "const"),
    ("lt", 9, None),
    ("lt", 10, "lt"),
    ("lte", 10, None),
    ("lte", 11, "lte"),
    ("gt", 11, None),
    ("gt", 10, "gt"),
    ("gte", 10, None),
    ("gte", 9, "gte"),
    ("gt_lt", 0, "gt_lt"),
    ("gt_lt", 1, None),
    ("gt_lt", 9, None),
    ("gt_lt", 10, "gt_lt"),
    ("gt_lte", 0, "gt_lte"),
    ("gt_lte", 10, None),
    ("gt_lte", 11, "gt_lte"),
    ("gte_lt", 0, None),
    ("gte_lt", 10, "gte_lt"),
    ("gte_lte", 0, None),
    ("gte_lte", 10, None),
    ("gte_lte", 11, "gte_lte"),
    # Reversed: gt 20, lt 10 -> valid when > 20 or < 10.
    ("gt_lt_ex", 21, None),
    ("gt_lt_ex", 20, "gt_lt_exclusive"),
    ("gt_lt_ex", 15, "gt_lt_exclusive"),
    ("gt_lt_ex", 10, "gt_lt_exclusive"),
    ("gt_lt_ex", 9, None),
    ("gt_lte_ex", 20, "gt_lte_exclusive"),
    ("gt_lte_ex", 11, "gt_lte_exclusive"),
    ("gt_lte_ex", 10, None),
    ("gte_lt_ex", 20, None),
    ("gte_lt_ex", 19, "gte_lt_exclusive"),
    ("gte_lt_ex", 10, "gte_lt_exclusive"),
    ("gte_lte_ex", 20, None),
    ("gte_lte_ex", 15, "gte_lte_exclusive"),
    ("gte_lte_ex", 10, None),
    ("in_list", 1, None),
    ("in_list", 3, None),
    ("in_list", 0, "in"),
    ("in_list", 4, "in"),
    ("not_in_list", 7, "not_in"),
    ("not_in_list", 8, "not_in"),
    ("not_in_list", 9, None),
    ("ignore_empty", 0, None),
    ("ignore_empty", 5, "gt"),
    ("ignore_empty", 6, None),
    ("point", 7, None),
    ("point", 6, "gte_lte"),
    ("point", 8, "gte_lte"),
]


@pytest.fixture(scope="module")
def pb(load: Any) -> Any:
    return load("numbers")


@pytest.mark.parametrize("family", FAMILIES)
def test_baseline_is_valid(pb: Any, family: str) -> None:
    assert check(getattr(pb, FAMILIES[family])(**BASELINE)) == []


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_values_are_checked(pb: Any, family: str) -> None:
    """proto3 scalars without presence: an unset field is its zero value, and that is checked."""
    assert check(getattr(pb, FAMILIES[family])()) == [
        ("const_v", f"{family}.const", False),
        ("gt", f"{family}.gt", False),
        ("gt_lt", f"{family}.gt_lt", False),
        ("gt_lte", f"{family}.gt_lte", False),
        ("gte", f"{family}.gte", False),
        ("in_list", f"{family}.in", False),
        ("point", f"{family}.gte_lte", False),
    ]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("field", "value", "suffix"), CASES)
def test_rule(pb: Any, family: str, field: str, value: int, suffix: str | None) -> None:
    message = build(getattr(pb, FAMILIES[family]), BASELINE, **{field: value})
    assert check(message) == expect(field, suffix and f"{family}.{suffix}")


@pytest.mark.parametrize(
    ("family", "value", "valid"),
    [
        ("float", 10.000001, True),
        ("float", 9.999999, False),
        ("double", 10.000000000000002, True),
        ("double", 9.999999999999998, False),
    ],
)
def test_float_gt_next_representable(pb: Any, family: str, value: float, valid: bool) -> None:
    message = build(getattr(pb, FAMILIES[family]), BASELINE, gt=value)
    assert check(message) == expect("gt", None if valid else f"{family}.gt")


NAN = math.nan
INF = math.inf

EDGES_OK = {
    "gt_zero": 1.0,
    "lte_zero": 0.0,
    "const_zero": 0.0,
    "in_zero": 0.0,
    "not_in_zero": 1.0,
    "unit": 0.0,
    "const_tenth": 0.1,
    "lt_ten": 0.0,
    "outside": 2.0,
}

EDGE_CASES = [
    ("gt_zero", NAN, "gt"),
    ("gt_zero", INF, None),
    ("gt_zero", -INF, "gt"),
    ("gt_zero", -0.0, "gt"),
    ("gt_zero", 0.0, "gt"),
    ("gt_zero", 1e-45, None),
    ("lte_zero", NAN, "lte"),
    ("lte_zero", -0.0, None),
    ("lte_zero", -INF, None),
    ("lte_zero", INF, "lte"),
    ("const_zero", -0.0, None),
    ("const_zero", NAN, "const"),
    ("in_zero", -0.0, None),
    ("in_zero", 1.5, None),
    ("in_zero", NAN, "in"),
    ("in_zero", INF, "in"),
    ("not_in_zero", -0.0, "not_in"),
    ("not_in_zero", 0.0, "not_in"),
    ("not_in_zero", NAN, None),
    ("unit", -1.0, None),
    ("unit", 1.0, None),
    ("unit", NAN, "gte_lte"),
    ("unit", INF, "gte_lte"),
    ("unit", -INF, "gte_lte"),
    ("const_tenth", 0.2, "const"),
    ("lt_ten", 9.5, None),
    ("lt_ten", NAN, "lt"),
    ("lt_ten", -INF, None),
    # Reversed range gt 1, lt -1: only outside [-1, 1]; NaN is outside no range.
    ("outside", INF, None),
    ("outside", -INF, None),
    ("outside", 1.0, "gt_lt_exclusive"),
    ("outside", -1.0, "gt_lt_exclusive"),
    ("outside", 0.0, "gt_lt_exclusive"),
    ("outside", NAN, "gt_lt_exclusive"),
]


@pytest.mark.parametrize("family", ["float", "double"])
def test_edges_baseline_is_valid(pb: Any, family: str) -> None:
    """0.1 set on a float field equals the float const 0.1: both are the same float32."""
    cls = pb.FloatEdges if family == "float" else pb.DoubleEdges
    assert check(cls(**EDGES_OK)) == []


@pytest.mark.parametrize("family", ["float", "double"])
@pytest.mark.parametrize(("field", "value", "suffix"), EDGE_CASES)
def test_float_edges(pb: Any, family: str, field: str, value: float, suffix: str | None) -> None:
    cls = pb.FloatEdges if family == "float" else pb.DoubleEdges
    assert check(build(cls, EDGES_OK, **{field: value})) == expect(
        field, suffix and f"{family}.{suffix}"
    )


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1

EXTREMES_OK = {
    "s64_neg": -50,
    "sf32_ex": -20,
    "f64_in": UINT64_MAX,
    "sf64_const": INT64_MIN,
    "f32_max": 2**32 - 1,
}


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("i32_min", -(2**31), "int32.gt"),
        ("i32_min", -(2**31) + 1, None),
        ("i32_max", 2**31 - 1, "int32.lt"),
        ("i32_max", 2**31 - 2, None),
        ("i64_min", INT64_MIN, "int64.gt"),
        ("i64_min", INT64_MIN + 1, None),
        ("i64_max", INT64_MAX, "int64.lte"),
        ("i64_max", INT64_MAX - 1, None),
        ("u32_max", 2**32 - 1, "uint32.lt"),
        ("u32_max", 2**32 - 2, None),
        ("u64_max", UINT64_MAX, "uint64.lt"),
        ("u64_max", UINT64_MAX - 1, None),
        ("s64_neg", -100, None),
        ("s64_neg", -10, None),
        ("s64_neg", -101, "sint64.gte_lte"),
        ("s64_neg", -9, "sint64.gte_lte"),
        ("s64_neg", 0, "sint64.gte_lte"),
        ("sf32_ex", -4, None),
        ("sf32_ex", -5, "sfixed32.gt_lt_exclusive"),
        ("sf32_ex", -7, "sfixed32.gt_lt_exclusive"),
        ("sf32_ex", -10, "sfixed32.gt_lt_exclusive"),
        ("sf32_ex", -11, None),
        ("f64_in", UINT64_MAX - 1, "fixed64.in"),
        ("f64_in", 0, "fixed64.in"),
        ("s32_not_in", -1, "sint32.not_in"),
        ("s32_not_in", 1, None),
        ("sf64_const", INT64_MIN + 1, "sfixed64.const"),
        ("sf64_const", INT64_MAX, "sfixed64.const"),
        ("f32_max", 2**32 - 2, "fixed32.gte"),
    ],
)
def test_integer_extremes(pb: Any, field: str, value: int, rule: str | None) -> None:
    assert check(build(pb.Extremes, EXTREMES_OK, **{field: value})) == expect(field, rule)


def test_extremes_baseline_is_valid(pb: Any) -> None:
    assert check(pb.Extremes(**EXTREMES_OK)) == []
