"""pattern is RE2 syntax: where RE2 and Python's re disagree, RE2 decides."""

from typing import Any

import pytest

from .conftest import check, expect


@pytest.fixture(scope="module")
def pb(load: Any) -> Any:
    return load("re2")


OK = {"dollar": "a", "letters": "a", "digits": "1", "end_z": "ab", "word": "a", "raw": b"a"}


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("dollar", "abc", True),
        # Python's re lets $ match before a final newline; RE2 does not.
        ("dollar", "abc\n", False),
        ("letters", "héllo", True),
        ("letters", "Ωmega", True),
        ("letters", "abc1", False),
        ("digits", "0123456789", True),
        # ARABIC-INDIC DIGIT THREE: \d is ASCII-only in RE2.
        ("digits", "\u0663", False),
        ("end_z", "ab", True),
        ("end_z", "ab\n", False),
        ("end_z", "abc", False),
        ("word", "a_1", True),
        ("word", "é", False),
        ("raw", b"abc", True),
        ("raw", b"abc\n", False),
        ("raw", b"\xff", False),
    ],
)
def test_re2_semantics(pb: Any, field: str, value: Any, valid: bool) -> None:
    rule = None if valid else ("bytes.pattern" if field == "raw" else "string.pattern")
    assert check(pb.Re2(**{**OK, field: value})) == expect(field, rule)
