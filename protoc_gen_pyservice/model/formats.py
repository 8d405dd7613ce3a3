"""Which strings certainly pass or certainly fail a format rule, without the runtime (whose
import would double the plugin's start-up time): a second source of truth on purpose, beside
runtime/validation.py's checks.

Each judge answers True only for strings of a plain shape the runtime's check accepts, False
only for strings with something it always rejects, and None otherwise, so example values are
chosen among the certain ones. tests/unit/test_examples.py holds every judge to the runtime.
Judges are keyed by the runtime function a check names (`is_email`, `is_uri`, ...).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable, Iterator

from protoc_gen_pyservice.model.plan import Literal

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PLAIN_EMAIL = re.compile(rf"[a-z0-9]+(?:\.[a-z0-9]+)*@{_LABEL}(?:\.{_LABEL})*")
_PLAIN_URI = re.compile(r"[a-z][a-z0-9+.-]*://[a-z0-9.-]+(?:/[A-Za-z0-9._~-]*)*")
_PLAIN_RELATIVE = re.compile(r"[A-Za-z0-9._~-][A-Za-z0-9/._~-]*")
_HOST_CHARACTERS = re.compile(r"[A-Za-z0-9.-]*")
_PLAIN_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PLAIN_HEADER_NAME = re.compile(r"[a-z0-9-]+")
_PRINTABLE = re.compile(r"[ -~]*")
# Characters no URI or URI reference may hold (RFC 3986): some of them.
_NOT_IN_URIS = re.compile(r"[ <>\"{}|\\^`\x00-\x1f]")
# Characters no header value holds, strict (RFC 7230) or not.
_NOT_IN_HEADERS = re.compile(r"[\x00\n\r]")

Judge = Callable[[Literal, Literal | None], bool | None]


def _certain(valid: bool, invalid: bool) -> bool | None:
    return True if valid else False if invalid else None


def _hostname(value: str) -> bool | None:
    valid = len(value) <= 253 and _PLAIN_HOSTNAME.fullmatch(value) is not None
    return _certain(valid, not value or _HOST_CHARACTERS.fullmatch(value) is None)


def _email(value: str) -> bool | None:
    local = value.partition("@")[0]
    valid = len(value) <= 254 and len(local) <= 64 and _PLAIN_EMAIL.fullmatch(value) is not None
    return _certain(valid, "@" not in value)


def _ip_version(value: str, version: int) -> bool | None:
    if version == 4 and len(value) <= 15 and "%" not in value:
        valid = _parses(ipaddress.IPv4Address, value)
    elif version == 6 and len(value) <= 45 and "%" not in value:
        valid = _parses(ipaddress.IPv6Address, value)
    else:
        valid = False
    invalid = (
        not value or re.fullmatch(r"[0-9.]*", value) is None if version == 4 else ":" not in value
    )
    return _certain(valid, invalid)


def _parses(kind: Callable[[str], object], value: str) -> bool:
    try:
        kind(value)
    except ValueError:
        return False
    return True


def _either(*answers: bool | None) -> bool | None:
    if any(answer is True for answer in answers):
        return True
    return False if all(answer is False for answer in answers) else None


def _ip(value: str) -> bool | None:
    return _either(_ip_version(value, 4), _ip_version(value, 6))


def _address(value: str) -> bool | None:
    return _either(_ip(value), _hostname(value))


def _uri(value: str) -> bool | None:
    valid = _PLAIN_URI.fullmatch(value) is not None
    return _certain(valid, _NOT_IN_URIS.search(value) is not None or ":" not in value)


def _uri_ref(value: str) -> bool | None:
    valid = _PLAIN_URI.fullmatch(value) is not None or (
        _PLAIN_RELATIVE.fullmatch(value) is not None and ":" not in value
    )
    return _certain(valid, _NOT_IN_URIS.search(value) is not None)


def _uuid(value: str) -> bool | None:
    return _certain(_PLAIN_UUID.fullmatch(value) is not None, len(value) != 36)


def _text(judge: Callable[[str], bool | None]) -> Judge:
    def on_text(value: Literal, arg: Literal | None) -> bool | None:
        assert isinstance(value, str)
        return judge(value)

    return on_text


def _header_name(value: Literal, strict: Literal | None) -> bool | None:
    assert isinstance(value, str)
    valid = _PLAIN_HEADER_NAME.fullmatch(value) is not None
    invalid = _NOT_IN_HEADERS.search(value) is not None or (strict is not False and " " in value)
    return _certain(valid, invalid or (strict is not False and not value))


def _header_value(value: Literal, strict: Literal | None) -> bool | None:
    assert isinstance(value, str)
    return _certain(
        _PRINTABLE.fullmatch(value) is not None, _NOT_IN_HEADERS.search(value) is not None
    )


def _ip_bytes(value: Literal, arg: Literal | None) -> bool | None:
    assert isinstance(value, bytes)
    return len(value) in (4, 16)


JUDGES: dict[str, Judge] = {
    "is_email": _text(_email),
    "is_unusual_email": _text(_email),
    "is_hostname": _text(_hostname),
    "is_ip": _text(_ip),
    "is_ipv4": _text(lambda value: _ip_version(value, 4)),
    "is_ipv6": _text(lambda value: _ip_version(value, 6)),
    "is_uri": _text(_uri),
    "is_uri_ref": _text(_uri_ref),
    "is_address": _text(_address),
    "is_uuid": _text(_uuid),
    "is_header_name": _header_name,
    "is_header_value": _header_value,
    "is_ip_bytes": _ip_bytes,
}

# Values of each format the examples start from, shortest useful first, and what breaks it.
SEEDS: dict[str, tuple[str, ...]] = {
    "is_email": ("user@example.com", "a@b.co"),
    "is_unusual_email": ("user@example.com", "a@b.co"),
    "is_hostname": ("example.com", "a"),
    "is_ip": ("192.0.2.1", "2001:db8::1"),
    "is_ipv4": ("192.0.2.1", "10.0.0.1"),
    "is_ipv6": ("2001:db8::1", "::1"),
    "is_uri": ("https://example.com/", "a://b"),
    "is_uri_ref": ("https://example.com/", "a"),
    "is_address": ("example.com", "192.0.2.1"),
    "is_uuid": ("123e4567-e89b-12d3-a456-426614174000",),
    "is_header_name": ("x-example", "a"),
    "is_header_value": ("value", ""),
    "is_ip_bytes": ("\xc0\x00\x02\x01",),
}
BREAKERS: dict[str, tuple[str, ...]] = {
    "is_email": ("not-an-email",),
    "is_unusual_email": ("not-an-email",),
    "is_hostname": ("not_a_host",),
    "is_ip": ("not_an_ip",),
    "is_ipv4": ("not_an_ip",),
    "is_ipv6": ("not_an_ip",),
    "is_uri": ("not a uri",),
    "is_uri_ref": ("not a uri",),
    "is_address": ("not_an_address",),
    "is_uuid": ("not-a-uuid",),
    "is_header_name": ("not a header", "not\na header"),
    "is_header_value": ("not\na header",),
    "is_ip_bytes": ("\x00",),
}

# What to vary in a value of each format to make more of them: the characters that may
# change (every other character stays), and whether to start from the value's end (the last
# part of an address or uuid) rather than its start (the first label of a name).
_HEX = "0123456789abcdef"
_NAME = "abcdefghijklmnopqrstuvwxyz0123456789"
_VARIED: dict[str, tuple[str, bool]] = {
    "is_uuid": (_HEX, True),
    "is_ipv4": ("0123456789", True),
    "is_ipv6": (_HEX, True),
    "is_ip": (_HEX, True),
    "is_ip_bytes": ("".join(map(chr, range(256))), True),
}
# At most this many variants of one value are tried: enough for hundreds of distinct items.
VARIANT_LIMIT = 4000


def variants(function: str | None, value: str) -> Iterator[str]:
    """Strings like `value` with one, then two of its characters changed to others of the
    alphabet the format `function` (None: no format) varies; the caller checks each."""
    alphabet, from_end = _VARIED.get(function or "", (_NAME, False))
    positions = [index for index, char in enumerate(value) if char in alphabet]
    if from_end:
        positions.reverse()
    found = itertools.chain.from_iterable(
        _changed(value, chosen, alphabet)
        for size in (1, 2)
        for chosen in itertools.combinations(positions, size)
    )
    return itertools.islice(found, VARIANT_LIMIT)


def _changed(value: str, positions: tuple[int, ...], alphabet: str) -> Iterator[str]:
    choices = [[char for char in alphabet if char != value[index]] for index in positions]
    for replacement in itertools.product(*choices):
        chars = list(value)
        for index, char in zip(positions, replacement, strict=True):
            chars[index] = char
        yield "".join(chars)
