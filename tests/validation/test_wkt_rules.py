"""Well-known types: Any (required, in, not_in on type_url), Duration and Timestamp (required,
const, ranges, in / not_in, lt_now / gt_now / within against the clock at call time) and the
wrapper types (the wrapped scalar's rules, reported on the field itself)."""

import math
import time
from typing import Any

import pytest
from google.protobuf import any_pb2, duration_pb2, empty_pb2, timestamp_pb2, wrappers_pb2

from .conftest import build, check, expect

DURATION_URL = "type.googleapis.com/google.protobuf.Duration"
TIMESTAMP_URL = "type.googleapis.com/google.protobuf.Timestamp"


@pytest.fixture(scope="module")
def pb(load: Any) -> Any:
    return load("wkt")


def packed(message: Any) -> any_pb2.Any:
    result = any_pb2.Any()
    result.Pack(message)
    return result


def d(seconds: int = 0, nanos: int = 0) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=seconds, nanos=nanos)


def ts(seconds: int = 0, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def from_now(seconds: int) -> timestamp_pb2.Timestamp:
    return ts(int(time.time()) + seconds)


# ---------------------------------------------------------------------------------------- Any

ANYS_OK = {"req": packed(empty_pb2.Empty())}


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("req", None, "any.required"),
        ("req", any_pb2.Any(), None),
        ("req", packed(d(1)), None),
        ("in_list", None, None),
        ("in_list", packed(d(1)), None),
        ("in_list", any_pb2.Any(type_url=DURATION_URL), None),
        ("in_list", packed(ts(1)), "any.in"),
        ("in_list", any_pb2.Any(), "any.in"),
        ("in_list", any_pb2.Any(type_url="example.com/google.protobuf.Duration"), "any.in"),
        ("in_list", any_pb2.Any(type_url="google.protobuf.Duration"), "any.in"),
        ("not_in_list", None, None),
        ("not_in_list", packed(d(1)), None),
        ("not_in_list", any_pb2.Any(), None),
        ("not_in_list", packed(ts(1)), "any.not_in"),
        ("not_in_list", any_pb2.Any(type_url=TIMESTAMP_URL, value=b"garbage"), "any.not_in"),
        ("free", any_pb2.Any(type_url="whatever", value=b"\xff"), None),
    ],
)
def test_any(pb: Any, field: str, value: Any, rule: str | None) -> None:
    fields = {**ANYS_OK, field: value}
    message = pb.Anys(**{k: v for k, v in fields.items() if v is not None})
    assert check(message) == expect(field, rule)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, []),
        ({"wait": d(1), "at": ts(1), "payload": packed(d(1))}, []),
        ({"wait": d(0)}, [("wait", "duration.gt", False)]),
    ],
)
def test_required_on_proto3_optional_well_known_fields_applies_only_when_set(
    pb: Any, fields: dict[str, Any], expected: list[Any]
) -> None:
    assert check(pb.OptionalRequired(**fields)) == expected


# ----------------------------------------------------------------------------------- Duration

DURATIONS_OK = {"req": d(1), "const_d": d(5), "req_gt": d(2)}


def test_durations_unset_fields_are_skipped(pb: Any) -> None:
    assert check(pb.Durations(**DURATIONS_OK)) == []
    assert check(pb.Durations()) == [
        ("req", "duration.required", False),
        ("req_gt", "duration.required", False),
    ]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("req", d(), None),
        ("const_d", d(5), None),
        ("const_d", d(5, 1), "duration.const"),
        ("const_d", d(4, 999_999_999), "duration.const"),
        ("const_d", d(), "duration.const"),
        ("lt", d(9, 999_999_999), None),
        ("lt", d(-100), None),
        ("lt", d(10), "duration.lt"),
        ("lte", d(10), None),
        ("lte", d(10, 1), "duration.lte"),
        ("gt", d(0, 1), None),
        ("gt", d(), "duration.gt"),
        ("gt", d(0, -1), "duration.gt"),
        ("gt", d(-1), "duration.gt"),
        ("gte", d(0, 500_000_000), None),
        ("gte", d(0, 499_999_999), "duration.gte"),
        ("gt_lt", d(0, 1), None),
        ("gt_lt", d(59, 999_999_999), None),
        ("gt_lt", d(), "duration.gt_lt"),
        ("gt_lt", d(60), "duration.gt_lt"),
        ("gte_lte", d(-1), None),
        ("gte_lte", d(1), None),
        ("gte_lte", d(-1, -1), "duration.gte_lte"),
        ("gte_lte", d(1, 1), "duration.gte_lte"),
        ("gt_lte", d(1), "duration.gt_lte"),
        ("gt_lte", d(2), None),
        ("gt_lte", d(2, 1), "duration.gt_lte"),
        ("gte_lt", d(1), None),
        ("gte_lt", d(2), "duration.gte_lt"),
        ("gte_lt", d(0, 999_999_999), "duration.gte_lt"),
        ("in_list", d(1), None),
        ("in_list", d(0, 500_000_000), None),
        ("in_list", d(2), "duration.in"),
        ("in_list", d(1, 1), "duration.in"),
        ("in_list", d(), "duration.in"),
        ("not_in_list", d(), "duration.not_in"),
        ("not_in_list", d(0, 1), None),
        ("req_gt", d(1), "duration.gt"),
        ("req_gt", d(2), None),
    ],
)
def test_duration(pb: Any, field: str, value: duration_pb2.Duration, rule: str | None) -> None:
    assert check(build(pb.Durations, DURATIONS_OK, **{field: value})) == expect(field, rule)


def test_repeated_and_map_durations(pb: Any) -> None:
    message = build(
        pb.Durations,
        DURATIONS_OK,
        timeouts=[d(1), d(), d(0, 1), d(-5)],
        windows={"ok": d(60), "long": d(60, 1)},
    )
    assert check(message) == [
        ("timeouts[1]", "duration.gt", False),
        ("timeouts[3]", "duration.gt", False),
        ('windows["long"]', "duration.lte", False),
    ]


# ---------------------------------------------------------------------------------- Timestamp

TIMESTAMPS_OK = {"req": ts(1)}
HOUR = 3600


def test_timestamps_unset_fields_are_skipped(pb: Any) -> None:
    assert check(pb.Timestamps(**TIMESTAMPS_OK)) == []
    assert check(pb.Timestamps()) == [("req", "timestamp.required", False)]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("req", ts(), None),
        ("const_t", ts(1000), None),
        ("const_t", ts(1000, 1), "timestamp.const"),
        ("const_t", ts(999), "timestamp.const"),
        ("lt", ts(999, 999_999_999), None),
        ("lt", ts(-1), None),
        ("lt", ts(1000), "timestamp.lt"),
        ("lte", ts(1000), None),
        ("lte", ts(1000, 1), "timestamp.lte"),
        ("gt", ts(1000, 1), None),
        ("gt", ts(1000), "timestamp.gt"),
        ("gte", ts(1000), None),
        ("gte", ts(999, 999_999_999), "timestamp.gte"),
        ("gt_lt", ts(0, 1), None),
        ("gt_lt", ts(1_999_999_999), None),
        ("gt_lt", ts(), "timestamp.gt_lt"),
        ("gt_lt", ts(-1), "timestamp.gt_lt"),
        ("gt_lt", ts(2_000_000_000), "timestamp.gt_lt"),
        ("gte_lte", ts(1000), None),
        ("gte_lte", ts(2000), None),
        ("gte_lte", ts(2000, 1), "timestamp.gte_lte"),
        ("gte_lte", ts(999), "timestamp.gte_lte"),
    ],
)
def test_timestamp(pb: Any, field: str, value: timestamp_pb2.Timestamp, rule: str | None) -> None:
    assert check(build(pb.Timestamps, TIMESTAMPS_OK, **{field: value})) == expect(field, rule)


@pytest.mark.parametrize(
    ("field", "offset", "rule"),
    [
        ("lt_now", -HOUR, None),
        ("lt_now", HOUR, "timestamp.lt_now"),
        ("lt_now", 100 * 365 * 24 * HOUR, "timestamp.lt_now"),
        ("gt_now", HOUR, None),
        ("gt_now", -HOUR, "timestamp.gt_now"),
        ("within", -HOUR // 2, None),
        ("within", HOUR // 2, None),
        ("within", -2 * HOUR, "timestamp.within"),
        ("within", 2 * HOUR, "timestamp.within"),
    ],
)
def test_timestamp_relative_to_now(pb: Any, field: str, offset: int, rule: str | None) -> None:
    message = build(pb.Timestamps, TIMESTAMPS_OK, **{field: from_now(offset)})
    assert check(message) == expect(field, rule)


def test_epoch_is_far_from_now(pb: Any) -> None:
    message = build(pb.Timestamps, TIMESTAMPS_OK, lt_now=ts(), gt_now=ts(), within=ts())
    assert check(message) == [
        ("gt_now", "timestamp.gt_now", False),
        ("within", "timestamp.within", False),
    ]


def test_repeated_timestamps(pb: Any) -> None:
    message = build(pb.Timestamps, TIMESTAMPS_OK, stamps=[ts(1), ts(), ts(-1, 0)])
    assert check(message) == [
        ("stamps[1]", "timestamp.gt", False),
        ("stamps[2]", "timestamp.gt", False),
    ]


# ----------------------------------------------------------------------------------- Wrappers

WRAPPERS_OK = {"required_email": wrappers_pb2.StringValue(value="a@example.com")}


def test_wrappers_unset_are_skipped(pb: Any) -> None:
    assert check(pb.Wrappers(**WRAPPERS_OK)) == []
    assert check(pb.Wrappers()) == [("required_email", "message.required", False)]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("name", wrappers_pb2.StringValue(value="abc"), None),
        ("name", wrappers_pb2.StringValue(value="😀😀😀"), None),
        ("name", wrappers_pb2.StringValue(value="ab"), "string.min_len"),
        ("name", wrappers_pb2.StringValue(), "string.min_len"),
        ("count", wrappers_pb2.Int32Value(value=1), None),
        ("count", wrappers_pb2.Int32Value(), "int32.gt"),
        ("ratio", wrappers_pb2.DoubleValue(value=1.0), None),
        ("ratio", wrappers_pb2.DoubleValue(), None),
        ("ratio", wrappers_pb2.DoubleValue(value=1.5), "double.gte_lte"),
        ("ratio", wrappers_pb2.DoubleValue(value=math.nan), "double.gte_lte"),
        ("flag", wrappers_pb2.BoolValue(value=True), None),
        ("flag", wrappers_pb2.BoolValue(), "bool.const"),
        ("blob", wrappers_pb2.BytesValue(value=b"ab"), None),
        ("blob", wrappers_pb2.BytesValue(value=b"abc"), "bytes.max_len"),
        ("big", wrappers_pb2.UInt64Value(value=99), None),
        ("big", wrappers_pb2.UInt64Value(value=100), "uint64.lt"),
        ("small", wrappers_pb2.FloatValue(value=0.5), None),
        ("small", wrappers_pb2.FloatValue(value=-0.0), "float.gt"),
        ("choice", wrappers_pb2.Int64Value(value=2), None),
        ("choice", wrappers_pb2.Int64Value(), "int64.in"),
        ("nonzero", wrappers_pb2.UInt32Value(value=1), None),
        ("nonzero", wrappers_pb2.UInt32Value(), "uint32.not_in"),
        ("required_email", wrappers_pb2.StringValue(value="bad"), "string.email"),
        ("required_email", wrappers_pb2.StringValue(), "string.email"),
        ("free", wrappers_pb2.StringValue(), None),
    ],
)
def test_wrapper(pb: Any, field: str, value: Any, rule: str | None) -> None:
    assert check(build(pb.Wrappers, WRAPPERS_OK, **{field: value})) == expect(field, rule)
