"""Expressions too deep for one line, laid out exactly as ruff format lays them out.

Views describe constructor calls, lists and dicts as trees of the nodes below, with every
name already resolved; templates print them through the `expression` and `statement`
filters. The layout is ruff's (and black's) for brackets: the whole expression on one line
if it fits; else the bracket's contents on one indented line if they fit; else one item a
line with a trailing comma, each laid out the same way. A sole item never gets the comma.
An assignment's (or return's) right-hand side that is not bracketed and does not fit is put
in parentheses when it fits inside them. tests/unit/test_layout.py holds this to ruff.
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias

from protoc_gen_pyservice.model.plan import Literal
from protoc_gen_pyservice.render.filters import LINE_LENGTH, pyrepr

# A run of one character at least this long is written `"a" * 300` rather than in full.
_RUN = 8


class Name(NamedTuple):
    """An expression written as it is: a resolved name such as `user_pb2.UserRole.ADMIN`."""

    text: str


class Value(NamedTuple):
    """A literal, written with pyrepr (long runs of one character as a repetition)."""

    value: Literal


class Call(NamedTuple):
    function: str
    arguments: tuple[tuple[str, Expression], ...]  # (keyword, or "" or "**"; value)


class ListOf(NamedTuple):
    items: tuple[Expression, ...]


class DictOf(NamedTuple):
    entries: tuple[tuple[Expression, Expression], ...]


Expression: TypeAlias = "Name | Value | Call | ListOf | DictOf"


class Statement(NamedTuple):
    """`target = value`, `del target`, or `value` alone (a call)."""

    target: str
    value: Expression | None
    delete: bool = False


def flat(node: Expression) -> str:
    """The expression on one line."""
    if isinstance(node, Name):
        return node.text
    if isinstance(node, Value):
        return _literal(node.value)
    if isinstance(node, Call):
        return f"{node.function}({', '.join(_argument(k, v) for k, v in node.arguments)})"
    if isinstance(node, ListOf):
        return f"[{', '.join(flat(item) for item in node.items)}]"
    return "{" + ", ".join(f"{flat(key)}: {flat(value)}" for key, value in node.entries) + "}"


def expression(node: Expression, indent: int, lead: str = "", trail: str = "") -> str:
    """`lead`, the expression and `trail`, starting at column `indent`; continuation lines
    carry their full indentation, the first line none. A `lead` makes it a statement's
    right-hand side (`return `, `x = `)."""
    return _layout(node, indent, lead, trail, statement=bool(lead))


def statement(line: Statement, indent: int) -> str:
    if line.delete:
        return f"del {line.target}"
    assert line.value is not None
    if not line.target:
        return _layout(line.value, indent, "", "", statement=False)
    return _layout(line.value, indent, f"{line.target} = ", "", statement=True)


def _layout(node: Expression, indent: int, lead: str, trail: str, *, statement: bool) -> str:
    one_line = f"{lead}{flat(node)}{trail}"
    if indent + len(one_line) <= LINE_LENGTH:
        return one_line
    parts = _parts(node)
    split = None if parts is None else _split(parts, indent, lead, trail)
    if statement:
        # A right-hand side goes in parentheses when splitting it at its own brackets
        # leaves its first line too long (or it has none) and it then fits entirely.
        if split is None or indent + len(split.split("\n", 1)[0]) > LINE_LENGTH:
            inner = _layout(node, indent + 4, "", "", statement=False)
            wrapped = f"{lead}(\n{' ' * (indent + 4)}{inner}\n{' ' * indent}){trail}"
            # A concatenation can only break inside them, so it always takes them.
            if _fits(wrapped, indent) or len(_pieces(node)) > 1:
                return wrapped
        return one_line if split is None else split
    if split is not None:
        return split
    pieces = _pieces(node)
    # Inside brackets, a concatenation breaks before each `+`, the operands lined up.
    joined = "".join(f"\n{' ' * indent}+ {piece}" for piece in pieces[1:])
    return f"{lead}{pieces[0]}{joined}{trail}"


def _split(
    parts: tuple[str, list[tuple[str, Expression]], str], indent: int, lead: str, trail: str
) -> str:
    """The expression split at its own brackets."""
    opening, items, closing = parts
    pad = " " * (indent + 4)
    if len(items) == 1:
        prefix, child = items[0]
        body = _layout(child, indent + 4, prefix, "", statement=False)
    else:
        joined = ", ".join(prefix + flat(child) for prefix, child in items)
        # Call arguments may share a line; list and dict items never do.
        if opening.endswith("(") and indent + 4 + len(joined) <= LINE_LENGTH:
            body = joined
        else:
            body = f"\n{pad}".join(
                _layout(child, indent + 4, prefix, ",", statement=False) for prefix, child in items
            )
    return f"{lead}{opening}\n{pad}{body}\n{' ' * indent}{closing}{trail}"


def _fits(text: str, indent: int) -> bool:
    first, *rest = text.split("\n")
    return indent + len(first) <= LINE_LENGTH and all(len(line) <= LINE_LENGTH for line in rest)


def _parts(node: Expression) -> tuple[str, list[tuple[str, Expression]], str] | None:
    """A bracketed expression's opening, items (each with the text before it) and closing;
    None for what cannot be split."""
    if isinstance(node, Call) and node.arguments:
        items = [(_keyword(keyword), value) for keyword, value in node.arguments]
        return f"{node.function}(", items, ")"
    if isinstance(node, ListOf) and node.items:
        return "[", [("", item) for item in node.items], "]"
    if isinstance(node, DictOf) and node.entries:
        return "{", [(f"{flat(key)}: ", value) for key, value in node.entries], "}"
    return None


def _argument(keyword: str, value: Expression) -> str:
    return _keyword(keyword) + flat(value)


def _keyword(keyword: str) -> str:
    """What an argument starts with: `name=`, nothing for a positional one, or `**`."""
    return f"{keyword}=" if keyword and keyword != "**" else keyword


def _literal(value: Literal) -> str:
    return " + ".join(_literal_pieces(value))


def _pieces(node: Expression) -> list[str]:
    return _literal_pieces(node.value) if isinstance(node, Value) else [flat(node)]


def _literal_pieces(value: Literal) -> list[str]:
    """pyrepr, with long runs of one character written as repetitions: `"x" + "a" * 300`."""
    if not isinstance(value, str | bytes) or len(value) < _RUN:
        return [pyrepr(value)]
    pieces: list[str] = []
    start = 0
    index = 0
    while index < len(value):
        end = index
        while end < len(value) and value[end] == value[index]:
            end += 1
        if end - index >= _RUN:
            if start < index:
                pieces.append(pyrepr(value[start:index]))
            pieces.append(f"{pyrepr(value[index : index + 1])} * {end - index}")
            start = end
        index = end
    if start < len(value):
        pieces.append(pyrepr(value[start:]))
    return pieces
