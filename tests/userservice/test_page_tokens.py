"""Page tokens open to exactly the cursor they were issued with, for the same query and caller
and before they expire; anything else is a PageTokenError with a fixed message."""

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.userservice import page_tokens
from examples.userservice.page_tokens import (
    EXPIRED,
    INVALID,
    MAX_TOKEN_LENGTH,
    PageTokenError,
    PageTokens,
    generate_secret,
)
from examples.userservice.store.base import Cursor

SECRET = b"k" * 32
QUERY = "role=USER_ROLE_ADMIN\ncreated_at desc, email"
PRINCIPAL = "alice-7c1f@example.com"
CURSOR = Cursor(values=(1_700_000_000_000_000, "Zoë O'Brien", 2, -5), last_id="user-42")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tokens(secret: bytes = SECRET, **options) -> PageTokens:
    return PageTokens(secret, clock=Clock(1_000.5), **options)


def issue(cursor: Cursor = CURSOR) -> str:
    return tokens().issue(cursor, query=QUERY, principal=PRINCIPAL)


def assert_invalid(token: str, query: str = QUERY, principal: str | None = PRINCIPAL) -> None:
    with pytest.raises(PageTokenError) as refused:
        tokens().open(token, query=query, principal=principal)
    assert str(refused.value) == INVALID


@pytest.mark.parametrize(
    "cursor",
    [
        CURSOR,
        Cursor(values=(), last_id="u"),
        Cursor(values=("",), last_id=""),
        Cursor(values=(2**63, -(2**63), 0), last_id="x"),
        Cursor(values=('李\u2028\x00"\\', "\U0001f600"), last_id="ü"),
    ],
)
def test_a_token_opens_to_its_cursor(cursor):
    token = issue(cursor)
    assert token.isascii()
    assert set(token) <= set(ALPHABET)
    assert tokens().open(token, query=QUERY, principal=PRINCIPAL) == cursor


def test_anonymous_callers_get_tokens_too():
    token = tokens().issue(CURSOR, query=QUERY, principal=None)
    assert tokens().open(token, query=QUERY, principal=None) == CURSOR


def test_every_changed_character_is_refused():
    token = issue()
    for position, original in enumerate(token):
        for replacement in ALPHABET.replace(original, ""):
            assert_invalid(token[:position] + replacement + token[position + 1 :])


def test_every_flipped_bit_is_refused():
    raw = base64.urlsafe_b64decode(issue() + "==")
    for position in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[position] ^= 1 << bit
            assert_invalid(base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode())


def test_truncated_and_extended_tokens_are_refused():
    token = issue()
    for length in range(len(token)):
        assert_invalid(token[:length])
    for suffix in ("A", "AA", "AAA", "AAAA", "=", "==", " ", "\n", "\x00", "é"):
        assert_invalid(token + suffix)
    for prefix in ("A", " ", "\ufeff"):
        assert_invalid(prefix + token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "=",
        "A",
        "AAAA",
        "A" * 200,
        "not a token",
        "%%%%",
        "null",
        "e30",  # "{}"
        "W10",  # "[]"
        "\x00" * 64,
        "é" * 64,
        "٣" * 64,  # digits, but not ASCII ones
        "\ud800" * 64,
        "A" * (MAX_TOKEN_LENGTH + 1),
        "A" * 10_000_000,
    ],
)
def test_garbage_is_refused(token):
    assert_invalid(token)


def test_standard_alphabet_and_padding_spellings_are_refused():
    token = issue()
    standard = token.replace("-", "+").replace("_", "/")
    assert standard != token
    assert_invalid(standard)
    assert_invalid(token + "=" * (-len(token) % 4 or 4))


@pytest.mark.parametrize(
    ("query", "principal"),
    [
        (QUERY + " ", PRINCIPAL),
        ("\n", PRINCIPAL),
        ("role=USER_ROLE_USER\ncreated_at desc, email", PRINCIPAL),
        (QUERY, "mallory@example.com"),
        (QUERY, PRINCIPAL.upper()),
        (QUERY, None),
        (QUERY, ""),
        ('["' + QUERY, PRINCIPAL),
    ],
)
def test_another_query_or_caller_is_refused_like_tampering(query, principal):
    assert_invalid(issue(), query, principal)


def test_a_token_for_nobody_does_not_open_for_the_empty_principal():
    token = tokens().issue(CURSOR, query=QUERY, principal=None)
    assert_invalid(token, QUERY, "")


def test_tokens_expire_after_their_ttl():
    clock = Clock(1_000.5)
    issuer = PageTokens(SECRET, ttl_seconds=60, clock=clock)
    token = issuer.issue(CURSOR, query=QUERY, principal=PRINCIPAL)
    clock.now = 1_059.999  # expiry is whole seconds, rounded down: 1060
    assert issuer.open(token, query=QUERY, principal=PRINCIPAL) == CURSOR
    clock.now = 1_060.0
    with pytest.raises(PageTokenError) as refused:
        issuer.open(token, query=QUERY, principal=PRINCIPAL)
    assert str(refused.value) == EXPIRED
    # Only a token that verifies can say it expired.
    with pytest.raises(PageTokenError) as refused:
        issuer.open(token, query=QUERY, principal="mallory")
    assert str(refused.value) == INVALID


def test_rotated_secrets_still_open_their_tokens():
    old, new = generate_secret(), generate_secret()
    old_token = tokens(old).issue(CURSOR, query=QUERY, principal=PRINCIPAL)
    rotated = tokens(new, previous_secrets=[old])
    assert rotated.open(old_token, query=QUERY, principal=PRINCIPAL) == CURSOR
    new_token = rotated.issue(CURSOR, query=QUERY, principal=PRINCIPAL)
    assert tokens(new).open(new_token, query=QUERY, principal=PRINCIPAL) == CURSOR
    with pytest.raises(PageTokenError, match=INVALID):
        tokens(old).open(new_token, query=QUERY, principal=PRINCIPAL)
    with pytest.raises(PageTokenError, match=INVALID):
        tokens(new).open(old_token, query=QUERY, principal=PRINCIPAL)


def test_a_token_reveals_neither_the_query_nor_the_principal():
    secrets_ = ("alice-7c1f", "example.com", "USER_ROLE_ADMIN", "created_at", "role")
    token = issue()
    raw = base64.urlsafe_b64decode(token + "==")
    for text in (token, raw.decode("latin-1"), raw.decode("utf-8", errors="ignore")):
        for secret in secrets_:
            assert secret not in text
            assert secret.lower() not in text.lower()


def test_secrets_and_ttl_are_checked_when_built():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        PageTokens(b"k" * 31)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        PageTokens(SECRET, previous_secrets=[b"short"])
    for ttl in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="ttl_seconds"):
            PageTokens(SECRET, ttl_seconds=ttl)


def test_generated_secrets_are_long_and_fresh():
    assert len(generate_secret()) == 32
    assert generate_secret() != generate_secret()


def test_repr_shows_no_secret():
    text = repr(tokens(previous_secrets=[b"p" * 32]))
    assert text == "PageTokens(ttl_seconds=3600.0, secrets=2)"


def test_a_cursor_too_large_for_a_token_is_refused_when_issued():
    with pytest.raises(ValueError, match="bound the lengths"):
        issue(Cursor(values=("x" * MAX_TOKEN_LENGTH,), last_id="u"))


def signed(body: bytes, version: int = 1) -> str:
    """A token whose MAC verifies around any body, as only a holder of the secret can make."""
    payload = page_tokens._HEADER.pack(version, 2_000) + body
    binding = page_tokens._binding(QUERY, PRINCIPAL)
    tag = page_tokens._tag(SECRET, binding, payload)
    return base64.urlsafe_b64encode(payload + tag).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("body", "version"),
    [
        (json.dumps([[1], "u"]).encode(), 2),
        (b"", 1),
        (b"[", 1),
        (b"\xff\xfe", 1),
        (b"{}", 1),
        (b'[[1], "u", 3]', 1),
        (b'[[true], "u"]', 1),
        (b'[[1.5], "u"]', 1),
        (b'[[null], "u"]', 1),
        (b'[[[1]], "u"]', 1),
        (b"[[1], 7]", 1),
        (b'[{"a": 1}, "u"]', 1),
        (b'["1", "u"]', 1),
        (b"[" * 1400 + b"]" * 1400, 1),
    ],
)
def test_signed_but_malformed_bodies_are_refused(body, version):
    assert_invalid(signed(body, version))


def test_signed_makes_tokens_that_open():
    token = signed(b'[[1, "a"], "u"]')
    assert tokens().open(token, query=QUERY, principal=PRINCIPAL) == Cursor((1, "a"), "u")


@settings(max_examples=300, deadline=None)
@given(token=st.one_of(st.text(max_size=300), st.text(ALPHABET, max_size=300)))
def test_arbitrary_text_is_refused_with_page_token_error(token):
    with pytest.raises(PageTokenError) as refused:
        tokens().open(token, query=QUERY, principal=PRINCIPAL)
    assert str(refused.value) == INVALID
