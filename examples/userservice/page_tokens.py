"""ListUsers page tokens: opaque, signed, expiring and bound to the query and caller.

A token is urlsafe base64 (no padding) of `payload || tag`:

    payload = version (1 byte) || expiry (8 bytes, big-endian Unix seconds) || JSON body
    body    = [[cursor values...], last_id]   (values are strings or integers)
    tag     = HMAC-SHA256(secret, domain || binding || payload)
    binding = SHA-256 of JSON [query, principal]

The binding digest is only ever MAC input, never part of the token, so a token reveals neither
the filter nor the principal; its cursor holds values of the last row the caller was just sent.
Any token that does not open - garbage, tampered, signed with another key, or issued for
another query or principal - fails with the one message INVALID, so a client cannot learn
which check failed. Only a token that verifies can be EXPIRED.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import struct
import time
from collections.abc import Callable, Sequence

from examples.userservice.store.base import Cursor

INVALID = "page_token is not valid for this request"
EXPIRED = "page_token has expired"

MIN_SECRET_BYTES = 32
DEFAULT_TTL_SECONDS = 3600.0
# Checked before any decoding. 4096 characters carry 3072 bytes, about 3000 of them the cursor
# in UTF-8 JSON: room for the longest the proto allows (an email of 254 and two names of 100
# characters, at most 4 bytes each) with an id beside them.
MAX_TOKEN_LENGTH = 4096

_VERSION = 1
_HEADER = struct.Struct(">BQ")
_TAG_BYTES = hashlib.sha256().digest_size
# Separates these MACs from anything else the same secret might ever sign.
_DOMAIN = b"protoc-gen-pyservice userservice page token\x00"


class PageTokenError(ValueError):
    """A page_token that cannot be used; its message is INVALID or EXPIRED, safe to send."""


def generate_secret() -> bytes:
    return secrets.token_bytes(MIN_SECRET_BYTES)


class PageTokens:
    """Issues and opens page tokens with `secret`; `previous_secrets` still open the tokens
    they signed, so a key can be rotated without breaking the pages clients are reading."""

    def __init__(
        self,
        secret: bytes,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        *,
        previous_secrets: Sequence[bytes] = (),
    ) -> None:
        for key in (secret, *previous_secrets):
            if len(key) < MIN_SECRET_BYTES:
                raise ValueError(f"a page token secret has at least {MIN_SECRET_BYTES} bytes")
        if not (math.isfinite(ttl_seconds) and ttl_seconds > 0):
            raise ValueError(f"ttl_seconds must be positive and finite, not {ttl_seconds}")
        self._secret = secret
        self._verifying = (secret, *previous_secrets)
        self._ttl_seconds = ttl_seconds
        self._clock = clock

    def __repr__(self) -> str:
        return f"PageTokens(ttl_seconds={self._ttl_seconds}, secrets={len(self._verifying)})"

    def issue(self, cursor: Cursor, *, query: str, principal: str | None) -> str:
        """The token for the page after `cursor`. `query` is the canonical filter and order_by
        text (query.canonical); `principal` the caller, None when anonymous."""
        expiry = math.floor(self._clock() + self._ttl_seconds)
        # UTF-8, not JSON's \u escapes: at most 4 bytes a character instead of 12.
        body = json.dumps(
            [list(cursor.values), cursor.last_id], separators=(",", ":"), ensure_ascii=False
        )
        payload = _HEADER.pack(_VERSION, expiry) + body.encode("utf-8")
        tag = _tag(self._secret, _binding(query, principal), payload)
        token = base64.urlsafe_b64encode(payload + tag).rstrip(b"=").decode("ascii")
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(
                f"the cursor needs a {len(token)}-character page token, more than"
                f" {MAX_TOKEN_LENGTH}: bound the lengths of the values users are ordered by"
            )
        return token

    def open(self, token: str, *, query: str, principal: str | None) -> Cursor:
        """The cursor in `token`, or PageTokenError; `query` and `principal` must be the ones
        it was issued for."""
        payload = self._verified_payload(token, _binding(query, principal))
        version, expiry = _HEADER.unpack_from(payload)
        body = payload[_HEADER.size :]
        if version != _VERSION:
            raise PageTokenError(INVALID)
        if self._clock() >= expiry:
            raise PageTokenError(EXPIRED)
        return _cursor(body)

    def _verified_payload(self, token: str, binding: bytes) -> bytes:
        if len(token) > MAX_TOKEN_LENGTH:
            raise PageTokenError(INVALID)
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:  # binascii.Error, or a character that is not ASCII
            raise PageTokenError(INVALID) from None
        # The decoder skips foreign characters and ignores spare bits: only the one canonical
        # spelling of the bytes is a token, so no altered token ever opens.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
            raise PageTokenError(INVALID)
        payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if len(payload) < _HEADER.size:
            raise PageTokenError(INVALID)
        matches = [hmac.compare_digest(tag, _tag(key, binding, payload)) for key in self._verifying]
        if not any(matches):
            raise PageTokenError(INVALID)
        return payload


def _binding(query: str, principal: str | None) -> bytes:
    return hashlib.sha256(json.dumps([query, principal]).encode("ascii")).digest()


def _tag(key: bytes, binding: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _DOMAIN + binding + payload, hashlib.sha256).digest()


def _cursor(body: bytes) -> Cursor:
    """Parse a body that verified: checked all the same, so only a well-formed cursor leaves."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        raise PageTokenError(INVALID) from None
    match decoded:
        case [list(values), str(last_id)] if all(type(value) in (str, int) for value in values):
            return Cursor(tuple(values), last_id)
    raise PageTokenError(INVALID)
