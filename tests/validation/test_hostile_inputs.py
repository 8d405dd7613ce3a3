"""Validators facing hostile strings up to the 4 MiB message limit: every one answers with the
right verdict, without recursion and with a bounded number of Python steps.

No test here is timed (speed is measured in bench/, never in unit tests). Instead each call
runs under `bounded()`: a stack only a few dozen frames deeper than the caller's, so a parser
that recurses fails with RecursionError, and a budget of Python line events independent of
the input's length, so a Python loop over the input fails too. What remains per character is
C code: str methods, RE2, and `re` patterns written not to backtrack.
"""

import functools
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .conftest import pairs, runtime

T = TypeVar("T")
MESSAGE_LIMIT = 4 * 1024 * 1024  # gRPC's default maximum message size, in bytes
FORMATS = ("email", "hostname", "ip", "ipv4", "ipv6", "uri", "uri_ref", "address", "uuid")
HEADERS = ("name", "value", "name_loose", "value_loose", "name_strict")
# Fields that accept any text without control characters, and any HTTP token.
ANY_TEXT = frozenset({"value", "name_loose", "value_loose"})
TOKEN = frozenset({"name", "name_strict"})
URI = frozenset({"uri", "uri_ref"})


class OverBudget(BaseException):
    """More Python line events than the budget: the work grows with the input."""


@contextmanager
def bounded(lines: int, frames: int = 40) -> Iterator[None]:
    """Fail the block if it runs more than `lines` Python line events or goes more than
    `frames` frames deeper than the caller."""
    depth = 0
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    events = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal events
        events += 1
        if events > lines:
            raise OverBudget(f"more than {lines} Python line events")
        return trace

    limit, previous = sys.getrecursionlimit(), sys.gettrace()
    sys.setrecursionlimit(depth + frames)
    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(previous)
        sys.setrecursionlimit(limit)


def within(lines: int, function: Callable[[], T]) -> T:
    with bounded(lines):
        return function()


def fill(piece: str, prefix: str = "", suffix: str = "") -> str:
    """`prefix`, then `piece` repeated, then `suffix`: as near 4 MiB of UTF-8 as fits."""
    room = MESSAGE_LIMIT - len((prefix + suffix).encode())
    return prefix + piece * (room // len(piece.encode())) + suffix


# name: (the hostile text, the Formats and Headers fields that accept it).
HOSTILE: dict[str, tuple[Callable[[], str], frozenset[str]]] = {
    "letters": (lambda: fill("a"), ANY_TEXT | TOKEN | {"uri_ref"}),
    "digits": (lambda: fill("1"), ANY_TEXT | TOKEN | {"uri_ref"}),
    "dots": (lambda: fill("."), ANY_TEXT | TOKEN | {"uri_ref"}),
    "hyphens": (lambda: fill("-"), ANY_TEXT | TOKEN | {"uri_ref"}),
    "colons": (lambda: fill(":"), ANY_TEXT),
    "slashes": (lambda: fill("/"), ANY_TEXT | {"uri_ref"}),
    "at signs": (lambda: fill("@"), ANY_TEXT | {"uri_ref"}),
    "percents": (lambda: fill("%"), ANY_TEXT | TOKEN),
    "open parens": (lambda: fill("("), ANY_TEXT | {"uri_ref"}),
    "angle brackets": (lambda: fill("<"), ANY_TEXT),
    "square brackets": (lambda: fill("["), ANY_TEXT | {"uri_ref"}),
    "quotes": (lambda: fill('"'), ANY_TEXT),
    "backslashes": (lambda: fill("\\"), ANY_TEXT),
    "spaces": (lambda: fill(" "), ANY_TEXT),
    "tabs": (lambda: fill("\t"), ANY_TEXT),
    "NULs": (lambda: fill("\x00"), frozenset()),
    "newlines": (lambda: fill("\n"), frozenset()),
    "DELs": (lambda: fill("\x7f"), frozenset({"name_loose", "value_loose"})),
    "two-byte letters": (lambda: fill("é"), ANY_TEXT | {"uri_ref"}),
    "four-byte emoji": (lambda: fill("😀"), ANY_TEXT | {"uri_ref"}),
    "NFKC delimiters": (lambda: fill("℀", "http://"), ANY_TEXT),
    "nested comments": (lambda: fill("(", suffix="<a@b.co>"), ANY_TEXT),
    "many <": (lambda: fill("<", suffix="a@b.co>"), ANY_TEXT),
    "many dots after @": (lambda: fill(".", "a@"), ANY_TEXT | {"uri_ref"}),
    "many labels": (lambda: fill("a.", "a@"), ANY_TEXT | {"uri_ref"}),
    "one huge label": (lambda: fill("a", "a@"), ANY_TEXT | {"uri_ref"}),
    "huge local part": (lambda: fill("a", suffix="@b.co"), ANY_TEXT | {"uri_ref"}),
    "huge display name": (lambda: fill("Ada ", suffix="<a@b.co>"), ANY_TEXT),
    "huge quoted name": (lambda: fill("a", '"', '" <a@b.co>'), ANY_TEXT),
    "huge scheme": (lambda: fill("a", suffix="://h/"), ANY_TEXT | URI),
    "huge port": (lambda: fill("1", "http://h:"), ANY_TEXT),
    "port of zeros": (lambda: fill("0", "http://h:", "80"), ANY_TEXT | URI),
    "huge IP literal": (lambda: fill(":", "http://[", "]/"), ANY_TEXT),
    "huge authority": (lambda: fill("a", "http://"), ANY_TEXT | URI),
    "percent escapes": (lambda: fill("%41", "http://h/"), ANY_TEXT | URI),
    "bad last escape": (lambda: fill("%41", "http://h/", "%4"), ANY_TEXT),
    # RFC 4007 sets no length on a zone; ipaddress accepts any text but `%` and `/`.
    "huge IPv6 zone": (lambda: fill("a", "::1%"), ANY_TEXT | {"ip", "ipv6", "address"}),
    "IPv4 dots": (lambda: fill("1."), ANY_TEXT | TOKEN | {"uri_ref"}),
    "IPv6 groups": (lambda: fill("1:"), ANY_TEXT),
    "repeated UUIDs": (
        lambda: fill("123e4567-e89b-12d3-a456-426614174000"),
        ANY_TEXT | TOKEN | {"uri_ref"},
    ),
}


@pytest.fixture(scope="module")
def pb(load: Any) -> Any:
    return load("strings")


@pytest.mark.parametrize(("text", "accepted"), HOSTILE.values(), ids=HOSTILE)
def test_hostile_strings_get_their_verdict_in_bounded_work(
    pb: Any, text: Callable[[], str], accepted: frozenset[str]
) -> None:
    value = text()
    assert len(value.encode()) <= MESSAGE_LIMIT
    formats = pb.Formats(**dict.fromkeys(FORMATS, value))
    headers = pb.Headers(**dict.fromkeys(HEADERS, value))
    found = within(2_000, lambda: pairs(runtime().collect_violations(formats)))
    found += within(2_000, lambda: pairs(runtime().collect_violations(headers)))
    assert {path for path, _, _ in found} == set(FORMATS + HEADERS) - accepted


def test_length_pattern_and_affix_rules_on_a_hostile_string(pb: Any) -> None:
    value = fill("y", "foo", "midbar")
    lengths = pb.Lengths(**dict.fromkeys(pb.Lengths.DESCRIPTOR.fields_by_name, value))
    matching = pb.Matching(**dict.fromkeys(pb.Matching.DESCRIPTOR.fields_by_name, value))
    found = within(2_000, lambda: pairs(runtime().collect_violations(lengths)))
    found += within(2_000, lambda: pairs(runtime().collect_violations(matching)))
    assert sorted(found) == [
        ("const_s", "string.const", False),
        ("in_list", "string.in", False),
        ("len_bytes", "string.len_bytes", False),
        ("len_cp", "string.len", False),
        ("max_bytes", "string.max_bytes", False),
        ("max_len", "string.max_len", False),
        ("min_max", "string.max_len", False),
        ("multi", "string.prefix", False),
        ("pattern", "string.pattern", False),
        ("prefix_mb", "string.prefix", False),
        ("suffix_mb", "string.suffix", False),
    ]


LABEL = "a" * 63
DOMAIN_200 = f"{LABEL}.{LABEL}.{LABEL}.{'a' * 8}"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        # Issue 7: RecursionError in email.utils.parseaddr, answered as INTERNAL.
        pytest.param("(" * 500 + "<a@b.co>", False, id="unclosed comments"),
        pytest.param("(" * 400 + ")" * 400 + " <a@b.co>", True, id="nested comments"),
        pytest.param("(" * 495 + ")" * 495 + " <a@b.co>", False, id="999 characters"),
        pytest.param("(" * 400 + ")" * 399 + " <a@b.co>", False, id="one comment open"),
        pytest.param('"' + "\\\\" * 400 + '" <a@b.co>', True, id="quoted pairs"),
        pytest.param('"' + "\\" * 801 + '" <a@b.co>', False, id="escaped closing quote"),
        pytest.param("<" * 900 + "a@b.co>", False, id="many <"),
        pytest.param("Ada " * 200 + "<a@b.co>", True, id="long display name"),
        pytest.param("a@" + "." * 900, False, id="many dots"),
        pytest.param("@" * 900, False, id="many @"),
        # RFC 5321 counts octets: 254 is the longest address, whatever its characters.
        pytest.param("a@" + "a." * 126 + "a", False, id="255 octets, a 253-octet host"),
        pytest.param("é" * 32 + "@" + DOMAIN_200[:189], True, id="254 octets, 222 characters"),
        pytest.param("é" * 32 + "@" + DOMAIN_200, False, id="265 octets, 233 characters"),
        pytest.param(f"Ada <{'é' * 32}@{DOMAIN_200}>", False, id="265 octets in brackets"),
    ],
)
def test_email_on_crafted_strings(value: str, valid: bool) -> None:
    assert within(20_000, lambda: runtime().is_email(value)) is valid


def test_email_on_unclosed_comments_of_any_length() -> None:
    """The display-name scanner walks at most 998 characters; past that nothing reads on."""
    for size in (10, 1_000, 100_000, MESSAGE_LIMIT):
        value = "(" * size + "<a@b.co>"
        assert within(20_000, functools.partial(runtime().is_email, value)) is False


# The authority checks without urlsplit(), against urlsplit() itself on short inputs.
URI_PIECES = [
    *"ab1:/?#[]@%.v-+_~é",
    *["℀", "\uff1a", "\uff48", "%41", "%zz", "//", "http:", "[::1]", "[v1.x]", "[v1]", "[1.2.3.4]"],
    *[":80", ":65535", ":65536", ":00080", ":8a", "[fe80::1%25eth0]", "@", "user@"],
]


def urlsplit_uri_ref(value: str) -> bool:
    """The implementation is_uri_ref() replaced: urlsplit() and its port did the authority."""
    v = runtime()
    if v._URI_FORBIDDEN.search(value) or v._PERCENT.search(value):
        return False
    first_segment = re.split(r"[/?#]", value, maxsplit=1)[0]
    if ":" in first_segment and not v._URI_SCHEME.fullmatch(first_segment.partition(":")[0]):
        return False
    try:
        urlsplit(value).port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return True


@given(st.lists(st.sampled_from(URI_PIECES), max_size=8).map("".join))
def test_uri_ref_agrees_with_urlsplit(value: str) -> None:
    assert runtime().is_uri_ref(value) is urlsplit_uri_ref(value)


@pytest.mark.parametrize(
    "value",
    [
        "http://[::1]:80/",
        "http://[v1.x]/",
        "http://[1.2.3.4]/",
        "http://h:65536/",
        "http://h:00080/",
        "http://ex℀mple.com/",
        "http://user:pass@h:1/",
        "//[fe80::1%25eth0]:8/",
        "http://[::1/",
        "http://h]/",
    ],
)
def test_uri_ref_agrees_with_urlsplit_on_authorities(value: str) -> None:
    assert runtime().is_uri_ref(value) is urlsplit_uri_ref(value)


def test_nfkc_delimiter_table_matches_this_pythons_unicode() -> None:
    every_character = "".join(map(chr, range(0x80, sys.maxunicode + 1)))
    expected = {
        char
        for char in every_character
        if any(delimiter in unicodedata.normalize("NFKC", char) for delimiter in "/?#@:")
    }
    assert set(runtime()._NFKC_DELIMITERS.findall(every_character)) == expected
