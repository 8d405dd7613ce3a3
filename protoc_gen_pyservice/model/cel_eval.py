"""Compiled CEL (cel_ir.py) evaluated at generation time, on plain values.

The testing module's examples must pass, or break exactly one of, the compiled protovalidate
rules; the solver (solve.py) tries candidate values with this. It evaluates with the same
runtime functions constant folding uses, so an example's outcome is the generated
validator's. Only values a field can hold are supported (no messages: `this` of a message
rule is not solved).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from protoc_gen_pyservice.model import cel_ir as ir
from protoc_gen_pyservice.model.cel_check import FOLDABLE
from protoc_gen_pyservice.model.cel_ir import Node
from protoc_gen_pyservice.runtime import cel


class Unsupported(Exception):
    """The expression needs something examples do not model (a message, the clock)."""


def evaluate(node: Node, variables: Mapping[str, Any]) -> Any:
    """The value of `node`; raises cel.EvaluationError as the generated code would, and
    Unsupported for what examples cannot evaluate."""
    if isinstance(node, ir.Const):
        return node.value
    if isinstance(node, ir.Ref):
        if node.name not in variables:
            raise Unsupported(node.name)
        return variables[node.name]
    if isinstance(node, ir.And):
        return all(evaluate(arg, variables) for arg in node.args)
    if isinstance(node, ir.Or):
        return any(evaluate(arg, variables) for arg in node.args)
    if isinstance(node, ir.Cond):
        branch = node.then if evaluate(node.test, variables) else node.otherwise
        return evaluate(branch, variables)
    if isinstance(node, ir.ListLit):
        return [evaluate(item, variables) for item in node.items]
    if isinstance(node, ir.MapLit):
        return {evaluate(k, variables): evaluate(v, variables) for k, v in node.pairs}
    if isinstance(node, ir.Comprehension):
        return _comprehension(node, variables)
    if isinstance(node, ir.Select | ir.Has):
        operand = evaluate(node.operand, variables)
        if not isinstance(operand, MessageView):
            raise Unsupported("a field of a message")
        if isinstance(node, ir.Has):
            return operand.has(node.field)
        return operand.field(node.field)
    if isinstance(node, ir.Op):
        if node.op == "matches_constant":
            return cel.matches(evaluate(node.args[0], variables), node.constant)
        function = FOLDABLE.get(node.op)
        if function is None:
            raise Unsupported(node.op)
        return function(*(evaluate(arg, variables) for arg in node.args))
    raise Unsupported(type(node).__name__)  # Select, Has: fields of messages


class MessageView:
    """A message's scalar fields as CEL sees them, for rules on the message (`this.a < this.b`):
    the values set, and each unset field's default."""

    def __init__(self, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        self._values = values
        self._defaults = defaults

    def field(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        if name in self._defaults:
            return self._defaults[name]
        raise Unsupported(f"field {name}")

    def has(self, name: str) -> bool:
        value = self._values.get(name)
        return name in self._values and value not in (None, "", b"", 0, False, [], {})


def walk(node: Node) -> Iterator[Node]:
    """`node` and every node inside it, parents first."""
    pending = [node]
    while pending:
        current = pending.pop(0)
        yield current
        pending += list(_children(current))


def fields_read(node: Node) -> list[str]:
    """The fields of `this` an expression on a message reads, in order of first use."""
    found: list[str] = []
    for current in walk(node):
        if (
            isinstance(current, ir.Select | ir.Has)
            and isinstance(current.operand, ir.Ref)
            and current.operand.name == "this"
            and current.field not in found
        ):
            found.append(current.field)
    return found


def _comprehension(node: ir.Comprehension, variables: Mapping[str, Any]) -> Any:
    source = evaluate(node.range, variables)

    def each(item: Any, body: Node) -> Any:
        return evaluate(body, {**variables, node.var: item})

    if node.macro == "all":
        return all(each(item, node.body) for item in source)
    if node.macro == "exists":
        return any(each(item, node.body) for item in source)
    if node.macro == "exists_one":
        return sum(1 for item in source if each(item, node.body)) == 1
    if node.macro == "filter":
        return [item for item in source if each(item, node.body)]
    test = node.filter
    return [each(item, node.body) for item in source if test is None or each(item, test)]


def constants(node: Node) -> Iterator[Any]:
    """Every constant in `node` (patterns as ("pattern", text)): seeds for the solver."""
    if isinstance(node, ir.Const):
        if isinstance(node.value, list):
            yield from node.value
        else:
            yield node.value
        return
    if isinstance(node, ir.Op) and node.op == "matches_constant":
        yield ("pattern", node.constant)
    for part in _children(node):
        yield from constants(part)


def _children(node: Node) -> Iterator[Node]:
    parts: tuple[Any, ...] = node  # type: ignore[assignment]  # every node is a NamedTuple
    for value in parts:
        if isinstance(value, ir.CelType) or not isinstance(value, tuple):
            continue
        if hasattr(value, "type"):
            yield value
            continue
        for item in value:
            if isinstance(item, tuple) and hasattr(item, "type"):
                yield item
            elif isinstance(item, tuple):  # a map literal's (key, value) pair
                yield from (pair for pair in item if hasattr(pair, "type"))
