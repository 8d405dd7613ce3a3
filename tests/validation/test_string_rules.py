"""StringRules, rule by rule: lengths in code points and UTF-8 bytes, patterns (RE2, search
semantics), affixes, sets and the well-known formats."""

from typing import Any

import pytest

from .conftest import build, check, expect

# Lengths counted by len (3 code points) and by the UTF-8 bytes (4): "é" is 1 code point and
# 2 bytes, "😀" 1 code point and 4 bytes, "e\u0301" (e + combining acute) 2 code points.
LENGTHS_OK = {
    "len_cp": "abc",
    "min_len": "ab",
    "max_len": "",
    "len_bytes": "abcd",
    "min_bytes": "ab",
    "max_bytes": "",
    "min_max": "abc",
}
MATCHING_OK = {
    "const_s": "héllo",
    "pattern": "1",
    "anchored": "a",
    "prefix": "foo",
    "suffix": "bar",
    "contains": "mid",
    "not_contains": "",
    "in_list": "red",
    "not_in_list": "",
    "prefix_mb": "é",
    "suffix_mb": "😀",
    "multi": "xyyyy",
}
FORMATS_OK = {
    "email": "a@example.com",
    "hostname": "example.com",
    "ip": "127.0.0.1",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com",
    "uri_ref": "/",
    "address": "example.com",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
}
HEADERS_OK = {"name": "x", "value": "", "name_loose": "x", "value_loose": "", "name_strict": "x"}


@pytest.fixture(scope="module")
def pb(load: Any) -> Any:
    return load("strings")


def test_valid_baselines(pb: Any) -> None:
    assert check(pb.Lengths(**LENGTHS_OK)) == []
    assert check(pb.Matching(**MATCHING_OK)) == []
    assert check(pb.Formats(**FORMATS_OK)) == []
    assert check(pb.Headers(**HEADERS_OK)) == []
    assert check(pb.Empties()) == []


def test_default_message_reports_every_field_whose_zero_value_breaks_a_rule(pb: Any) -> None:
    assert check(pb.Lengths()) == [
        ("len_bytes", "string.len_bytes", False),
        ("len_cp", "string.len", False),
        ("min_bytes", "string.min_bytes", False),
        ("min_len", "string.min_len", False),
        ("min_max", "string.min_len", False),
    ]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("len_cp", "abc", None),
        ("len_cp", "", "string.len"),
        ("len_cp", "ab", "string.len"),
        ("len_cp", "abcd", "string.len"),
        ("len_cp", "héé", None),
        ("len_cp", "😀😀😀", None),
        ("len_cp", "😀😀", "string.len"),
        ("len_cp", "e\u0301e", None),
        ("len_cp", "e\u0301", "string.len"),
        ("min_len", "", "string.min_len"),
        ("min_len", "a", "string.min_len"),
        ("min_len", "ab", None),
        ("min_len", "é", "string.min_len"),
        ("min_len", "😀", "string.min_len"),
        ("min_len", "é😀", None),
        ("max_len", "abc", None),
        ("max_len", "abcd", "string.max_len"),
        ("max_len", "😀😀😀", None),
        ("max_len", "😀😀😀😀", "string.max_len"),
        ("max_len", "ééé", None),
        ("len_bytes", "abcd", None),
        ("len_bytes", "", "string.len_bytes"),
        ("len_bytes", "abc", "string.len_bytes"),
        ("len_bytes", "abcde", "string.len_bytes"),
        ("len_bytes", "😀", None),
        ("len_bytes", "éé", None),
        ("len_bytes", "é", "string.len_bytes"),
        ("len_bytes", "abcé", "string.len_bytes"),
        ("min_bytes", "é", None),
        ("min_bytes", "a", "string.min_bytes"),
        ("min_bytes", "", "string.min_bytes"),
        ("max_bytes", "😀", None),
        ("max_bytes", "abcd", None),
        ("max_bytes", "😀a", "string.max_bytes"),
        ("max_bytes", "ééa", "string.max_bytes"),
        ("min_max", "a", "string.min_len"),
        ("min_max", "ab", None),
        ("min_max", "abcd", None),
        ("min_max", "abcde", "string.max_len"),
    ],
)
def test_lengths(pb: Any, field: str, value: str, rule: str | None) -> None:
    assert check(build(pb.Lengths, LENGTHS_OK, **{field: value})) == expect(field, rule)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("const_s", "héllo", None),
        ("const_s", "hello", "string.const"),
        ("const_s", "", "string.const"),
        ("const_s", "héllo ", "string.const"),
        ("const_s", "HÉLLO", "string.const"),
        ("pattern", "abc123def", None),
        ("pattern", "7", None),
        ("pattern", "abc", "string.pattern"),
        ("pattern", "", "string.pattern"),
        ("anchored", "abc", None),
        ("anchored", "abc1", "string.pattern"),
        ("anchored", "Abc", "string.pattern"),
        ("anchored", "", "string.pattern"),
        ("prefix", "foobar", None),
        ("prefix", "foo", None),
        ("prefix", "fo", "string.prefix"),
        ("prefix", "xfoo", "string.prefix"),
        ("prefix", "FOO", "string.prefix"),
        ("prefix", "", "string.prefix"),
        ("suffix", "foobar", None),
        ("suffix", "bar", None),
        ("suffix", "barx", "string.suffix"),
        ("suffix", "", "string.suffix"),
        ("contains", "amidst", None),
        ("contains", "mid", None),
        ("contains", "mi d", "string.contains"),
        ("contains", "", "string.contains"),
        ("not_contains", "good", None),
        ("not_contains", "BAD", None),
        ("not_contains", "notbad", "string.not_contains"),
        ("not_contains", "bad", "string.not_contains"),
        ("in_list", "red", None),
        ("in_list", "green", None),
        ("in_list", "é", None),
        ("in_list", "e\u0301", "string.in"),
        ("in_list", "Red", "string.in"),
        ("in_list", "blue", "string.in"),
        ("in_list", "", "string.in"),
        ("not_in_list", "admin", "string.not_in"),
        ("not_in_list", "root", "string.not_in"),
        ("not_in_list", "Admin", None),
        ("not_in_list", "administrator", None),
        ("prefix_mb", "éa", None),
        ("prefix_mb", "e", "string.prefix"),
        ("prefix_mb", "e\u0301", "string.prefix"),
        ("suffix_mb", "a😀", None),
        ("suffix_mb", "😀a", "string.suffix"),
        ("multi", "xyabc", None),
        ("multi", "xaaaa", "string.contains"),
        ("multi", "yxxxx", "string.prefix"),
        ("multi", "xy", "string.min_len"),
    ],
)
def test_matching(pb: Any, field: str, value: str, rule: str | None) -> None:
    assert check(build(pb.Matching, MATCHING_OK, **{field: value})) == expect(field, rule)


def test_every_broken_rule_of_one_field_is_reported(pb: Any) -> None:
    assert check(build(pb.Matching, MATCHING_OK, multi="a")) == [
        ("multi", "string.contains", False),
        ("multi", "string.min_len", False),
        ("multi", "string.prefix", False),
    ]


LOCAL_64 = "l" * 64
# 64 + 1 + 189 = 254 characters, the longest address; every domain label at most 63.
DOMAIN_189 = "a" * 63 + "." + "b" * 63 + "." + "c" * 61
DOMAIN_190 = "a" * 63 + "." + "b" * 63 + "." + "c" * 62


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("a@example.com", True),
        ("first.last+tag@sub.example.org", True),
        ("A@EXAMPLE.COM", True),
        ("user_name-1@example-domain.com", True),
        (LOCAL_64 + "@example.com", True),
        (LOCAL_64 + "l@example.com", False),
        (LOCAL_64 + "@" + DOMAIN_189, True),
        (LOCAL_64 + "@" + DOMAIN_190, False),
        ("", False),
        ("plainaddress", False),
        ("@example.com", False),
        ("a@", False),
        ("a@b@example.com", False),
        ("a b@example.com", False),
        ("a@-example.com", False),
        ("a@example-.com", False),
        ("a@exa_mple.com", False),
        ("a@example..com", False),
        ("a@exämple.com", False),
        ("a@" + "d" * 64 + ".com", False),
        # A mailbox with a display name (RFC 5322 name-addr) is reduced to its address.
        ("Ada Lovelace <ada@example.com>", True),
        ('"Lovelace, Ada" <ada@example.com>', True),
        ("John Q. Public <jqp@example.com>", True),
        ("<ada@example.com>", True),
        ("(work) Ada <ada@example.com> (home)", True),
        ("Ada (a (nested) comment) <ada@example.com>", True),
        ("Adé <ada@example.com>", True),
        ("Ada <ada@example>", True),
        ("Ada <ada@-example.com>", False),
        ("Ada <>", False),
        ("Ada <ada@example.com", False),
        ("Ada <ada@example.com> trailing", False),
        ("Ada <ada@example.com>, Bob <bob@example.com>", False),
        ("Ada <ada@example.com><bob@example.com>", False),
        ("Ada <a (c)@example.com>", False),
        ("Ada (open <ada@example.com>", False),
        ('"Ada <ada@example.com>', False),
        ("Ada@home <ada@example.com>", False),
        ("Ada\r\n <ada@example.com>", False),
        ("Ada <ada@example.com>\n", False),
    ],
)
def test_email(pb: Any, value: str, valid: bool) -> None:
    rule = None if valid else "string.email"
    assert check(build(pb.Formats, FORMATS_OK, email=value)) == expect("email", rule)


LABEL_63 = "x" * 63
HOST_253 = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61
HOST_254 = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 62


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("example.com", True),
        ("a", True),
        ("localhost", True),
        ("EXAMPLE.com", True),
        ("a-b.c-d.example", True),
        ("123.example.com", True),
        ("xn--bcher-kva.example", True),
        ("example.com.", True),
        (LABEL_63 + ".com", True),
        ("x" + LABEL_63 + ".com", False),
        (HOST_253, True),
        (HOST_254, False),
        ("", False),
        ("-example.com", False),
        ("example-.com", False),
        ("ex_ample.com", False),
        ("example..com", False),
        (".example.com", False),
        ("example.com..", False),
        ("exämple.com", False),
        ("exa mple.com", False),
        ("example.com/path", False),
        ("example.com:80", False),
    ],
)
def test_hostname(pb: Any, value: str, valid: bool) -> None:
    rule = None if valid else "string.hostname"
    assert check(build(pb.Formats, FORMATS_OK, hostname=value)) == expect("hostname", rule)


IPV4_OK = ["127.0.0.1", "0.0.0.0", "255.255.255.255", "192.168.1.254"]
IPV6_OK = ["::1", "::", "2001:db8::8a2e:370:7334", "1:2:3:4:5:6:7:8", "fe80::1", "::ffff:192.0.2.1"]
IP_BAD = ["", "256.0.0.1", "1.2.3", "1.2.3.4.5", "[::1]", "::g", "example.com", " 1.2.3.4"]
IPV6_BAD = ["1:2:3:4:5:6:7:8:9", "2001:db8:::1", "12345::", "[2001:db8::1]"]


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        *[("ip", v, True) for v in IPV4_OK + IPV6_OK],
        *[("ip", v, False) for v in IP_BAD + IPV6_BAD],
        *[("ipv4", v, True) for v in IPV4_OK],
        *[("ipv4", v, False) for v in [*IP_BAD, "::1", "::ffff:192.0.2.1", "1.2.3.4/24"]],
        *[("ipv6", v, True) for v in IPV6_OK],
        *[("ipv6", v, False) for v in [*IP_BAD, *IPV6_BAD, "127.0.0.1"]],
    ],
)
def test_ip(pb: Any, field: str, value: str, valid: bool) -> None:
    rule = None if valid else f"string.{field}"
    assert check(build(pb.Formats, FORMATS_OK, **{field: value})) == expect(field, rule)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("https://example.com", True),
        ("https://user@example.com:8080/p/a/t/h?query=1#frag", True),
        ("mailto:user@example.com", True),
        ("urn:isbn:0451450523", True),
        ("http://[::1]:80/", True),
        ("file:///etc/hosts", True),
        ("", False),
        ("/relative/path", False),
        ("relative", False),
        ("example.com", False),
        ("//example.com/path", False),
        ("1http://example.com", False),
        ("http://exa mple.com", False),
        ("https://example.com/%zz", False),
    ],
)
def test_uri(pb: Any, value: str, valid: bool) -> None:
    rule = None if valid else "string.uri"
    assert check(build(pb.Formats, FORMATS_OK, uri=value)) == expect("uri", rule)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("https://example.com/a?b=c#d", True),
        ("/relative/path", True),
        ("../up?x=1#f", True),
        ("relative", True),
        ("//example.com/path", True),
        ("?q=1", True),
        ("#frag", True),
        ("/a%zz", False),
        ("http://exa mple.com", False),
        ("1http://example.com", False),
    ],
)
def test_uri_ref(pb: Any, value: str, valid: bool) -> None:
    rule = None if valid else "string.uri_ref"
    assert check(build(pb.Formats, FORMATS_OK, uri_ref=value)) == expect("uri_ref", rule)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("example.com", True),
        ("localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("2001:db8::1", True),
        (HOST_253, True),
        ("", False),
        ("[::1]", False),
        ("-bad.example.com", False),
        ("exa mple.com", False),
        (HOST_254, False),
        ("2001:db8:::1", False),
    ],
)
def test_address(pb: Any, value: str, valid: bool) -> None:
    rule = None if valid else "string.address"
    assert check(build(pb.Formats, FORMATS_OK, address=value)) == expect("address", rule)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("123e4567-e89b-12d3-a456-426614174000", True),
        ("123E4567-E89B-12D3-A456-426614174000", True),
        ("00000000-0000-0000-0000-000000000000", True),
        ("ffffffff-ffff-ffff-ffff-ffffffffffff", True),
        ("", False),
        ("123e4567e89b12d3a456426614174000", False),
        ("{123e4567-e89b-12d3-a456-426614174000}", False),
        ("urn:uuid:123e4567-e89b-12d3-a456-426614174000", False),
        ("123e4567-e89b-12d3-a456-42661417400", False),
        ("123e4567-e89b-12d3-a456-4266141740000", False),
        ("g23e4567-e89b-12d3-a456-426614174000", False),
        ("123e4567-e89b-12d3-a4564-26614174000", False),
    ],
)
def test_uuid(pb: Any, value: str, valid: bool) -> None:
    rule = None if valid else "string.uuid"
    assert check(build(pb.Formats, FORMATS_OK, uuid=value)) == expect("uuid", rule)


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("name", "Content-Type", True),
        ("name", "x-custom_header!#$%&'*+.^`|~", True),
        ("name", "", False),
        ("name", "Content Type", False),
        ("name", "Content:Type", False),
        ("name", "Content-Type\r\n", False),
        ("name", "é", False),
        ("name_strict", "Content-Type", True),
        ("name_strict", "Content Type", False),
        ("value", "", True),
        ("value", "text/html; charset=utf-8", True),
        ("value", "a\tb", True),
        ("value", "a\x01b", False),
        ("value", "a\nb", False),
        ("value", "a\rb", False),
        ("value", "a\x00b", False),
        ("value", "a\x7fb", False),
        ("name_loose", "Content Type", True),
        ("name_loose", "a\x01:b", True),
        ("name_loose", "a\nb", False),
        ("name_loose", "a\rb", False),
        ("name_loose", "a\x00b", False),
        ("value_loose", "", True),
        ("value_loose", "a\x01\x7fb", True),
        ("value_loose", "a\nb", False),
        ("value_loose", "a\rb", False),
        ("value_loose", "a\x00b", False),
    ],
)
def test_http_headers(pb: Any, field: str, value: str, valid: bool) -> None:
    rule = None if valid else "string.well_known_regex"
    assert check(build(pb.Headers, HEADERS_OK, **{field: value})) == expect(field, rule)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("maybe", "", None),
        ("maybe", "ab", "string.min_len"),
        ("maybe", "abc", None),
        ("maybe_uuid", "", None),
        ("maybe_uuid", "not-a-uuid", "string.uuid"),
        ("maybe_in", "", None),
        ("maybe_in", "a", None),
        ("maybe_in", "c", "string.in"),
    ],
)
def test_ignore_empty(pb: Any, field: str, value: str, rule: str | None) -> None:
    assert check(pb.Empties(**{field: value})) == expect(field, rule)


@pytest.mark.parametrize(("value", "rule"), [("", "string.min_len"), ("a", "string.min_len")])
def test_optional_set_is_checked_even_when_empty(pb: Any, value: str, rule: str) -> None:
    assert check(pb.Empties(nick=value)) == expect("nick", rule)


def test_optional_unset_is_not_checked(pb: Any) -> None:
    message = pb.Empties()
    assert not message.HasField("nick")
    assert check(message) == []
