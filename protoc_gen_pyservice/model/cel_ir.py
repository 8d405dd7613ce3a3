"""The typed form of a compiled CEL expression: what the checker (cel_check.py) produces and
render/cel.py prints as Python. Plain frozen data, like the rest of the model.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol


class CelType(NamedTuple):
    """A CEL type: `kind` is int, uint, double, bool, string, bytes, null, duration,
    timestamp, list, map, message, dyn or type; lists and maps carry their parameters."""

    kind: str
    params: tuple[CelType, ...] = ()
    message: str = ""  # the message type's full name

    def __str__(self) -> str:
        if self.kind == "message":
            return self.message
        if self.params:
            return f"{self.kind}({', '.join(str(param) for param in self.params)})"
        return self.kind


INT = CelType("int")
UINT = CelType("uint")
DOUBLE = CelType("double")
BOOL = CelType("bool")
STRING = CelType("string")
BYTES = CelType("bytes")
NULL = CelType("null")
DURATION = CelType("duration")
TIMESTAMP = CelType("timestamp")
DYN = CelType("dyn")
TYPE = CelType("type")


def list_of(item: CelType) -> CelType:
    return CelType("list", (item,))


def map_of(key: CelType, value: CelType) -> CelType:
    return CelType("map", (key, value))


def message(full_name: str) -> CelType:
    return CelType("message", message=full_name)


class Const(NamedTuple):
    value: Any  # the value as runtime/cel.py represents it
    type: CelType


class Ref(NamedTuple):
    """A variable: `this`, `now`, or a macro's iteration variable (by its Python name)."""

    name: str
    type: CelType


class Select(NamedTuple):
    """`operand.field` on a message. `read` says how the field's Python value becomes its CEL
    value: plain, duration, timestamp, wrapper (null when unset) or enum."""

    operand: Node
    field: str
    read: str
    type: CelType


class Has(NamedTuple):
    """`has(operand.field)`: `presence` is has_field, nonempty (repeated, map) or nonzero."""

    operand: Node
    field: str
    presence: str
    type: CelType = BOOL


class Op(NamedTuple):
    """A function or operator, named by the overload render/cel.py prints."""

    op: str
    args: tuple[Node, ...]
    type: CelType
    constant: str = ""  # a module-level constant the overload uses (a precompiled pattern)


class And(NamedTuple):
    args: tuple[Node, ...]
    type: CelType = BOOL


class Or(NamedTuple):
    args: tuple[Node, ...]
    type: CelType = BOOL


class Cond(NamedTuple):
    test: Node
    then: Node
    otherwise: Node
    type: CelType


class ListLit(NamedTuple):
    items: tuple[Node, ...]
    type: CelType


class MapLit(NamedTuple):
    pairs: tuple[tuple[Node, Node], ...]
    type: CelType


class Comprehension(NamedTuple):
    """A macro: all, exists, exists_one, map (with an optional filter) or filter."""

    macro: str
    var: str
    range: Node
    body: Node
    filter: Node | None
    type: CelType


class Node(Protocol):
    """Any IR node: every node has a CEL type. A Protocol rather than the union of the node
    types, which mypy takes minutes to join in the checker's recursive code."""

    @property
    def type(self) -> CelType: ...
