"""ListUsers' `filter` and `order_by`, parsed into the store's typed query.

`filter` is a subset of AIP-160:

    filter = [term {"AND" term}]
    term   = field (":" | "=") value
    field  = "email" | "first_name" | "last_name" | "role"
    value  = bare | quoted
    bare   = 1*(letter | digit | "_" | "@" | "." | "+" | "-")
    quoted = '"' {any character but '"', '\\' or a control character | '\\"' | '\\\\'} '"'

Both `:` and `=` mean equality: AIP-160's `:` ("has") is equality on a scalar field. A role is
a UserRole name (`role:USER_ROLE_ADMIN`), never a number. `AND` is upper case, as in AIP-160;
OR, NOT, parentheses, comparisons and functions are not part of the subset. A field may appear
only once: `role:A AND role:B` can match nothing, so it is almost surely a mistaken OR, and
saying so helps the client more than an empty page would; it also bounds the terms to four.

`order_by` follows AIP-132: `field [asc|desc]` items separated by commas, directions in lower
case, each field once. `id` cannot be named: the store always ends the order with it as the
tie-break. Blank text means by id ascending.

Whitespace (space, tab, CR, LF) may surround every token. A `QueryError` goes back to the client
as its INVALID_ARGUMENT message, so it says what is wrong where (positions are 0-based offsets
into the text as sent) and quotes at most 40 escaped characters of the client's text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from user.v1 import user_pb2

from examples.userservice.store.base import Column, Condition, Ordering

MAX_FILTER_LENGTH = 1024
MAX_ORDER_BY_LENGTH = 256
_EXCERPT_LENGTH = 40

# Simple character classes only: matching is linear whatever the client sends.
_SPACE = re.compile(r"[ \t\r\n]*")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_VALUE = re.compile(r"[\w@.+-]+")
_TOKEN_END = frozenset(" \t\r\n")

_ROLES: Mapping[str, int] = dict(user_pb2.UserRole.items())
_DIRECTIONS = {"asc": False, "desc": True}


class QueryError(ValueError):
    """A filter or order_by the grammar refuses; the message is safe to send to the client."""


def _excerpt(text: str) -> str:
    """Client text fit for an error message: short, quoted and escaped to printable ASCII."""
    if len(text) > _EXCERPT_LENGTH:
        return ascii(text[:_EXCERPT_LENGTH]) + "..."
    return ascii(text)


@dataclass(frozen=True)
class _Grammar:
    name: str
    max_length: int
    fields: Mapping[str, Column]
    fields_help: str


_FILTER = _Grammar(
    "filter",
    MAX_FILTER_LENGTH,
    {
        column.value: column
        for column in (Column.EMAIL, Column.FIRST_NAME, Column.LAST_NAME, Column.ROLE)
    },
    "fields: email, first_name, last_name, role",
)
_ORDER_BY = _Grammar(
    "order_by",
    MAX_ORDER_BY_LENGTH,
    {
        column.value: column
        for column in (
            Column.CREATED_AT,
            Column.UPDATED_AT,
            Column.EMAIL,
            Column.FIRST_NAME,
            Column.LAST_NAME,
            Column.ROLE,
        )
    },
    "fields: created_at, updated_at, email, first_name, last_name, role"
    " (id always comes last, as the tie-break)",
)


class _Scanner:
    """A position in the client's text, with the token readers both grammars share."""

    def __init__(self, grammar: _Grammar, text: str) -> None:
        if len(text) > grammar.max_length:
            raise QueryError(
                f"{grammar.name}: {len(text)} characters, at most {grammar.max_length}"
            )
        self.grammar = grammar
        self.text = text
        self.pos = 0

    def error(self, message: str) -> QueryError:
        return QueryError(f"{self.grammar.name}: {message}")

    def at_end(self) -> bool:
        """Skip whitespace; True when nothing else is left."""
        match = _SPACE.match(self.text, self.pos)
        assert match is not None  # the pattern matches the empty string
        self.pos = match.end()
        return self.pos == len(self.text)

    def found(self) -> str:
        """What sits at the current position, for an error message."""
        if self.at_end():
            return "the end"
        end = self.pos
        while (
            end < len(self.text)
            and self.text[end] not in _TOKEN_END
            and end - self.pos <= _EXCERPT_LENGTH
        ):
            end += 1
        return _excerpt(self.text[self.pos : end])

    def expected(self, what: str, note: str = "") -> QueryError:
        """The error for text that is not `what`, at the current position."""
        found = self.found()
        return self.error(f"expected {what} at position {self.pos}, found {found}{note}")

    def next_char(self) -> str:
        """The next character after whitespace, or "" at the end; not consumed."""
        self.at_end()
        return self.text[self.pos : self.pos + 1]

    def word(self) -> str:
        """Read an identifier after whitespace; "" when none starts here."""
        self.at_end()
        match = _WORD.match(self.text, self.pos)
        if match is None:
            return ""
        self.pos = match.end()
        return match.group()

    def field(self, seen: Collection[Column]) -> Column:
        """Read a field name: one of the grammar's fields, not among `seen`."""
        self.at_end()
        start = self.pos
        name = self.word()
        if not name:
            raise self.expected("a field name")
        column = self.grammar.fields.get(name)
        if column is None:
            raise self.error(
                f"unknown field {_excerpt(name)} at position {start}; {self.grammar.fields_help}"
            )
        if column in seen:
            raise self.error(
                f"field '{name}' at position {start} is given twice; each field may appear once"
            )
        return column

    def quoted(self) -> str:
        """Read a double-quoted string whose only escapes are \\" and \\\\."""
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(chars)
            if char == "\\":
                escaped = self.text[self.pos + 1 : self.pos + 2]
                if escaped not in ('"', "\\"):
                    raise self.error(
                        f"unknown escape {_excerpt(char + escaped)} at position {self.pos};"
                        ' only \\" and \\\\ are allowed'
                    )
                chars.append(escaped)
                self.pos += 2
                continue
            if unicodedata.category(char) in ("Cc", "Cs"):
                raise self.error(
                    f"character {_excerpt(char)} at position {self.pos} is not allowed in a string"
                )
            chars.append(char)
            self.pos += 1
        raise self.error(f"unterminated string starting at position {start}")


def parse_filter(text: str) -> tuple[Condition, ...]:
    """The conditions of a ListUsers filter, in the order given; () for blank text."""
    scanner = _Scanner(_FILTER, text)
    conditions: dict[Column, Condition] = {}
    if scanner.at_end():
        return ()
    while True:
        condition = _term(scanner, conditions)
        conditions[condition.column] = condition
        if scanner.at_end():
            return tuple(conditions.values())
        start = scanner.pos
        if scanner.word() != "AND":
            scanner.pos = start
            raise scanner.expected(
                "'AND' or the end", "; terms can only be joined by AND (upper case)"
            )


def _term(scanner: _Scanner, seen: Collection[Column]) -> Condition:
    column = scanner.field(seen)
    if scanner.next_char() not in (":", "="):
        raise scanner.expected(f"':' or '=' after '{column.value}'")
    scanner.pos += 1
    quoted = scanner.next_char() == '"'
    start = scanner.pos
    value = scanner.quoted() if quoted else _bare_value(scanner, column)
    if column is not Column.ROLE:
        return Condition(column, value)
    role = _ROLES.get(value)
    if role is None:
        raise scanner.error(
            f"unknown role {_excerpt(value)} at position {start}; roles: {', '.join(_ROLES)}"
        )
    return Condition(column, role)


def _bare_value(scanner: _Scanner, column: Column) -> str:
    match = _BARE_VALUE.match(scanner.text, scanner.pos)
    if match is None:
        raise scanner.expected(f"a value for '{column.value}'")
    scanner.pos = match.end()
    return match.group()


def parse_order_by(text: str) -> tuple[Ordering, ...]:
    """The orderings of a ListUsers order_by; () for blank text, meaning by id ascending."""
    scanner = _Scanner(_ORDER_BY, text)
    orderings: dict[Column, Ordering] = {}
    if scanner.at_end():
        return ()
    while True:
        column = scanner.field(orderings)
        descending = False
        if scanner.next_char() not in ("", ","):
            start = scanner.pos
            direction = scanner.word()
            if direction not in _DIRECTIONS:
                scanner.pos = start
                case_note = (
                    "; directions are lower case" if direction.lower() in _DIRECTIONS else ""
                )
                raise scanner.expected(f"'asc' or 'desc' after '{column.value}'", case_note)
            descending = _DIRECTIONS[direction]
        orderings[column] = Ordering(column, descending)
        separator = scanner.next_char()
        if separator == "":
            return tuple(orderings.values())
        if separator != ",":
            raise scanner.expected("',' or the end")
        scanner.pos += 1


def canonical(conditions: tuple[Condition, ...], orderings: tuple[Ordering, ...]) -> str:
    """One text per meaning, to bind page tokens to their query: `role:X` and ` role = X `
    give the same. It is the canonical filter (terms sorted by field, `=`, strings in JSON
    quotes, roles by name), a newline, and the canonical order_by (`created_at desc, email`).
    Both halves parse back to what they came from, and neither ever holds a newline."""
    terms = (
        f"{condition.column.value}={_literal(condition.value)}"
        for condition in sorted(conditions, key=lambda condition: condition.column.value)
    )
    keys = (
        f"{ordering.column.value} desc" if ordering.descending else ordering.column.value
        for ordering in orderings
    )
    return " AND ".join(terms) + "\n" + ", ".join(keys)


def _literal(value: str | int) -> str:
    if isinstance(value, int):  # only a role is a number
        return user_pb2.UserRole.Name(value)
    # JSON quotes escape '"' and '\\' as the grammar does, and control characters too.
    return json.dumps(value, ensure_ascii=False)
