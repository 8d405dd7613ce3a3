"""URIs and URI references exactly as RFC 3986's grammar defines them: protovalidate's
`isUri()` and `isUriRef()`.

Unlike protoc-gen-validate's looser checks (runtime/validation.py), nothing outside the
grammar passes: no spaces, no characters beyond ASCII (an IRI is not a URI), every `%`
followed by two hex digits. Each part is matched by a regular expression of character classes
with possessive repeats, so the time is linear in the length whatever the input.
"""

from __future__ import annotations

import ipaddress
import re

_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*+")
_QUERY = re.compile(rf"(?:{_PCHAR}|[/?])*+")
_USERINFO = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*+")
_REG_NAME = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*+")
_SEGMENTS = re.compile(rf"(?:/{_PCHAR}*+)*+")  # path-abempty
_SEGMENT_NZ = re.compile(rf"{_PCHAR}++")
_SEGMENT_NZ_NC = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}@]|{_PCT})++")  # no colon
_PORT = re.compile(r"[0-9]*+")
_IP_FUTURE = re.compile(rf"v[0-9A-Fa-f]++\.[{_UNRESERVED}{_SUB_DELIMS}:]++")
_ZONE = re.compile(rf"(?:[{_UNRESERVED}]|{_PCT})++")


def is_uri(text: str) -> bool:
    """An absolute URI: `scheme ":" hier-part ["?" query] ["#" fragment]`."""
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME.fullmatch(scheme) is None:
        return False
    return _hierarchy(rest, rootless=True)


def is_uri_ref(text: str) -> bool:
    """A URI or a relative reference (`relative-part ["?" query] ["#" fragment]`)."""
    if not text.isascii():
        return False
    scheme, colon, rest = text.partition(":")
    if colon and _SCHEME.fullmatch(scheme) is not None:
        return _hierarchy(rest, rootless=True)
    return _hierarchy(text, rootless=False)


def _hierarchy(text: str, *, rootless: bool) -> bool:
    """hier-part (rootless: a URI's) or relative-part, then the query and the fragment."""
    if not text.isascii():
        return False
    text, hash_mark, fragment = text.partition("#")
    if hash_mark and _QUERY.fullmatch(fragment) is None:
        return False
    text, question, query = text.partition("?")
    if question and _QUERY.fullmatch(query) is None:
        return False
    if text.startswith("//"):
        end = text.find("/", 2)
        authority, path = (text[2:], "") if end < 0 else (text[2:end], text[end:])
        return _authority(authority) and _SEGMENTS.fullmatch(path) is not None
    if text.startswith("/"):
        # path-absolute: as path-abempty, the first segment only empty for "/" alone, which
        # the "//" authority branch above already guarantees.
        return _SEGMENTS.fullmatch(text) is not None
    if not text:
        return True  # path-empty
    first, slash, rest = text.partition("/")
    first_ok = (_SEGMENT_NZ if rootless else _SEGMENT_NZ_NC).fullmatch(first) is not None
    return first_ok and _SEGMENTS.fullmatch(slash + rest) is not None


def _authority(authority: str) -> bool:
    userinfo, at, hostport = authority.rpartition("@")
    if at and _USERINFO.fullmatch(userinfo) is None:
        return False
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return False
        literal, port = hostport[1:end], hostport[end + 1 :]
        if not _ip_literal(literal):
            return False
    else:
        host, colon, port = hostport.partition(":")
        port = colon + port
        if not (_is_ipv4(host) or _REG_NAME.fullmatch(host) is not None):
            return False
        if ":" in port[1:]:
            return False
    return not port or (port.startswith(":") and _PORT.fullmatch(port[1:]) is not None)


def _ip_literal(literal: str) -> bool:
    if literal[:1] in ("v", "V"):
        return _IP_FUTURE.fullmatch(literal) is not None
    address, percent, zone = literal.partition("%25")  # RFC 6874 zone identifier
    if percent and _ZONE.fullmatch(zone) is None:
        return False
    if "%" in address:  # a zone must be written `%25` in a URI; ipaddress takes a bare `%`
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _is_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(
        part.isdigit() and (part == "0" or not part.startswith("0")) and int(part) <= 255
        for part in parts
    )
