"""Compiled CEL (model/cel_ir.py) -> Python expression text, for the validate templates.

Python's own operators are used wherever they mean what CEL means (comparisons, `in`, `len`,
string methods, double arithmetic); int and uint arithmetic is range-checked through the
runtime's `cel` module, and so is everything that can fail in CEL's sense.
"""

from __future__ import annotations

import keyword
from typing import Any

from protoc_gen_pyservice.model import cel_ir as ir
from protoc_gen_pyservice.model.cel_ir import Node
from protoc_gen_pyservice.render.filters import pyrepr

# Python precedence, low to high.
_TERNARY, _OR, _AND, _NOT, _COMPARE, _ADD, _MUL, _UNARY, _ATOM = range(9)
_COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_MIRRORED = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_NEGATED = {"eq": "ne", "ne": "eq"}
_CALLS = {
    "is_email": "cel.is_email",
    "is_hostname": "cel.is_hostname",
    "is_ip": "cel.is_ip",
    "is_host_and_port": "cel.is_host_and_port",
    "is_uri": "cel.is_uri",
    "is_uri_ref": "cel.is_uri_ref",
    "is_nan": "cel.is_nan",
    "is_inf": "cel.is_inf",
    "unique": "cel.unique",
    "format": "cel.format_text",
    "to_int": "cel.to_int",
    "to_uint": "cel.to_uint",
    "to_double": "cel.to_double",
    "to_string": "cel.to_string",
    "to_bytes": "cel.to_bytes",
    "parse_duration": "cel.parse_duration",
    "parse_timestamp": "cel.parse_timestamp",
    "index_list": "cel.index_list",
    "index_map": "cel.index_map",
    "index_dyn": "cel.index_map",
    "matches": "cel.matches",
    "int_div": "cel.int_divide",
    "int_mod": "cel.int_modulo",
    "uint_div": "cel.uint_divide",
    "uint_mod": "cel.uint_modulo",
    "double_div": "cel.double_divide",
}
_CHECKED = {
    "int_add": ("cel.int64", "+"),
    "int_sub": ("cel.int64", "-"),
    "int_mul": ("cel.int64", "*"),
    "uint_add": ("cel.uint64", "+"),
    "uint_sub": ("cel.uint64", "-"),
    "uint_mul": ("cel.uint64", "*"),
    "timestamp_add": ("cel.timestamp", "+"),
    "timestamp_sub": ("cel.timestamp", "-"),
    "timestamp_diff": ("cel.duration", "-"),
    "duration_add": ("cel.duration", "+"),
    "duration_sub": ("cel.duration", "-"),
}


class ModuleConstants:
    """Module-level constants the expressions of one file use: precompiled patterns and the
    sets `in` tests against, each named once."""

    def __init__(self, prefix: str = "_CEL") -> None:
        self._prefix = prefix
        self.patterns: dict[str, str] = {}  # pattern -> name
        self.sets: dict[tuple[Any, ...], str] = {}  # members -> name

    def pattern(self, text: str) -> str:
        if text not in self.patterns:
            self.patterns[text] = f"{self._prefix}_PATTERN_{len(self.patterns) + 1}"
        return self.patterns[text]

    def member_set(self, members: tuple[Any, ...]) -> str:
        # Durations and timestamps are ints (nanoseconds): the set holds the plain numbers.
        plain = tuple(
            int(m) if isinstance(m, int) and not isinstance(m, bool) else m for m in members
        )
        key = tuple((type(member).__name__, member) for member in plain)
        if key not in self.sets:
            self.sets[key] = f"{self._prefix}_SET_{len(self.sets) + 1}"
        return self.sets[key]

    def set_members(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(name, tuple(member for _, member in key)) for key, name in self.sets.items()]


def python(node: Node, this: str, constants: ModuleConstants) -> str:
    """`node` as one Python expression; `this` is the Python expression of CEL's `this`."""
    return _Printer(this, constants).text(node, _TERNARY)


def condition(node: Node, this: str, constants: ModuleConstants) -> str:
    """A failure condition, with `not` pushed into comparisons Python can flip safely."""
    return python(node, this, constants)


class _Printer:
    def __init__(self, this: str, constants: ModuleConstants) -> None:
        self._this = this
        self._constants = constants
        self._loop_vars: list[str] = []  # of the comprehensions being printed, outermost first

    def text(self, node: Node, context: int) -> str:
        text, precedence = self._node(node)
        return f"({text})" if precedence < context else text

    def _node(self, node: Node) -> tuple[str, int]:
        if isinstance(node, ir.Const):
            return _literal(node.value), _ATOM
        if isinstance(node, ir.Ref):
            if node.name == "this":
                return self._this, _ATOM
            return ("cel.now()" if node.name == "now" else node.name), _ATOM
        if isinstance(node, ir.Select):
            return self._select(node), _ATOM
        if isinstance(node, ir.Has):
            operand = self.text(node.operand, _ATOM)
            if node.presence == "has_field":
                return f"{operand}.HasField({pyrepr(node.field)})", _ATOM
            field = _attribute(operand, node.field)
            if node.presence == "nonempty":
                return f"len({field}) > 0", _COMPARE
            return f"bool({field})", _ATOM
        if isinstance(node, ir.And | ir.Or):
            return self._logical(node)
        if isinstance(node, ir.Cond):
            test = self.text(node.test, _OR)
            then = self.text(node.then, _OR)
            otherwise = self.text(node.otherwise, _TERNARY)
            return f"{then} if {test} else {otherwise}", _TERNARY
        if isinstance(node, ir.ListLit):
            return "[" + ", ".join(self.text(item, _TERNARY) for item in node.items) + "]", _ATOM
        if isinstance(node, ir.MapLit):
            if not all(isinstance(key, ir.Const) for key, _ in node.pairs):
                # Keys known at run time: a repeated one is an error, not a quiet overwrite.
                pairs = ", ".join(
                    f"({self.text(k, _TERNARY)}, {self.text(v, _TERNARY)})" for k, v in node.pairs
                )
                return f"cel.make_map([{pairs}])", _ATOM
            pairs = ", ".join(
                f"{self.text(k, _TERNARY)}: {self.text(v, _TERNARY)}" for k, v in node.pairs
            )
            return "{" + pairs + "}", _ATOM
        if isinstance(node, ir.Comprehension):
            return self._comprehension(node)
        assert isinstance(node, ir.Op), node
        return self._op(node)

    def _select(self, node: ir.Select) -> str:
        operand = self.text(node.operand, _ATOM)
        field = _attribute(operand, node.field)
        if node.type.kind in ("list", "map"):
            return read_items(field, node.read, is_map=node.type.kind == "map")
        if node.read == "wrapper":  # an unset wrapper is CEL's null
            return f"({field}.value if {operand}.HasField({pyrepr(node.field)}) else None)"
        return read_value(field, node.read)

    def _logical(self, node: ir.And | ir.Or) -> tuple[str, int]:
        """CEL's && and || are commutative: `false && error` is false and `error || true` is
        true. Python's `and`/`or` honour that for operands that cannot fail before one that
        can; two or more that can fail go to cel.logical_and/or, each as a function."""
        conjunction = isinstance(node, ir.And)
        word, level = (" and ", _AND) if conjunction else (" or ", _OR)
        failing = [index for index, arg in enumerate(node.args) if _can_fail(arg)]
        safe = [arg for arg in node.args if not _can_fail(arg)]
        risky = [arg for arg in node.args if _can_fail(arg)]
        if failing in ([], [len(node.args) - 1]):
            return word.join(self.text(arg, level + 1) for arg in node.args), level
        if len(risky) == 1:
            return word.join(self.text(arg, level + 1) for arg in (*safe, *risky)), level
        helper = "cel.logical_and" if conjunction else "cel.logical_or"
        call = f"{helper}({', '.join(self._function((), arg) for arg in risky)})"
        if not safe:
            return call, _ATOM
        return word.join([*(self.text(arg, level + 1) for arg in safe), call]), level

    def _function(self, parameters: tuple[str, ...], body: Node) -> str:
        """`lambda parameters: body`, binding the loop variables of the comprehensions around
        it that the body reads (ruff's B023: a closure over a loop variable)."""
        names = _references(body)
        bound = [
            f"{var}={var}" for var in self._loop_vars if var in names and var not in parameters
        ]
        signature = ", ".join([*parameters, *bound])
        return f"lambda {signature}: {self.text(body, _TERNARY)}".replace("lambda : ", "lambda: ")

    def _comprehension(self, node: ir.Comprehension) -> tuple[str, int]:
        source = self.text(node.range, _OR)
        var = node.var
        if node.macro in ("exists_one", "all", "exists") and (
            node.macro == "exists_one" or _can_fail(node.body)
        ):
            # A predicate that can fail: all() and exists() still decide on a false or true
            # item whatever another item's error (CEL's && and || again).
            helper = {"exists_one": "exists_one", "all": "all_of", "exists": "any_of"}[node.macro]
            return f"cel.{helper}({source}, {self._function((var,), node.body)})", _ATOM
        self._loop_vars.append(var)
        try:
            body = self.text(node.body, _TERNARY)
            test = self.text(node.filter, _OR) if node.filter is not None else None
        finally:
            self._loop_vars.pop()
        if node.macro == "all":
            return f"all({body} for {var} in {source})", _ATOM
        if node.macro == "exists":
            return f"any({body} for {var} in {source})", _ATOM
        if node.macro == "filter":
            return f"[{var} for {var} in {source} if {body}]", _ATOM
        if test is not None:
            return f"[{body} for {var} in {source} if {test}]", _ATOM
        return f"[{body} for {var} in {source}]", _ATOM

    def _op(self, node: ir.Op) -> tuple[str, int]:
        op, args = node.op, node.args
        if op in _COMPARISONS:
            left, right = args
            if isinstance(left, ir.Const) and not isinstance(right, ir.Const):
                left, right, op = right, left, _MIRRORED[op]
            if (
                isinstance(right, ir.Const)
                and (right.value is None or isinstance(right.value, bool))
                and op in ("eq", "ne")
            ):
                # Identity for singletons: what `== None` or `!= False` mean, as ruff wants.
                word = "is" if op == "eq" else "is not"
                return f"{self.text(left, _COMPARE + 1)} {word} {_literal(right.value)}", _COMPARE
            if op in ("eq", "ne") and {left.type.kind, right.type.kind} & _AGGREGATES:
                # Python's == takes True for 1 and an item for itself, NaN included.
                shown_args = f"{self.text(left, _TERNARY)}, {self.text(right, _TERNARY)}"
                if op == "eq":
                    return f"cel.equal({shown_args})", _ATOM
                return f"not cel.equal({shown_args})", _NOT
            if "dyn" in (left.type.kind, right.type.kind):
                shown_args = f"{self.text(left, _TERNARY)}, {self.text(right, _TERNARY)}"
                return f"{_ORDERINGS[op]}({shown_args})", _ATOM
            shown = (self._number(left, right), self._number(right, left))
            return f"{shown[0]} {_COMPARISONS[op]} {shown[1]}", _COMPARE
        if op == "not":
            inner = args[0]
            if isinstance(inner, ir.Op) and inner.op in _NEGATED:
                return self._op(inner._replace(op=_NEGATED[inner.op]))
            if isinstance(inner, ir.Op) and inner.op in ("in_list", "in_map", "contains"):
                text, _ = self._membership(inner, negated=True)
                return text, _COMPARE
            return f"not {self.text(inner, _NOT)}", _NOT
        if op in ("in_list", "in_map", "contains"):
            return self._membership(node, negated=False)
        if op == "size":
            return f"len({self.text(args[0], _TERNARY)})", _ATOM
        if op == "starts_with":
            return f"{self.text(args[0], _ATOM)}.startswith({self.text(args[1], _TERNARY)})", _ATOM
        if op == "ends_with":
            return f"{self.text(args[0], _ATOM)}.endswith({self.text(args[1], _TERNARY)})", _ATOM
        if op == "matches_constant":
            return (
                f"{self._constants.pattern(node.constant)}({self.text(args[0], _TERNARY)})",
                _ATOM,
            )
        if op in ("double_add", "double_sub", "concat"):
            symbol = "-" if op == "double_sub" else "+"
            return f"{self.text(args[0], _ADD)} {symbol} {self.text(args[1], _ADD + 1)}", _ADD
        if op == "double_mul":
            return f"{self.text(args[0], _MUL)} * {self.text(args[1], _MUL + 1)}", _MUL
        if op == "list_concat":
            return f"[*{self.text(args[0], _UNARY)}, *{self.text(args[1], _UNARY)}]", _ATOM
        if op == "double_neg":
            return f"-{self.text(args[0], _UNARY)}", _UNARY
        if op in ("int_neg", "duration_neg"):
            wrapper = "cel.int64" if op == "int_neg" else "cel.duration"
            return f"{wrapper}(-{self.text(args[0], _UNARY)})", _ATOM
        if op in _CHECKED:
            wrapper, symbol = _CHECKED[op]
            first = self.text(args[0], _ADD)
            second = self.text(args[1], _MUL if symbol == "*" else _ADD + 1)
            return f"{wrapper}({first} {symbol} {second})", _ATOM
        if op in ("is_ip_prefix", "is_ip_prefix_strict"):
            shown_value = self.text(args[0], _TERNARY)
            version = next((a for a in args[1:] if a.type == ir.INT), None)
            strict = next((a for a in args[1:] if a.type == ir.BOOL), None)
            parts = [shown_value, self.text(version, _TERNARY) if version else "0"]
            if strict is not None:
                parts.append(self.text(strict, _TERNARY))
            return f"cel.is_ip_prefix({', '.join(parts)})", _ATOM
        if op == "identity":
            return self._node(args[0])
        if op == "error":
            return f"cel.fail({_literal(args[0].value)})", _ATOM  # type: ignore[attr-defined]
        if op.startswith(("timestamp_part:", "duration_part:")):
            kind, part = op.split(":")
            zone = "".join(f", {self.text(arg, _TERNARY)}" for arg in args[1:])
            return f"cel.{kind}({self.text(args[0], _TERNARY)}, {pyrepr(part)}{zone})", _ATOM
        if op in _CALLS:
            shown_args = ", ".join([self.text(argument, _TERNARY) for argument in args])
            return f"{_CALLS[op]}({shown_args})", _ATOM
        raise AssertionError(f"no Python for CEL overload {op}")

    def _number(self, node: Node, other: Node) -> str:
        """An operand of a comparison: an int or uint against a double compares as a double,
        as in cel-go and cel-cpp (Python would compare 2**53 + 1 and 2.0**53 exactly)."""
        if node.type.kind in ("int", "uint") and other.type.kind == "double":
            if isinstance(node, ir.Const):
                return _literal(float(node.value))
            return f"float({self.text(node, _TERNARY)})"
        return self.text(node, _COMPARE + 1)

    def _membership(self, node: ir.Op, *, negated: bool) -> tuple[str, int]:
        word = "not in" if negated else "in"
        if node.op == "contains":
            haystack, needle = node.args
        else:
            needle, haystack = node.args
        constant = isinstance(haystack, ir.Const) and isinstance(haystack.value, list)
        call = ""
        if node.op == "in_list" and (
            needle.type.kind in _AGGREGATES
            or (not constant and {needle.type.kind, _item_kind(haystack.type)} & _INEXACT)
            or (constant and _mixes_numbers(needle.type, haystack.value))  # type: ignore[attr-defined]
        ):
            # Python's `in` takes an item for itself (NaN too) and True for 1.
            call = f"cel.in_list({self.text(needle, _TERNARY)}, {self.text(haystack, _TERNARY)})"
        elif node.op == "in_map" and "dyn" in (needle.type.kind, haystack.type.params[0].kind):
            call = f"cel.has_key({self.text(haystack, _TERNARY)}, {self.text(needle, _TERNARY)})"
        if call:
            return (f"not {call}", _NOT) if negated else (call, _ATOM)
        if constant:
            members = tuple(haystack.value)  # type: ignore[attr-defined]
            if all(
                isinstance(m, str | bytes | int | float) and not isinstance(m, bool)
                for m in members
            ):
                container = self._constants.member_set(members)
            else:
                container = _literal(haystack.value)  # type: ignore[attr-defined]
        else:
            container = self.text(haystack, _COMPARE + 1)
        return f"{self.text(needle, _COMPARE + 1)} {word} {container}", _COMPARE


_AGGREGATES = frozenset({"list", "map", "dyn"})
_INEXACT = frozenset({"double", "dyn", "list", "map"})
# Overloads whose Python never raises EvaluationError (given operands that do not).
_CANNOT_FAIL = frozenset(
    {
        *_COMPARISONS,
        "not",
        "in_list",
        "in_map",
        "contains",
        "starts_with",
        "ends_with",
        "size",
        "matches_constant",
        "double_add",
        "double_sub",
        "double_mul",
        "double_div",
        "double_neg",
        "concat",
        "list_concat",
        "to_bytes",
        "identity",
        "is_email",
        "is_hostname",
        "is_ip",
        "is_ip_prefix",
        "is_ip_prefix_strict",
        "is_host_and_port",
        "is_uri",
        "is_uri_ref",
        "is_nan",
        "is_inf",
        "unique",
    }
)


_ORDERINGS = {
    "lt": "cel.less",
    "le": "cel.less_equal",
    "gt": "cel.greater",
    "ge": "cel.greater_equal",
}


def _mixes_numbers(needle: ir.CelType, members: list[Any]) -> bool:
    """An int against a double member, or a double against an int: CEL compares them as
    doubles, a Python set exactly."""
    if needle.kind == "double":
        return any(isinstance(m, int) and not isinstance(m, bool) for m in members)
    return needle.kind in ("int", "uint") and any(isinstance(m, float) for m in members)


def _item_kind(type_: ir.CelType) -> str:
    return type_.params[0].kind if type_.kind == "list" else "dyn"


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, ir.Select | ir.Has):
        return (node.operand,)
    if isinstance(node, ir.Op | ir.And | ir.Or):
        return node.args
    if isinstance(node, ir.Cond):
        return (node.test, node.then, node.otherwise)
    if isinstance(node, ir.ListLit):
        return node.items
    if isinstance(node, ir.MapLit):
        return tuple(part for pair in node.pairs for part in pair)
    if isinstance(node, ir.Comprehension):
        return (node.range, node.body) + ((node.filter,) if node.filter is not None else ())
    return ()


def _references(node: Node) -> set[str]:
    names = {node.name} if isinstance(node, ir.Ref) else set()
    for child in _children(node):
        names |= _references(child)
    return names


def _can_fail(node: Node) -> bool:
    """Whether evaluating `node` can raise EvaluationError (conservatively: yes unless known)."""
    if isinstance(node, ir.Op):
        safe = node.op in _CANNOT_FAIL or (
            node.op.startswith(("timestamp_part:", "duration_part:")) and len(node.args) == 1
        )
        if node.op == "to_double":
            safe = node.args[0].type.kind in ("int", "uint", "double")
        elif node.op == "to_string":
            safe = node.args[0].type.kind not in ("bytes", "dyn")
        if not safe:
            return True
    elif isinstance(node, ir.MapLit) and not all(isinstance(k, ir.Const) for k, _ in node.pairs):
        return True
    return any(_can_fail(child) for child in _children(node))


def read_value(source: str, read: str) -> str:
    """A field's Python value (`source`) as CEL sees it: see cel_ir.Select for `read`; a
    wrapper is read as its value (the caller knows it is set)."""
    if read == "duration":
        return f"cel.read_duration({source})"
    if read == "timestamp":
        return f"cel.read_timestamp({source})"
    if read == "wrapper":
        return f"{source}.value"
    return source


def read_items(source: str, read: str, *, is_map: bool) -> str:
    """A repeated or map field's items as CEL values, or `source` itself when they are."""
    if read == "plain":
        return source
    item = read_value("x", read)
    if is_map:
        return f"{{k: {item} for k, x in {source}.items()}}"
    return f"[{item} for x in {source}]"


def _attribute(operand: str, field: str) -> str:
    if keyword.iskeyword(field):
        return f"getattr({operand}, {pyrepr(field)})"
    return f"{operand}.{field}"


def _literal(value: Any) -> str:
    from protoc_gen_pyservice.runtime import cel

    if isinstance(value, cel.Duration):
        return f"cel.Duration({int(value)})"
    if isinstance(value, cel.Timestamp):
        return f"cel.Timestamp({int(value)})"
    if isinstance(value, float):
        if value != value:
            return 'float("nan")'
        if value in (float("inf"), float("-inf")):
            return 'float("inf")' if value > 0 else '-float("inf")'
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str | bytes | bool | int | float):
        return pyrepr(value)
    return repr(value)
