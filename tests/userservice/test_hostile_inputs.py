"""Hostile input to the real UserService, through the whole gRPC stack in process (issue 10):
forged and replayed page tokens, SQL injection in `filter` and `order_by`, update masks that
must not apply, undecodable and mutated request bytes, oversized fields.

Whatever the client sends, the answer is a deliberate status (OK or the error the input
earns, never UNKNOWN or INTERNAL), an error names the field at fault in a BadRequest, a refused
write changes nothing, and no password is ever echoed back.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protoc_gen_pyservice import runtime
from user.v1 import user_client, user_pb2, user_testing

from examples.userservice import app, config, page_tokens, query
from examples.userservice.services.user_service import UserService
from tests.behaviour.test_hostile import DELIBERATE, assert_not_a_valid, decodes, outcome, raw_stub
from tests.userservice.harness import config_for, mask, new_user, served

Client = user_client.UserServiceClient
JWT_SECRET = "hostile-inputs-jwt-secret-0123456789abcdef"
SERVICE = "user.v1.UserService"


def bearer(subject: str | None) -> tuple[tuple[str, str]]:
    """Metadata with a JWT for `subject` (with no `sub` claim for None)."""
    claims: dict[str, Any] = {"exp": int(time.time()) + 600}
    if subject is not None:
        claims["sub"] = subject
    return (("authorization", f"Bearer {jwt.encode(claims, JWT_SECRET, 'HS256')}"),)


async def failure(call: Awaitable[object]) -> runtime.ServiceError | None:
    """What the call raised, None when it succeeded."""
    try:
        await call
    except runtime.ServiceError as error:
        return error
    return None


def assert_refused(error: runtime.ServiceError | None, field: str, message: str = "") -> None:
    """INVALID_ARGUMENT (no other code) whose BadRequest names `field` and only it."""
    assert isinstance(error, runtime.InvalidArgument), error
    assert error.bad_request is not None, error
    assert [v.field for v in error.bad_request.field_violations] == [field], error.bad_request
    if message:
        assert error.message == message


def everything_sent_back(error: runtime.ServiceError) -> bytes:
    """Every byte of the answer a client can see: message, trailers (the serialized status
    with its details among them) and grpc's debug string."""
    received = error.rpc_error
    parts = [
        (received.details() or "").encode(),
        (received.debug_error_string() or "").encode(),
    ]
    trailers: Any = received.trailing_metadata() or ()
    for key, value in trailers:
        parts.append(key.encode())
        parts.append(value if isinstance(value, bytes) else value.encode())
    return b"\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Page tokens


@dataclass
class Listing:
    client: Client
    dependencies: app.Dependencies
    request: user_pb2.ListUsersRequest
    token: str  # the next_page_token of `request`'s first page, issued to alice


@pytest.fixture
async def listing(tmp_path: Path) -> AsyncIterator[Listing]:
    """A server requiring JWTs, as PYSERVICE_JWT_SECRET makes it, with 5 users and the token
    of the second page of a filtered, ordered listing."""
    settings = config.server_settings_from({"PYSERVICE_JWT_SECRET": JWT_SECRET})
    async with served(config_for(tmp_path), settings) as (client, dependencies):
        for n in range(5):
            await client.create_user(new_user(n), metadata=bearer("alice"))
        request = user_pb2.ListUsersRequest(
            page_size=2, filter="role:USER_ROLE_USER", order_by="email desc"
        )
        first = await client.list_users(request, metadata=bearer("alice"))
        assert first.next_page_token
        yield Listing(client, dependencies, request, first.next_page_token)


def with_token(
    request: user_pb2.ListUsersRequest, token: str, **fields: Any
) -> user_pb2.ListUsersRequest:
    changed = user_pb2.ListUsersRequest()
    changed.CopyFrom(request)
    changed.page_token = token
    for name, value in fields.items():
        setattr(changed, name, value)
    return changed


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def tampered(token: str) -> list[str]:
    """The token with each byte flipped in turn (every bit of it, so the result is never the
    token again), and with each character replaced by another of the alphabet."""
    raw = _raw(token)
    flipped = [_encoded(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1 :]) for i in range(len(raw))]
    swapped = [
        token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :] for i in range(len(token))
    ]
    return flipped + swapped


def truncated(token: str) -> list[str]:
    return [token[:length] for length in range(1, len(token))]


GARBAGE = [
    "not-a-token",
    "=",
    "====",
    "A",
    "AAAA",
    "A" * 100,
    "%00",
    "\x00",
    "\x00" * 64,
    "../../etc/passwd",
    "' OR 1=1 --",
    "eyJhbGciOiJub25lIn0.e30.",  # a JWT, of all things
    _encoded(b"\x01" + b"\x00" * 8 + b'[[],"x"]' + b"\x00" * 32),  # well formed, no MAC
    _encoded(random.Random(1).randbytes(80)),
    _encoded(random.Random(2).randbytes(41)),
    base64.standard_b64encode(random.Random(3).randbytes(60)).decode(),  # + and / alphabet
]
HUGE = ["A" * 100_000, _encoded(random.Random(4).randbytes(75_000)), "\x00" * 100_000]
NON_ASCII = ["é" * 10, "\uff54\uff4f\uff4b\uff45\uff4e", "🔑" * 20, "AAAA\u200bAAAA", "\uff21" * 64]


async def test_forged_page_tokens_are_invalid_argument_naming_page_token(
    listing: Listing,
) -> None:
    token = listing.token
    forged = [
        *tampered(token),
        *truncated(token),
        *GARBAGE,
        *HUGE,
        *NON_ASCII,
        token + "é",
        token + "A",
        token + "=",
        token + "==",
        " " + token,
        token + "\n",
        token.swapcase(),
    ]
    assert token not in forged
    for candidate in forged:
        error = await failure(
            listing.client.list_users(
                with_token(listing.request, candidate), metadata=bearer("alice")
            )
        )
        assert_refused(error, "page_token", page_tokens.INVALID)


async def test_a_page_token_replayed_for_another_query_or_caller_is_invalid(
    listing: Listing,
) -> None:
    alice = bearer("alice")
    replays = [
        (with_token(listing.request, listing.token, filter="role:USER_ROLE_ADMIN"), alice),
        (with_token(listing.request, listing.token, filter=""), alice),
        (with_token(listing.request, listing.token, order_by="email"), alice),
        (with_token(listing.request, listing.token, order_by=""), alice),
        (with_token(listing.request, listing.token, order_by="email desc, created_at"), alice),
        (with_token(listing.request, listing.token), bearer("mallory")),
        (with_token(listing.request, listing.token), bearer("Alice")),
        (with_token(listing.request, listing.token), bearer("alice ")),
        (with_token(listing.request, listing.token), bearer(None)),
    ]
    for request, metadata in replays:
        error = await failure(listing.client.list_users(request, metadata=metadata))
        assert_refused(error, "page_token", page_tokens.INVALID)


async def test_the_same_token_replayed_with_the_same_query_and_caller_gives_the_same_page(
    listing: Listing,
) -> None:
    again = with_token(listing.request, listing.token)
    pages = [await listing.client.list_users(again, metadata=bearer("alice")) for _ in range(3)]
    # Spelt another way, the same listing pages on from the same token too.
    respelt = with_token(listing.request, listing.token, filter=" role = USER_ROLE_USER ")
    pages.append(await listing.client.list_users(respelt, metadata=bearer("alice")))
    first = pages[0]
    assert [user.email for user in first.users] == ["user2@example.com", "user1@example.com"]
    for page in pages:
        assert list(page.users) == list(first.users)
        assert page.total_count == first.total_count == 5
        assert bool(page.next_page_token) is bool(first.next_page_token) is True


async def test_an_expired_page_token_is_invalid_argument_naming_page_token(
    listing: Listing,
) -> None:
    now = [time.time()]
    tokens = page_tokens.PageTokens(page_tokens.generate_secret(), 60, clock=lambda: now[0])
    aged = UserService(dataclasses.replace(listing.dependencies, page_tokens=tokens))
    async with user_testing.serve_user_service(aged) as client:
        first = await client.list_users(listing.request)
        request = with_token(listing.request, first.next_page_token)
        now[0] += 59
        await client.list_users(request)  # still valid a second before it expires
        now[0] += 1
        assert_refused(await failure(client.list_users(request)), "page_token", page_tokens.EXPIRED)
        # A forged token never gets as far as expiring: it is invalid, not expired.
        forged = with_token(listing.request, tampered(first.next_page_token)[-1])
        assert_refused(await failure(client.list_users(forged)), "page_token", page_tokens.INVALID)


async def test_a_page_token_of_another_servers_secret_is_invalid(listing: Listing) -> None:
    elsewhere = page_tokens.PageTokens(page_tokens.generate_secret())
    other = UserService(dataclasses.replace(listing.dependencies, page_tokens=elsewhere))
    settings = config.server_settings_from({"PYSERVICE_JWT_SECRET": JWT_SECRET})
    async with user_testing.serve_user_service(other, settings) as client:
        foreign = (
            await client.list_users(listing.request, metadata=bearer("alice"))
        ).next_page_token
        assert foreign and foreign != listing.token
        # Each server opens its own token and refuses the other's.
        await client.list_users(with_token(listing.request, foreign), metadata=bearer("alice"))
        error = await failure(
            client.list_users(with_token(listing.request, listing.token), metadata=bearer("alice"))
        )
        assert_refused(error, "page_token", page_tokens.INVALID)
    error = await failure(
        listing.client.list_users(with_token(listing.request, foreign), metadata=bearer("alice"))
    )
    assert_refused(error, "page_token", page_tokens.INVALID)


# ---------------------------------------------------------------------------------------------
# SQL injection through filter and order_by


@dataclass(frozen=True)
class Seeded:
    email: str
    first_name: str
    last_name: str
    role: int


ADMIN, USER, MODERATOR = (
    user_pb2.USER_ROLE_ADMIN,
    user_pb2.USER_ROLE_USER,
    user_pb2.USER_ROLE_MODERATOR,
)
# Values a store that built SQL from text, or compared with LIKE, would get wrong.
SEEDED = [
    Seeded("ada@example.com", "Ada", "Lovelace", ADMIN),
    Seeded("a_b@example.com", "A_B", "Underscore", USER),
    Seeded("axb@example.com", "AxB", "Lookalike", USER),
    Seeded("a%c@example.com", "%", "Percent", USER),
    Seeded("obrien@example.com", "O'Brien", "Robert'); DROP TABLE users;--", MODERATOR),
    Seeded("back@example.com", "back\\slash", 'say "hi"', USER),
    Seeded("cyrillic@example.com", "\u0410da", "Homoglyph", ADMIN),  # a Cyrillic capital A
]
KNOWN = SEEDED[0]


@dataclass(frozen=True)
class Refused:
    """The request is INVALID_ARGUMENT naming this field."""

    field: str


@dataclass(frozen=True)
class Matches:
    """The request succeeds with the seeded users for which every condition holds: `email`
    compared without case (as uniqueness is), names exactly, `role` by number."""

    conditions: dict[str, str | int] = dataclasses.field(default_factory=dict)

    def holds(self, user: Seeded) -> bool:
        for name, wanted in self.conditions.items():
            value = getattr(user, name)
            if name == "email":
                assert isinstance(wanted, str)
                if value.casefold() != wanted.casefold():
                    return False
            elif value != wanted:
                return False
        return True


NOBODY = Matches({"email": "nobody"})
EVERYONE = Matches()


def f(text: str, expected: Refused | Matches) -> tuple[str, str, Refused | Matches]:
    return (text, "", expected)


def o(text: str, expected: Refused | Matches) -> tuple[str, str, Refused | Matches]:
    return ("", text, expected)


BAD_FILTER, BAD_ORDER = Refused("filter"), Refused("order_by")
CORPUS: list[tuple[str, str, Refused | Matches]] = [
    # Classic injections: none is in the grammar.
    f("email:x OR 1=1", BAD_FILTER),
    f('email:"x" OR 1=1', BAD_FILTER),
    f("email:x' OR '1'='1", BAD_FILTER),
    f("' OR 1=1 --", BAD_FILTER),
    f("' OR ''='", BAD_FILTER),
    f("1=1", BAD_FILTER),
    f('email:"a" AND 1=1', BAD_FILTER),
    f('email:"a" --', BAD_FILTER),
    f('email:"ada@example.com"--', BAD_FILTER),
    f('email:"a"\n--\n', BAD_FILTER),
    f('email:"a"; DROP TABLE users', BAD_FILTER),
    f("email:a; DROP TABLE users", BAD_FILTER),
    f('email:"ada@example.com";', BAD_FILTER),
    f('email:"a" /* comment */', BAD_FILTER),
    f("/* */ email:a", BAD_FILTER),
    f('email:"a" UNION SELECT password_hash FROM users', BAD_FILTER),
    f("email:a UNION SELECT * FROM sqlite_master", BAD_FILTER),
    f('email:"abc" || "def"', BAD_FILTER),
    f("email:'ada@example.com'", BAD_FILTER),
    f("role:USER_ROLE_ADMIN' --", BAD_FILTER),
    f("role:USER_ROLE_ADMIN OR role:USER_ROLE_USER", BAD_FILTER),
    f("role:USER_ROLE_ADMIN and first_name:Ada", BAD_FILTER),
    f("NOT email:a", BAD_FILTER),
    f("-email:a", BAD_FILTER),
    f("email:a OR", BAD_FILTER),
    f("email:*", BAD_FILTER),
    f("email>a", BAD_FILTER),
    f("email!=a", BAD_FILTER),
    f("email:a AND email:b", BAD_FILTER),
    # Columns and tables outside the filter's fields.
    f("password_hash:x", BAD_FILTER),
    f('password_hash:"$argon2id$"', BAD_FILTER),
    f("email_key:ada@example.com", BAD_FILTER),
    f("sqlite_master:x", BAD_FILTER),
    f("id:x", BAD_FILTER),
    f("rowid:1", BAD_FILTER),
    f("created_at:1", BAD_FILTER),
    f("role:1", BAD_FILTER),
    f("role:2 OR 1", BAD_FILTER),
    f("users.email:a", BAD_FILTER),
    # Parentheses, nested deep.
    f("(role:USER_ROLE_ADMIN)", BAD_FILTER),
    f("(" * 10 + "email:a" + ")" * 10, BAD_FILTER),
    f("(" * 500 + "email:a" + ")" * 500, BAD_FILTER),
    # Backslashes, NUL and other control characters.
    f('email:"a\\"', BAD_FILTER),
    f('email:"\\x27"', BAD_FILTER),
    f('email:"a\x00"', BAD_FILTER),
    f("email:a\x00", BAD_FILTER),
    f("\x00", BAD_FILTER),
    f('email:"\x1b[31m"', BAD_FILTER),
    f("first_name:back\\slash", BAD_FILTER),
    # Too long.
    f("email:" + "a" * 1025, BAD_FILTER),
    f('email:"' + "a" * 2000 + '"', BAD_FILTER),
    f("email:a AND " * 200, BAD_FILTER),
    # LIKE wildcards: literal characters, never patterns.
    f("email:%", BAD_FILTER),
    f('email:"a%"', NOBODY),
    f('email:"%"', NOBODY),
    f('email:"%@example.com"', NOBODY),
    f('email:"a%c@example.com"', Matches({"email": "a%c@example.com"})),
    f("email:a_b@example.com", Matches({"email": "a_b@example.com"})),
    f('first_name:"%"', Matches({"first_name": "%"})),
    f('first_name:"A_B"', Matches({"first_name": "A_B"})),
    f('last_name:"_"', NOBODY),
    # Quotes and SQL inside a string are the value, nothing more.
    f("email:\"ada@example.com' OR '1'='1\"", NOBODY),
    f('email:"ada@example.com\\" OR \\"1\\"=\\"1"', NOBODY),
    f("email:ada@example.com--", NOBODY),
    f("email:a--", NOBODY),
    f('first_name:"O\'Brien"', Matches({"first_name": "O'Brien"})),
    f(
        'last_name:"Robert\'); DROP TABLE users;--"',
        Matches({"last_name": "Robert'); DROP TABLE users;--"}),
    ),
    f('first_name:"back\\\\slash"', Matches({"first_name": "back\\slash"})),
    f('last_name:"say \\"hi\\""', Matches({"last_name": 'say "hi"'})),
    f('email:"\\\\"', NOBODY),
    f('email:"ada@example.com\u202e"', NOBODY),  # right-to-left override
    # Homoglyphs match only themselves.
    f("email:\uff41\uff44\uff41@example.com", NOBODY),  # a fullwidth "ada"
    f("first_name:\u0410da", Matches({"first_name": "\u0410da"})),
    f("first_name:Ada", Matches({"first_name": "Ada"})),
    f('first_name:"\u0391da"', NOBODY),  # a Greek capital alpha
    # What the grammar accepts, answered exactly.
    f('email:"ada@example.com"', Matches({"email": "ada@example.com"})),
    f("email:ADA@EXAMPLE.COM", Matches({"email": "ada@example.com"})),
    f('email = "ada@example.com"', Matches({"email": "ada@example.com"})),
    f("role:USER_ROLE_ADMIN", Matches({"role": ADMIN})),
    f('role:"USER_ROLE_MODERATOR"', Matches({"role": MODERATOR})),
    f(
        'email:"ada@example.com" AND first_name:Ada AND last_name:Lovelace AND role:USER_ROLE_ADMIN',
        Matches({"email": "ada@example.com", "first_name": "Ada", "role": ADMIN}),
    ),
    f("role:USER_ROLE_USER AND first_name:Ada", NOBODY),
    f("", EVERYONE),
    f(" \t\r\n", EVERYONE),
    # order_by: injections, hidden columns and bad spellings.
    o("email; DROP TABLE users", BAD_ORDER),
    o("email desc --", BAD_ORDER),
    o("email desc, (SELECT 1)", BAD_ORDER),
    o("email /* x */", BAD_ORDER),
    o("email\x00", BAD_ORDER),
    o("email collate nocase", BAD_ORDER),
    o("RANDOM()", BAD_ORDER),
    o("(email)", BAD_ORDER),
    o("1", BAD_ORDER),
    o("id", BAD_ORDER),
    o("rowid", BAD_ORDER),
    o("password_hash", BAD_ORDER),
    o("email_key", BAD_ORDER),
    o("sqlite_master", BAD_ORDER),
    o("email DESC", BAD_ORDER),
    o("email asc, email desc", BAD_ORDER),
    o("email," * 100, BAD_ORDER),
    o("email desc limit 1", BAD_ORDER),
    o("emai\u029f", BAD_ORDER),  # ʟ, a small capital L
    # order_by as accepted, in exactly that order.
    o("email desc", EVERYONE),
    o("role", EVERYONE),  # ties: by id, ascending
    o("role desc", EVERYONE),  # ties: by id, descending
    o("last_name", EVERYONE),
    o("first_name desc, last_name asc", EVERYONE),
    o("role desc, email", EVERYONE),
    o("created_at desc", EVERYONE),
    o(" updated_at ,email desc ", EVERYONE),
    # Both at once: the filter is checked first.
    ("email:a OR 1=1", "password_hash", BAD_FILTER),
    ("role:USER_ROLE_USER", "email desc; DROP TABLE users", BAD_ORDER),
    ("role:USER_ROLE_USER", "first_name desc", Matches({"role": USER})),
]


def ordered(
    users: Sequence[tuple[Seeded, user_pb2.User]], order_by: str
) -> list[tuple[Seeded, user_pb2.User]]:
    """`users` in the order AIP-132's `order_by` asks (field [asc|desc], ...), then by id in
    the direction of the last field: sorted stably from the last key to the first."""
    keys = [item.split() for item in order_by.split(",") if item.strip()]
    descending = [len(key) == 2 and key[1] == "desc" for key in keys]
    result = sorted(users, key=lambda pair: pair[1].id, reverse=descending[-1] if keys else False)
    for key, down in reversed(list(zip(keys, descending, strict=True))):
        result.sort(key=functools.partial(_sort_value, key[0]), reverse=down)
    return result


def _sort_value(name: str, pair: tuple[Seeded, user_pb2.User]) -> int | str:
    user = pair[1]
    if name in ("created_at", "updated_at"):
        micros: int = getattr(user, name).ToMicroseconds()
        return micros
    value: int | str = getattr(user, name)
    return value


@pytest.fixture
async def seeded(
    tmp_path: Path,
) -> AsyncIterator[tuple[Client, list[tuple[Seeded, user_pb2.User]]]]:
    async with served(config_for(tmp_path)) as (client, _):
        users = []
        for n, seed in enumerate(SEEDED):
            fields = dataclasses.asdict(seed)
            users.append((seed, (await client.create_user(new_user(n, **fields))).user))
        yield client, users


async def assert_table_intact(client: Client, users: list[tuple[Seeded, user_pb2.User]]) -> None:
    everyone = await client.list_users(user_pb2.ListUsersRequest(page_size=100))
    assert everyone.total_count == len(users)
    assert sorted(everyone.users, key=lambda user: user.id) == sorted(
        (user for _, user in users), key=lambda user: user.id
    )
    known = users[0][1]
    assert (await client.get_user(user_pb2.GetUserRequest(id=known.id))).user == known


async def test_injection_corpus_is_refused_or_answered_literally(
    seeded: tuple[Client, list[tuple[Seeded, user_pb2.User]]],
) -> None:
    client, users = seeded
    assert len(CORPUS) >= 60
    wrong: list[str] = []
    for text, order_by, expected in CORPUS:
        request = user_pb2.ListUsersRequest(page_size=100, filter=text, order_by=order_by)
        try:
            page = await client.list_users(request)
        except runtime.ServiceError as error:
            fields = (
                [v.field for v in error.bad_request.field_violations] if error.bad_request else []
            )
            if not (
                isinstance(error, runtime.InvalidArgument) and fields == [expected_field(expected)]
            ):
                wrong.append(f"{text!r} / {order_by!r}: {error.code.name} {fields} {error.message}")
            continue
        if not isinstance(expected, Matches):
            wrong.append(f"{text!r} / {order_by!r}: OK, expected {expected}")
            continue
        matching = [pair for pair in users if expected.holds(pair[0])]
        want = [user.id for _, user in ordered(matching, order_by)]
        got = [user.id for user in page.users]
        if got != want or page.total_count != len(want):
            wrong.append(f"{text!r} / {order_by!r}: got {got} ({page.total_count}), want {want}")
    assert not wrong, "\n".join(wrong)
    await assert_table_intact(client, users)


def expected_field(expected: Refused | Matches) -> str | None:
    return expected.field if isinstance(expected, Refused) else None


def _quoted(value: str, escape: bool) -> str:
    if escape:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


# Mostly what the grammar accepts, so both answers are exercised, with hostile values.
_FIELDS = st.one_of(
    st.sampled_from(["email", "first_name", "last_name"]),
    st.sampled_from(["role", "id", "password_hash", "email_key", "EMAIL", ""]),
)
_VALUES = st.one_of(
    st.text(max_size=16),
    st.sampled_from(
        ["USER_ROLE_ADMIN", "ada@example.com", "Ada", "%", "_", "a%", "' OR 1=1 --", "\\", ";"]
    ),
    st.sampled_from(SEEDED).map(lambda seed: seed.email),
    st.sampled_from(SEEDED).map(lambda seed: seed.first_name),
)


@st.composite
def _terms(draw: st.DrawFn) -> str:
    value = draw(_VALUES)
    if draw(st.integers(0, 3)):
        value = _quoted(value, escape=draw(st.integers(0, 3)) > 0)
    operator = draw(
        st.one_of(st.sampled_from([":", "=", " = "]), st.sampled_from(["!=", " ", "~"]))
    )
    return f"{draw(_FIELDS)}{operator}{value}"


@st.composite
def _joined(draw: st.DrawFn) -> str:
    terms = draw(st.lists(_terms(), min_size=1, max_size=3))
    text = terms[0]
    for term in terms[1:]:
        text += draw(
            st.one_of(
                st.just(" AND "),
                st.sampled_from([" OR ", " and ", "AND", " ", "; ", " AND NOT "]),
            )
        )
        text += term
    return text


_PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=16)


@st.composite
def _grammatical(draw: st.DrawFn) -> str:
    """A filter the grammar accepts: each field once, quoted values of hostile text."""
    fields = draw(
        st.lists(
            st.sampled_from(["email", "first_name", "last_name", "role"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    terms = []
    for field in fields:
        if field == "role":
            value = draw(st.sampled_from(list(user_pb2.UserRole.keys())))
        else:
            text = draw(st.one_of(_PRINTABLE, st.sampled_from(SEEDED).map(lambda s: s.email)))
            value = _quoted(text, escape=True)
        terms.append(f"{field}{draw(st.sampled_from([':', '=', ' = ']))}{value}")
    return " AND ".join(terms)


FILTERS = st.one_of(
    _grammatical(),
    _joined(),
    st.text(max_size=40),
    st.text(alphabet="()\"'\\:=% ;-*/", max_size=40),
)


def evaluated(conditions: Sequence[Any], seeds: Sequence[Seeded]) -> set[int]:
    """Which seeded users the parsed conditions select, evaluated here in Python."""
    chosen = set()
    for index, seed in enumerate(seeds):
        matches = Matches({condition.column.value: condition.value for condition in conditions})
        if matches.holds(seed):
            chosen.add(index)
    return chosen


def in_a_thread(loop: asyncio.AbstractEventLoop) -> Callable[[Awaitable[Any]], Any]:
    """Run a coroutine on `loop` from hypothesis' thread: hypothesis drives its examples
    synchronously, while the server and client live on the test's loop."""

    def run(coroutine: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)  # type: ignore[arg-type]

    return run


async def test_generated_filters_answer_ok_exactly_or_invalid_argument(
    seeded: tuple[Client, list[tuple[Seeded, user_pb2.User]]],
) -> None:
    client, users = seeded
    run = in_a_thread(asyncio.get_running_loop())
    seeds = [seed for seed, _ in users]
    ids = {user.id: index for index, (_, user) in enumerate(users)}

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=FILTERS)
    def answers(text: str) -> None:
        request = user_pb2.ListUsersRequest(page_size=100, filter=text)
        try:
            page = run(client.list_users(request))
        except runtime.ServiceError as error:
            assert_refused(error, "filter")
            assert len(error.message) < 400, error.message
            with pytest.raises(query.QueryError):
                query.parse_filter(text)
            return
        expected = evaluated(query.parse_filter(text), seeds)
        assert {ids[user.id] for user in page.users} == expected, text
        assert page.total_count == len(expected)

    await asyncio.to_thread(answers)
    await assert_table_intact(client, users)


# ---------------------------------------------------------------------------------------------
# Update masks


MASKS = {
    "id": mask("id"),
    "created_at": mask("created_at"),
    "updated_at": mask("updated_at"),
    "password": mask("password"),
    "password_hash": mask("password_hash"),
    "unknown": mask("nickname"),
    "nested": mask("user.email"),
    "nested_under_a_field": mask("email.domain"),
    "empty_path": mask(""),
    "blank_path": mask(" "),
    "padded": mask(" first_name"),
    "upper_case": mask("First_Name"),
    "fullwidth": mask("\uff46irst_name"),
    "nul": mask("first_name\x00"),
    "wildcard_and_more": mask("*", "first_name"),
    "more_and_wildcard": mask("first_name", "*"),
    "wildcard_twice": mask("*", "*"),
    "good_then_fixed": mask("first_name", "id"),
    "seventeen_paths": mask(*["first_name"] * 17),
    "thousand_paths": mask(*["first_name"] * 1000),
    "thousand_unknown_paths": mask(*[f"field_{n}" for n in range(1000)]),
    "huge_path": mask("x" * 100_000),
}


@pytest.mark.parametrize("update_mask", MASKS.values(), ids=MASKS.keys())
async def test_masks_that_cannot_apply_are_invalid_and_change_nothing(
    tmp_path: Path, update_mask: field_mask_pb2.FieldMask
) -> None:
    async with served(config_for(tmp_path)) as (client, dependencies):
        user = (await client.create_user(new_user())).user
        before = await dependencies.repository.get(user.id)
        request = user_pb2.UpdateUserRequest(
            id=user.id,
            update_mask=update_mask,
            email="changed@example.com",
            first_name="Changed",
            last_name="Changed",
            role=user_pb2.USER_ROLE_ADMIN,
        )
        error = await failure(client.update_user(request))
        assert_refused(error, "update_mask")
        assert error is not None and len(error.message) < 300, error
        assert (await client.get_user(user_pb2.GetUserRequest(id=user.id))).user == user
        assert await dependencies.repository.get(user.id) == before


# ---------------------------------------------------------------------------------------------
# Request bytes: random, truncated and mutated


def mutations(seed: bytes, rng: random.Random, count: int) -> list[bytes]:
    """`count` corruptions of a real serialized request: cut, bit flips, overwritten,
    inserted and deleted bytes, doubled (a valid merge) and pure noise."""

    def one() -> bytes:
        data = bytearray(seed)
        kind = rng.randrange(7)
        if kind == 0 or not data:
            return rng.randbytes(rng.randrange(65))
        position = rng.randrange(len(data))
        if kind == 1:
            return bytes(data[:position])
        if kind == 2:
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 3:
            data[position] = rng.randrange(256)
        elif kind == 4:
            data[position:position] = rng.randbytes(rng.randint(1, 8))
        elif kind == 5:
            del data[position : position + rng.randint(1, 4)]
        else:
            return bytes(data) + bytes(data[position:])
        return bytes(data)

    return [one() for _ in range(count)]


UNARY = [
    ("GetUser", user_pb2.GetUserRequest),
    ("ListUsers", user_pb2.ListUsersRequest),
    ("CreateUser", user_pb2.CreateUserRequest),
    ("UpdateUser", user_pb2.UpdateUserRequest),
    ("DeleteUser", user_pb2.DeleteUserRequest),
]
HOSTILE_TEXT = [
    "",
    " ",
    "x" * 10_000,
    "' OR 1=1 --",
    "\x00",
    "\u202e\u0410da",
    "a@b.co",
    "*",
    "../..",
    "%s%n",
]
HOSTILE_NUMBERS = [-1, 0, 1, 4, 101, 2**31 - 1, -(2**31)]


def field_mutations(seed: Message, rng: random.Random, count: int) -> list[bytes]:
    """`count` well-formed requests with one field of `seed` set to a hostile value: text
    where a string goes, out-of-range numbers (and undefined enum values) where an integer
    does, junk paths in a mask."""
    fields = [(field.name, field.type) for field in seed.DESCRIPTOR.fields]
    mutated = []
    for _ in range(count):
        message = type(seed)()
        message.CopyFrom(seed)
        name, kind = rng.choice(fields)
        if kind == FieldDescriptor.TYPE_STRING:
            setattr(message, name, rng.choice(HOSTILE_TEXT))
        elif kind == FieldDescriptor.TYPE_MESSAGE:  # the update mask
            paths = getattr(message, name).paths
            paths.extend(
                rng.choices(["id", "", "*", "email", "x" * 300, "a.b"], k=rng.randint(1, 20))
            )
        else:
            setattr(message, name, rng.choice(HOSTILE_NUMBERS))
        mutated.append(message.SerializeToString())
    return mutated


MUTATIONS_PER_METHOD = 150


async def test_mutated_request_bytes_are_answered_deliberately(tmp_path: Path) -> None:
    async with served(config_for(tmp_path), config.server_settings_from({})) as (client, _):
        users = [(await client.create_user(new_user(n))).user for n in range(3)]
        listed = await client.list_users(
            user_pb2.ListUsersRequest(page_size=1, filter="role:USER_ROLE_USER", order_by="email")
        )
        seeds: dict[str, Message] = {
            "GetUser": user_pb2.GetUserRequest(id=users[0].id),
            "ListUsers": user_pb2.ListUsersRequest(
                page_size=1,
                filter="role:USER_ROLE_USER",
                order_by="email",
                page_token=listed.next_page_token,
            ),
            "CreateUser": new_user(99),
            "UpdateUser": user_pb2.UpdateUserRequest(
                id=users[1].id,
                update_mask=mask("first_name", "last_name"),
                first_name="Mutated",
                last_name="Bytes",
            ),
            "DeleteUser": user_pb2.DeleteUserRequest(id=users[2].id),
        }
        rng = random.Random(10)
        wrong: list[str] = []
        for method, request_type in UNARY:
            call = raw_stub(client.channel, f"/{SERVICE}/{method}")
            seed = seeds[method]
            hostile = mutations(seed.SerializeToString(), rng, MUTATIONS_PER_METHOD)
            hostile += field_mutations(seed, rng, MUTATIONS_PER_METHOD)
            for raw in hostile:
                code, details = await outcome(call(raw, timeout=5))
                if not decodes(request_type, raw):
                    try:
                        assert_not_a_valid(code, details, request_type)
                    except AssertionError:
                        wrong.append(f"{method} {raw!r}: {code.name} {details}")
                elif code not in DELIBERATE:
                    wrong.append(f"{method} {raw!r}: {code.name} {details}")
        assert not wrong, "\n".join(wrong[:20])


# ---------------------------------------------------------------------------------------------
# Oversized fields, and the password never echoed

PASSWORD = "Sekr1t-Passw0rd-"  # distinctive: any echo of it is found below


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"password": (PASSWORD * 9)[:129]}, "password"),
        ({"password": (PASSWORD * 700)[:10_000]}, "password"),
        ({"first_name": "F" * 101, "password": PASSWORD}, "first_name"),
        ({"last_name": "L" * 101, "password": PASSWORD}, "last_name"),
        ({"email": "e" * 243 + "@example.com", "password": PASSWORD}, "email"),
        ({"email": "not an email", "password": PASSWORD}, "email"),
    ],
    ids=["password_129", "password_10k", "first_name_101", "last_name_101", "email_255", "email"],
)
async def test_oversized_fields_are_invalid_and_the_password_is_never_echoed(
    tmp_path: Path, fields: dict[str, str], field: str
) -> None:
    async with served(config_for(tmp_path), config.server_settings_from({})) as (client, _):
        error = await failure(client.create_user(new_user(1, **fields)))
        assert isinstance(error, runtime.InvalidArgument), error
        assert error.bad_request is not None
        assert {v.field for v in error.bad_request.field_violations} == {field}
        sent_back = everything_sent_back(error)
        assert PASSWORD[:8].encode() not in sent_back, sent_back
        assert b"Passw0rd" not in sent_back
        assert (await client.list_users(user_pb2.ListUsersRequest(page_size=1))).total_count == 0
        # The longest password allowed is hashed, and still never sent back.
        created = await client.create_user(new_user(1, password=(PASSWORD * 8)[:128]))
        assert b"Passw0rd" not in created.SerializeToString()
