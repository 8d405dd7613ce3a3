"""The filter and order_by grammars: what they accept, what they say when they refuse, and that
hostile text only ever ends in a QueryError or a correct, typed query."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from user.v1 import user_pb2

from examples.userservice.query import (
    MAX_FILTER_LENGTH,
    MAX_ORDER_BY_LENGTH,
    QueryError,
    canonical,
    parse_filter,
    parse_order_by,
)
from examples.userservice.store.base import (
    Column,
    Condition,
    Cursor,
    ListQuery,
    Ordering,
    UserRecord,
    cursor_after,
)

ADMIN = Condition(Column.ROLE, user_pb2.USER_ROLE_ADMIN)
FIELDS = "fields: email, first_name, last_name, role"
ORDER_FIELDS = (
    "fields: created_at, updated_at, email, first_name, last_name, role"
    " (id always comes last, as the tie-break)"
)
ROLES = "roles: USER_ROLE_UNSPECIFIED, USER_ROLE_USER, USER_ROLE_ADMIN, USER_ROLE_MODERATOR"
NOT_AND = "; terms can only be joined by AND (upper case)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("  \t\r\n ", ()),
        ("role:USER_ROLE_ADMIN", (ADMIN,)),
        ("role=USER_ROLE_ADMIN", (ADMIN,)),
        ("  role  :  USER_ROLE_ADMIN  ", (ADMIN,)),
        ("role = USER_ROLE_ADMIN", (ADMIN,)),
        ('role:"USER_ROLE_ADMIN"', (ADMIN,)),
        ("role:USER_ROLE_UNSPECIFIED", (Condition(Column.ROLE, 0),)),
        ("role:USER_ROLE_USER", (Condition(Column.ROLE, 1),)),
        ("role:USER_ROLE_MODERATOR", (Condition(Column.ROLE, 3),)),
        ("email:Ada.L+x_y-z@example.com", (Condition(Column.EMAIL, "Ada.L+x_y-z@example.com"),)),
        ("first_name:José", (Condition(Column.FIRST_NAME, "José"),)),
        ("last_name:O", (Condition(Column.LAST_NAME, "O"),)),
        ('last_name:"O\'Brien"', (Condition(Column.LAST_NAME, "O'Brien"),)),
        ('first_name:"Mary Ann"', (Condition(Column.FIRST_NAME, "Mary Ann"),)),
        ('first_name:""', (Condition(Column.FIRST_NAME, ""),)),
        (r'first_name:"say \"hi\" \\o/"', (Condition(Column.FIRST_NAME, 'say "hi" \\o/'),)),
        ('first_name:"李 ⁂ \u2028"', (Condition(Column.FIRST_NAME, "李 ⁂ \u2028"),)),
        (
            'email:a@b.c AND role:USER_ROLE_ADMIN AND first_name:"A" AND last_name:B',
            (
                Condition(Column.EMAIL, "a@b.c"),
                ADMIN,
                Condition(Column.FIRST_NAME, "A"),
                Condition(Column.LAST_NAME, "B"),
            ),
        ),
        ('email:"x"AND role:USER_ROLE_ADMIN', (Condition(Column.EMAIL, "x"), ADMIN)),
        ("role:USER_ROLE_ADMIN\tAND\nemail:x", (ADMIN, Condition(Column.EMAIL, "x"))),
        (" " * MAX_FILTER_LENGTH, ()),
    ],
)
def test_filter_accepts(text, expected):
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x" * (MAX_FILTER_LENGTH + 1), "filter: 1025 characters, at most 1024"),
        ("password:x", f"filter: unknown field 'password' at position 0; {FIELDS}"),
        ("role:USER_ROLE_ADMIN AND id:1", f"filter: unknown field 'id' at position 25; {FIELDS}"),
        ("Role:USER_ROLE_ADMIN", f"filter: unknown field 'Role' at position 0; {FIELDS}"),
        ("p" * 60 + ":x", f"filter: unknown field '{'p' * 40}'... at position 0; {FIELDS}"),
        (
            "(role:USER_ROLE_ADMIN)",
            "filter: expected a field name at position 0, found '(role:USER_ROLE_ADMIN)'",
        ),
        ("NOT role:USER_ROLE_ADMIN", f"filter: unknown field 'NOT' at position 0; {FIELDS}"),
        (
            "-role:USER_ROLE_ADMIN",
            "filter: expected a field name at position 0, found '-role:USER_ROLE_ADMIN'",
        ),
        ("role:USER_ROLE_ADMIN AND", "filter: expected a field name at position 24, found the end"),
        ("role", "filter: expected ':' or '=' after 'role' at position 4, found the end"),
        (
            "role!=USER_ROLE_ADMIN",
            "filter: expected ':' or '=' after 'role' at position 4, found '!=USER_ROLE_ADMIN'",
        ),
        (
            "role<USER_ROLE_ADMIN",
            "filter: expected ':' or '=' after 'role' at position 4, found '<USER_ROLE_ADMIN'",
        ),
        (
            "role > USER_ROLE_ADMIN",
            "filter: expected ':' or '=' after 'role' at position 5, found '>'",
        ),
        ("role.name:x", "filter: expected ':' or '=' after 'role' at position 4, found '.name:x'"),
        (
            "role==USER_ROLE_ADMIN",
            "filter: expected a value for 'role' at position 5, found '=USER_ROLE_ADMIN'",
        ),
        ("role:", "filter: expected a value for 'role' at position 5, found the end"),
        ("email: *", "filter: expected a value for 'email' at position 7, found '*'"),
        ("role:X", f"filter: unknown role 'X' at position 5; {ROLES}"),
        ("role:2", f"filter: unknown role '2' at position 5; {ROLES}"),
        ("role:user_role_admin", f"filter: unknown role 'user_role_admin' at position 5; {ROLES}"),
        ('role: "USER_ROLE_ROOT"', f"filter: unknown role 'USER_ROLE_ROOT' at position 6; {ROLES}"),
        (
            "role:USER_ROLE_ADMIN OR role:USER_ROLE_USER",
            f"filter: expected 'AND' or the end at position 21, found 'OR'{NOT_AND}",
        ),
        (
            "role:USER_ROLE_ADMIN and email:x",
            f"filter: expected 'AND' or the end at position 21, found 'and'{NOT_AND}",
        ),
        (
            "role:USER_ROLE_ADMIN email:x",
            f"filter: expected 'AND' or the end at position 21, found 'email:x'{NOT_AND}",
        ),
        (
            "role:USER_ROLE_ADMIN ANDemail:x",
            f"filter: expected 'AND' or the end at position 21, found 'ANDemail:x'{NOT_AND}",
        ),
        (
            "role:USER_ROLE_ADMIN' OR '1'='1",
            f"filter: expected 'AND' or the end at position 20, found \"'\"{NOT_AND}",
        ),
        (
            'email:"a" ; DROP TABLE users',
            f"filter: expected 'AND' or the end at position 10, found ';'{NOT_AND}",
        ),
        (
            "role:USER_ROLE_ADMIN AND role:USER_ROLE_USER",
            "filter: field 'role' at position 25 is given twice; each field may appear once",
        ),
        (
            "email:a AND email:a",
            "filter: field 'email' at position 12 is given twice; each field may appear once",
        ),
        ('email:"a', "filter: unterminated string starting at position 6"),
        ('email:"a\\"', "filter: unterminated string starting at position 6"),
        (
            'email:"a\\n"',
            "filter: unknown escape '\\\\n' at position 8; only \\\" and \\\\ are allowed",
        ),
        (
            'email:"a\\',
            "filter: unknown escape '\\\\' at position 8; only \\\" and \\\\ are allowed",
        ),
        ('email:"a\x00"', "filter: character '\\x00' at position 8 is not allowed in a string"),
        ('email:"a\nb"', "filter: character '\\n' at position 8 is not allowed in a string"),
        ('email:"\x85"', "filter: character '\\x85' at position 7 is not allowed in a string"),
        ('email:"\ud800"', "filter: character '\\ud800' at position 7 is not allowed in a string"),
        ("email:a\x00", f"filter: expected 'AND' or the end at position 7, found '\\x00'{NOT_AND}"),
        (
            "email:\u202eevil",
            "filter: expected a value for 'email' at position 6, found '\\u202eevil'",
        ),
    ],
)
def test_filter_refuses(text, message):
    with pytest.raises(QueryError) as refused:
        parse_filter(text)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("   ", ()),
        ("created_at", (Ordering(Column.CREATED_AT),)),
        ("created_at asc", (Ordering(Column.CREATED_AT),)),
        ("created_at desc", (Ordering(Column.CREATED_AT, descending=True),)),
        (
            " created_at desc ,email,  last_name   desc ",
            (
                Ordering(Column.CREATED_AT, descending=True),
                Ordering(Column.EMAIL),
                Ordering(Column.LAST_NAME, descending=True),
            ),
        ),
        (
            "updated_at desc, first_name asc, role",
            (
                Ordering(Column.UPDATED_AT, descending=True),
                Ordering(Column.FIRST_NAME),
                Ordering(Column.ROLE),
            ),
        ),
        ("email\t desc", (Ordering(Column.EMAIL, descending=True),)),
    ],
)
def test_order_by_accepts(text, expected):
    assert parse_order_by(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("e" * (MAX_ORDER_BY_LENGTH + 1), "order_by: 257 characters, at most 256"),
        ("id", f"order_by: unknown field 'id' at position 0; {ORDER_FIELDS}"),
        ("email, id desc", f"order_by: unknown field 'id' at position 7; {ORDER_FIELDS}"),
        ("password", f"order_by: unknown field 'password' at position 0; {ORDER_FIELDS}"),
        (
            "created_atdesc",
            f"order_by: unknown field 'created_atdesc' at position 0; {ORDER_FIELDS}",
        ),
        ("created_at,desc", f"order_by: unknown field 'desc' at position 11; {ORDER_FIELDS}"),
        (
            "created_at DESC",
            "order_by: expected 'asc' or 'desc' after 'created_at' at position 11, found 'DESC'; directions are lower case",
        ),
        (
            "created_at Asc",
            "order_by: expected 'asc' or 'desc' after 'created_at' at position 11, found 'Asc'; directions are lower case",
        ),
        (
            "created_at descending",
            "order_by: expected 'asc' or 'desc' after 'created_at' at position 11, found 'descending'",
        ),
        (
            "created_at;",
            "order_by: expected 'asc' or 'desc' after 'created_at' at position 10, found ';'",
        ),
        ("-created_at", "order_by: expected a field name at position 0, found '-created_at'"),
        ("email asc desc", "order_by: expected ',' or the end at position 10, found 'desc'"),
        (
            "email desc; DROP TABLE users",
            "order_by: expected ',' or the end at position 10, found ';'",
        ),
        ("created_at desc,", "order_by: expected a field name at position 16, found the end"),
        (",email", "order_by: expected a field name at position 0, found ',email'"),
        ("email,,role", "order_by: expected a field name at position 6, found ',role'"),
        (
            "email, email desc",
            "order_by: field 'email' at position 7 is given twice; each field may appear once",
        ),
    ],
)
def test_order_by_refuses(text, message):
    with pytest.raises(QueryError) as refused:
        parse_order_by(text)
    assert str(refused.value) == message


# Hostile filters: each is refused, or parsed into exactly these conditions (values the store
# binds as parameters, never splices into SQL).
HOSTILE_FILTERS: list[tuple[str, tuple[Condition, ...] | None]] = [
    ("role:USER_ROLE_ADMIN' OR '1'='1", None),
    ("role:USER_ROLE_ADMIN OR 1=1", None),
    ("role:USER_ROLE_ADMIN; DROP TABLE users; --", None),
    ("role:USER_ROLE_ADMIN -- comment", None),
    ("role:USER_ROLE_ADMIN /* */", None),
    ('email:"a" ; DROP TABLE users', None),
    ("email:a' UNION SELECT password_hash FROM users --", None),
    ("email:a%", None),
    ("email:%", None),
    ("email:_", (Condition(Column.EMAIL, "_"),)),
    ("email:*", None),
    ("email:\"' OR '1'='1\"", (Condition(Column.EMAIL, "' OR '1'='1"),)),
    ('email:"x\\"; DROP TABLE users; --"', (Condition(Column.EMAIL, 'x"; DROP TABLE users; --'),)),
    ('last_name:"%\' AND 1=1 --"', (Condition(Column.LAST_NAME, "%' AND 1=1 --"),)),
    ("password_hash:x", None),
    ("id:1 OR id:2", None),
    ("created_at>0", None),
    ("role:USER_ROLE_ADMIN)", None),
    ("(" * 500 + "role:USER_ROLE_ADMIN" + ")" * 500, None),
    ("(" * MAX_FILTER_LENGTH, None),
    ("NOT " * 200, None),
    ("-" * 1000, None),
    ('"' * 1000, None),
    ('email:"' + "\\" * 1000, None),
    ('email:"' + "a" * 1016, None),
    (
        "email:" + "a" * (MAX_FILTER_LENGTH - 6),
        (Condition(Column.EMAIL, "a" * (MAX_FILTER_LENGTH - 6)),),
    ),
    ("email:" + "a" * (MAX_FILTER_LENGTH - 5), None),
    (" AND ".join(["role:USER_ROLE_ADMIN"] * 9), None),
    (" AND ".join(f"email:{index}" for index in range(100)), None),
    ("AND AND AND", None),
    ("role:USER_ROLE_ADMIN AND AND email:x", None),
    ("\x00", None),
    ("role:USER_ROLE_ADMIN\x00", None),
    ("role\x00:USER_ROLE_ADMIN", None),
    ('first_name:"\x00"', None),
    ('first_name:"\x1b[31mred"', None),
    ("first_name:\x1b[31mred", None),
    ('first_name:"\u202egnp.exe"', (Condition(Column.FIRST_NAME, "\u202egnp.exe"),)),
    ("first_name:\u202egnp", None),
    ("rôle:USER_ROLE_ADMIN", None),
    ("\uff52\uff4f\uff4c\uff45:USER_ROLE_ADMIN", None),  # fullwidth "role"
    ("role:\uff35\uff33\uff25\uff32_ROLE_ADMIN", None),  # fullwidth "USER"
    ("role\u00a0:USER_ROLE_ADMIN", None),
    ("first_name:Zoë", (Condition(Column.FIRST_NAME, "Zoë"),)),
    ("first_name:\U0001f600", None),
    ('first_name:"\U0001f600"', (Condition(Column.FIRST_NAME, "\U0001f600"),)),
    ("email:a@b.c\r\nX-Injected: yes", None),
    ("role:USER_ROLE_ADMIN\n", (ADMIN,)),
    ("email:${jndi:ldap://x}", None),
    ("email:{{7*7}}", None),
    ("has(role)", None),
    ('email.matches(".*")', None),
    ("role:USER_ROLE_ADMIN AND ", None),
    ("\ufeffrole:USER_ROLE_ADMIN", None),
]


@pytest.mark.parametrize(("text", "expected"), HOSTILE_FILTERS)
def test_hostile_filters(text, expected):
    if expected is None:
        with pytest.raises(QueryError) as refused:
            parse_filter(text)
        assert_safe_message(str(refused.value))
    else:
        assert parse_filter(text) == expected


HOSTILE_ORDER_BY = [
    "id",
    "id desc",
    "created_at desc; DROP TABLE users",
    "created_at desc --",
    "(SELECT 1)",
    "created_at desc, (CASE WHEN 1=1 THEN email ELSE role END)",
    'email COLLATE "C"',
    "email desc nulls first",
    "1",
    "email\x00",
    "email, " * 40,
    ",".join(["email"] * 7),
    "password_hash",
    "émail",
    "created_at desc\u202e",
]


@pytest.mark.parametrize("text", HOSTILE_ORDER_BY)
def test_hostile_order_by(text):
    with pytest.raises(QueryError) as refused:
        parse_order_by(text)
    assert_safe_message(str(refused.value))


def assert_safe_message(message: str) -> None:
    """A refusal is short, printable ASCII, whatever the client sent."""
    assert message.isascii()
    assert message.isprintable()
    assert len(message) < 300


def assert_typed(conditions: tuple[Condition, ...], orderings: tuple[Ordering, ...]) -> None:
    for condition in conditions:
        assert isinstance(condition.column, Column)
        expected = int if condition.column is Column.ROLE else str
        assert type(condition.value) is expected
    for ordering in orderings:
        assert isinstance(ordering.column, Column)
        assert ordering.column is not Column.ID
        assert type(ordering.descending) is bool
    assert len({condition.column for condition in conditions}) == len(conditions)
    assert len({ordering.column for ordering in orderings}) == len(orderings)


# Near-misses of the grammars, so generated text reaches deep into both parsers.
PIECES = st.sampled_from(
    [
        "role", "email", "first_name", "last_name", "created_at", "id", "asc", "desc", "DESC",
        "AND", "OR", "NOT", ":", "=", "!=", "<", ",", "(", ")", '"', "\\", "\\\"", " ", "\t",
        "USER_ROLE_ADMIN", "USER_ROLE_USER", "a@b.c", "'", ";", "\x00", "é", "\u202e", "*",
    ]
)  # fmt: skip
GRAMMAR_LIKE = st.lists(PIECES, max_size=30).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=300), GRAMMAR_LIKE)


@settings(max_examples=300, deadline=None)
@given(filter_text=ANY_TEXT, order_text=ANY_TEXT)
def test_any_text_is_a_query_or_a_query_error(filter_text, order_text):
    try:
        conditions = parse_filter(filter_text)
        orderings = parse_order_by(order_text)
    except QueryError as refused:
        assert_safe_message(str(refused))
        return
    assert_typed(conditions, orderings)
    canonical_filter, canonical_order_by = canonical(conditions, orderings).split("\n")
    assert set(parse_filter(canonical_filter)) == set(conditions)
    assert parse_order_by(canonical_order_by) == orderings


def test_canonical_text_is_the_same_for_the_same_meaning():
    def of(filter_text: str, order_text: str) -> str:
        return canonical(parse_filter(filter_text), parse_order_by(order_text))

    same = of("role:USER_ROLE_ADMIN AND email:a@b.c", "created_at desc, email")
    assert same == 'email="a@b.c" AND role=USER_ROLE_ADMIN\ncreated_at desc, email'
    assert of(' email = "a@b.c"AND role=USER_ROLE_ADMIN ', " created_at desc,email asc") == same
    assert of("", "") == "\n"
    assert of("email:a@b.c", "") != of("", "email")
    assert of("role:USER_ROLE_ADMIN", "") != of("role:USER_ROLE_USER", "")
    assert of("", "email") != of("", "email desc")
    assert of("", "email, role") != of("", "role, email")


def test_canonical_quotes_strings_so_they_parse_back():
    conditions = parse_filter(r'first_name:"say \"hi\" \\o/ AND role:USER_ROLE_ADMIN"')
    text = canonical(conditions, ())
    assert text == 'first_name="say \\"hi\\" \\\\o/ AND role:USER_ROLE_ADMIN"\n'
    assert parse_filter(text.split("\n")[0]) == conditions


RECORD = UserRecord(
    id="u-7",
    email="ada@example.com",
    first_name="Ada",
    last_name="Lovelace",
    role=user_pb2.USER_ROLE_ADMIN,
    password_hash="$argon2id$...",
    created_at=1_700_000_000_000_000,
    updated_at=1_700_000_000_000_001,
    version=3,
)


def test_cursor_holds_the_ordering_values_then_the_id():
    orderings = parse_order_by("role desc, created_at, email, first_name, last_name, updated_at")
    assert cursor_after(RECORD, ListQuery(orderings=orderings)) == Cursor(
        values=(
            user_pb2.USER_ROLE_ADMIN,
            1_700_000_000_000_000,
            "ada@example.com",
            "Ada",
            "Lovelace",
            1_700_000_000_000_001,
        ),
        last_id="u-7",
    )
    assert cursor_after(RECORD, ListQuery()) == Cursor(values=(), last_id="u-7")
