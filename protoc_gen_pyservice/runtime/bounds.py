"""Bounds on everything a peer controls that the server echoes: status messages, status
details, request ids and log fields. One place, so every path applies the same limits.

The limits keep a whole error reply (grpc-message, grpc-status-details-bin, request id and the
handler's own trailers) well inside 8 KiB, the smallest default metadata limit among gRPC's
implementations (grpc-java); C-core clients refuse more than 16 KiB outright.
"""

from __future__ import annotations

import json
import re

from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

# grpc-message is percent-encoded on the wire: a non-ASCII byte takes three.
MAX_MESSAGE_BYTES = 512
# grpc-status-details-bin is base64 on the wire: four bytes for every three.
MAX_DETAILS_BYTES = 4096
# Violations listed one by one in an INVALID_ARGUMENT's BadRequest; the rest are counted.
MAX_LISTED_VIOLATIONS = 50
CUT_MARK = " [cut]"

_SAFE_REQUEST_ID = re.compile(r"[0-9A-Za-z._:+/-]{1,128}").fullmatch


def cut_message(message: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """`message` if it fits in `limit` UTF-8 bytes, else its longest prefix that does (cut on
    a character boundary) followed by CUT_MARK. Lone surrogates, which UTF-8 cannot carry,
    come out as backslash escapes."""
    data = message.encode("utf-8", "backslashreplace")
    if len(data) <= limit:
        return data.decode("utf-8")
    room = limit - len(CUT_MARK)
    # Dropping continuation bytes (0b10xxxxxx) backs up to the start of a character.
    while room > 0 and data[room] & 0xC0 == 0x80:
        room -= 1
    return data[:room].decode("utf-8") + CUT_MARK


def fit_status(status: status_pb2.Status, limit: int = MAX_DETAILS_BYTES) -> bytes:
    """The serialized status, keeping as many of its details (in order) as fit in `limit`
    bytes; a BadRequest that does not fit is shortened to the violations that do, with a
    last entry counting the ones left out."""
    data: bytes = status.SerializeToString()
    if len(data) <= limit:
        return data
    kept = status_pb2.Status(code=status.code, message=status.message)
    budget = limit - kept.ByteSize()
    for packed in status.details:
        size = packed.ByteSize() + 4  # tag and length of the repeated field
        if size > budget and packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            packed = _shortened_bad_request(packed, budget - 4)
            size = packed.ByteSize() + 4
        if size > budget:
            continue
        kept.details.append(packed)
        budget -= size
    shortened: bytes = kept.SerializeToString()
    return shortened


def _shortened_bad_request(packed: any_pb2.Any, budget: int) -> any_pb2.Any:
    request = error_details_pb2.BadRequest()
    packed.Unpack(request)
    violations = list(request.field_violations)
    shortened = error_details_pb2.BadRequest()
    result = any_pb2.Any()
    # Room for the Any's type URL and the closing "N more" entry.
    room = budget - len(packed.type_url) - 64
    for index, violation in enumerate(violations):
        if shortened.ByteSize() + violation.ByteSize() + 4 > room:
            omitted = len(violations) - index
            shortened.field_violations.add(description=f"and {omitted} more violations")
            break
        shortened.field_violations.append(violation)
    result.Pack(shortened)
    return result


def request_id_or_none(value: object) -> str | None:
    """A client's `x-request-id` when it is short printable ASCII of a safe alphabet (so it can
    go into logs and trailers as it is), else None (the server makes its own)."""
    if isinstance(value, str) and _SAFE_REQUEST_ID(value):
        return value
    return None


def log_text(value: str) -> str:
    """`value` as a log field that cannot forge a line: control characters, non-ASCII and
    quotes escaped as JSON escapes them."""
    if value.isascii() and value.isprintable():
        return value
    return json.dumps(value)[1:-1]
