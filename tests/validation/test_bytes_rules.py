"""BytesRules: lengths in bytes, pattern, affixes, sets and the IP address formats (raw 4 or 16
bytes)."""

from typing import Any

import pytest

from .conftest import build, check, expect

IPV4 = bytes([127, 0, 0, 1])
IPV6 = bytes(15) + b"\x01"

OK = {
    "const_b": b"\x00\x01",
    "len": b"abc",
    "min_len": b"ab",
    "max_len": b"",
    "pattern": b"a",
    "prefix": b"\xde\xad",
    "suffix": b"!",
    "contains": b"\x00",
    "in_list": b"a",
    "not_in_list": b"",
    "ip": IPV4,
    "ipv4": IPV4,
    "ipv6": IPV6,
    "maybe": b"",
    "multi": b"xyz",
    "unanchored": b"1",
}

E_ACUTE = "é".encode()  # 2 bytes
GRINNING = "😀".encode()  # 4 bytes


@pytest.fixture(scope="module")
def pb(load: Any) -> Any:
    return load("bytes")


def test_baseline_is_valid(pb: Any) -> None:
    assert check(pb.Blobs(**OK)) == []


def test_default_message(pb: Any) -> None:
    assert check(pb.Blobs()) == [
        ("const_b", "bytes.const", False),
        ("contains", "bytes.contains", False),
        ("in_list", "bytes.in", False),
        ("ip", "bytes.ip", False),
        ("ipv4", "bytes.ipv4", False),
        ("ipv6", "bytes.ipv6", False),
        ("len", "bytes.len", False),
        ("min_len", "bytes.min_len", False),
        ("multi", "bytes.min_len", False),
        ("multi", "bytes.prefix", False),
        ("pattern", "bytes.pattern", False),
        ("prefix", "bytes.prefix", False),
        ("suffix", "bytes.suffix", False),
        ("unanchored", "bytes.pattern", False),
    ]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("const_b", b"\x00\x01", None),
        ("const_b", b"\x00", "bytes.const"),
        ("const_b", b"\x00\x01\x00", "bytes.const"),
        ("const_b", b"", "bytes.const"),
        ("len", b"abc", None),
        ("len", E_ACUTE + b"a", None),
        ("len", E_ACUTE, "bytes.len"),
        ("len", GRINNING, "bytes.len"),
        ("len", b"", "bytes.len"),
        ("len", b"abcd", "bytes.len"),
        ("min_len", b"ab", None),
        ("min_len", E_ACUTE, None),
        ("min_len", b"a", "bytes.min_len"),
        ("min_len", b"", "bytes.min_len"),
        ("max_len", b"abc", None),
        ("max_len", E_ACUTE, None),
        ("max_len", b"abcd", "bytes.max_len"),
        ("max_len", GRINNING, "bytes.max_len"),
        ("pattern", b"abc", None),
        ("pattern", b"ab1", "bytes.pattern"),
        ("pattern", b"", "bytes.pattern"),
        ("pattern", b"\xff", "bytes.pattern"),
        ("unanchored", b"abc1def", None),
        ("unanchored", b"abc", "bytes.pattern"),
        ("prefix", b"\xde\xad\xbe\xef", None),
        ("prefix", b"\xde", "bytes.prefix"),
        ("prefix", b"\x00\xde\xad", "bytes.prefix"),
        ("suffix", b"hi!", None),
        ("suffix", b"!?", "bytes.suffix"),
        ("contains", b"a\x00b", None),
        ("contains", b"ab", "bytes.contains"),
        ("in_list", b"bb", None),
        ("in_list", b"b", "bytes.in"),
        ("in_list", b"", "bytes.in"),
        ("not_in_list", b"\xff", "bytes.not_in"),
        ("not_in_list", b"\xff\xff", None),
        ("maybe", b"abcd", None),
        ("maybe", b"abc", "bytes.len"),
        ("multi", b"xyzw", None),
        ("multi", b"axyz", "bytes.prefix"),
        ("multi", b"xy", "bytes.min_len"),
    ],
)
def test_rule(pb: Any, field: str, value: bytes, rule: str | None) -> None:
    assert check(build(pb.Blobs, OK, **{field: value})) == expect(field, rule)


def test_two_broken_rules_on_one_field(pb: Any) -> None:
    assert check(build(pb.Blobs, OK, multi=b"a")) == [
        ("multi", "bytes.min_len", False),
        ("multi", "bytes.prefix", False),
    ]


@pytest.mark.parametrize(
    ("field", "size", "valid"),
    [
        ("ip", 4, True),
        ("ip", 16, True),
        ("ip", 0, False),
        ("ip", 3, False),
        ("ip", 5, False),
        ("ip", 15, False),
        ("ip", 17, False),
        ("ipv4", 4, True),
        ("ipv4", 0, False),
        ("ipv4", 16, False),
        ("ipv4", 5, False),
        ("ipv6", 16, True),
        ("ipv6", 0, False),
        ("ipv6", 4, False),
        ("ipv6", 17, False),
    ],
)
def test_ip_sizes(pb: Any, field: str, size: int, valid: bool) -> None:
    value = bytes(range(1, size + 1))
    rule = None if valid else f"bytes.{field}"
    assert check(build(pb.Blobs, OK, **{field: value})) == expect(field, rule)


def test_optional_bytes_checked_only_when_set(pb: Any) -> None:
    assert check(pb.Blobs(**OK)) == []
    assert check(pb.Blobs(**OK, maybe_set=b"")) == expect("maybe_set", "bytes.min_len")
    assert check(pb.Blobs(**OK, maybe_set=b"x")) == []
