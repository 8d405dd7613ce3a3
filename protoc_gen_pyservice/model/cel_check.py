"""CEL expressions -> typed IR (cel_ir.py), type-checked, with what the rules fix folded away.

cel-python's parser (Lark, the compiler side only) reads the text; this module resolves every
name and overload against the message types, rejects what CEL's checker rejects (undeclared
names, unknown fields, no matching overload), and evaluates each part that depends only on
constants (`rules`, `rule`, literals) with the runtime's own CEL functions, so that a standard
rule such as `uint(this.size()) < rules.min_len ? '...'.format([rules.min_len]) : ''` becomes
`len(this) < 3` with its message already written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypeGuard

from protoc_gen_pyservice.model import cel_ir as ir
from protoc_gen_pyservice.model.cel_ir import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    TYPE,
    UINT,
    CelType,
    Node,
)
from protoc_gen_pyservice.runtime import cel

_NUMBERS = frozenset({"int", "uint", "double"})
_ORDERED = frozenset({"int", "uint", "double", "string", "bytes", "bool", "duration", "timestamp"})


class CelCompileError(Exception):
    """The expression does not parse or type-check; the message says where and why."""


class FieldInfo(NamedTuple):
    type: CelType
    read: str  # how Select reads it (see cel_ir.Select)
    presence: str  # how has() tests it (see cel_ir.Has)


class Variable(NamedTuple):
    type: CelType
    value: Any = None
    constant: bool = False


MessageFields = Callable[[str], Mapping[str, FieldInfo] | None]


def parse(text: str) -> Any:
    """The Lark tree of `text`, or CelCompileError with the parser's reason."""
    import lark
    from celpy.celparser import CELParseError, CELParser

    try:
        return CELParser().parse(text)
    except (CELParseError, lark.exceptions.LarkError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CelCompileError(f"does not parse: {reason}") from None


def compile_expression(
    text: str,
    variables: Mapping[str, Variable],
    fields_of: MessageFields,
    pattern: Callable[[str], str],
) -> Node:
    """The checked, folded IR of `text`. `pattern(regex)` names the module constant a
    constant `matches()` pattern compiles to."""
    checker = _Checker(variables, fields_of, pattern)
    node = checker.visit(parse(text))
    if _is_error(node):
        raise CelCompileError(f"fails for every input: {node.args[0].value}")  # type: ignore[attr-defined]
    return node


def _error(message: str, type_: CelType) -> Node:
    """A part that is an error whatever the input (`1 / 0`). It is no compile error by itself:
    CEL's && and || and the untaken branch of ?: can still decide the result without it."""
    return ir.Op("error", (ir.Const(message, STRING),), type_)


def _is_error(node: Node) -> TypeGuard[ir.Op]:
    # A TypeGuard, not a bool: `_replace` on the whole Node union costs mypy minutes.
    return isinstance(node, ir.Op) and node.op == "error"


def _first_error(nodes: Iterable[Node]) -> ir.Op | None:
    for node in nodes:
        if _is_error(node):
            return node
    return None


def constant_value(value: Any, type_: CelType) -> ir.Const:
    return ir.Const(value, type_)


class _Checker:
    def __init__(
        self,
        variables: Mapping[str, Variable],
        fields_of: MessageFields,
        pattern: Callable[[str], str],
    ) -> None:
        self._scopes: list[dict[str, Node]] = [
            {
                name: ir.Const(variable.value, variable.type)
                if variable.constant
                else ir.Ref(name, variable.type)
                for name, variable in variables.items()
            }
        ]
        self._fields_of = fields_of
        self._pattern = pattern
        self._macro_vars = 0

    # Tree walking.

    def visit(self, tree: Any) -> Node:
        method = getattr(self, "_" + tree.data, None)
        if method is None:
            raise CelCompileError(f"unsupported syntax: {tree.data}")
        return method(tree)  # type: ignore[no-any-return]

    def _expr(self, tree: Any) -> Node:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        test, then, otherwise = (self.visit(child) for child in tree.children)
        self._want(test, BOOL, "?:")
        if not _assignable(then.type, otherwise.type):
            raise CelCompileError(f"?: branches have types {then.type} and {otherwise.type}")
        if isinstance(test, ir.Const):
            if test.value:
                return then
            return otherwise
        if isinstance(test, ir.Op) and test.op == "error":
            return ir.Op(test.op, test.args, _join(then.type, otherwise.type), test.constant)
        return ir.Cond(test, then, otherwise, _join(then.type, otherwise.type))

    def _conditionalor(self, tree: Any) -> Node:
        return self._logical(tree, "||")

    def _conditionaland(self, tree: Any) -> Node:
        return self._logical(tree, "&&")

    def _logical(self, tree: Any, operator: str) -> Node:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        left, right = (self.visit(child) for child in tree.children)
        self._want(left, BOOL, operator)
        self._want(right, BOOL, operator)
        absorbing = operator == "||"  # true absorbs ||, false absorbs &&
        # CEL's logic is commutative: a constant absorbing value wins even over an error on
        # the other side; the neutral value leaves the other side alone.
        if isinstance(left, ir.Const):
            return left if left.value is absorbing else right
        if isinstance(right, ir.Const):
            return right if right.value is absorbing else left
        parts: list[Node] = []
        node_type: type[ir.Or] | type[ir.And] = ir.Or if absorbing else ir.And
        for side in (left, right):
            parts += side.args if isinstance(side, node_type) else [side]
        return node_type(tuple(parts))

    def _relation(self, tree: Any) -> Node:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        operator_node, right_tree = tree.children
        left = self.visit(operator_node.children[0])
        right = self.visit(right_tree)
        operator = operator_node.data.removeprefix("relation_")
        if operator == "in":
            return self._in(left, right)
        if operator in ("eq", "ne"):
            if not _comparable(left.type, right.type):
                raise CelCompileError(
                    f"no matching overload for {_SYMBOLS[operator]} on {left.type}, {right.type}"
                )
            return self._fold(operator, (left, right), BOOL)
        if not (
            left.type.kind in _ORDERED
            and right.type.kind in _ORDERED
            and (
                left.type.kind == right.type.kind
                or (left.type.kind in _NUMBERS and right.type.kind in _NUMBERS)
            )
        ) and DYN not in (left.type, right.type):
            raise CelCompileError(
                f"no matching overload for {_SYMBOLS[operator]} on {left.type}, {right.type}"
            )
        return self._fold(operator, (left, right), BOOL)

    def _in(self, item: Node, container: Node) -> Node:
        kind = container.type.kind
        if kind == "list":
            element = container.type.params[0]
            if not _comparable(item.type, element):
                raise CelCompileError(
                    f"no matching overload for in on {item.type}, {container.type}"
                )
            return self._fold("in_list", (item, container), BOOL)
        if kind == "map":
            if not _comparable(item.type, container.type.params[0]):
                raise CelCompileError(
                    f"no matching overload for in on {item.type}, {container.type}"
                )
            return self._fold("in_map", (item, container), BOOL)
        if kind == "dyn":
            return self._fold("in_list", (item, container), BOOL)
        raise CelCompileError(f"no matching overload for in on {item.type}, {container.type}")

    def _addition(self, tree: Any) -> Node:
        return self._arithmetic(tree)

    def _multiplication(self, tree: Any) -> Node:
        return self._arithmetic(tree)

    def _arithmetic(self, tree: Any) -> Node:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        operator_node, right_tree = tree.children
        left = self.visit(operator_node.children[0])
        right = self.visit(right_tree)
        operator = operator_node.data.split("_", 1)[1]
        kinds = (left.type.kind, right.type.kind)
        if kinds[0] == kinds[1] and kinds[0] in _NUMBERS:
            if operator == "mod" and kinds[0] == "double":
                raise CelCompileError("no matching overload for % on double, double")
            return self._fold(f"{kinds[0]}_{operator}", (left, right), left.type)
        if operator == "add" and kinds[0] == kinds[1] and kinds[0] in ("string", "bytes"):
            return self._fold("concat", (left, right), left.type)
        if operator == "add" and kinds == ("list", "list"):
            return self._fold("list_concat", (left, right), _join(left.type, right.type))
        time_kinds = {
            ("add", "timestamp", "duration"): ("timestamp_add", TIMESTAMP),
            ("add", "duration", "timestamp"): ("timestamp_add", TIMESTAMP),
            ("add", "duration", "duration"): ("duration_add", DURATION),
            ("sub", "timestamp", "duration"): ("timestamp_sub", TIMESTAMP),
            ("sub", "timestamp", "timestamp"): ("timestamp_diff", DURATION),
            ("sub", "duration", "duration"): ("duration_sub", DURATION),
        }
        found = time_kinds.get((operator, *kinds))
        if found is not None:
            return self._fold(found[0], (left, right), found[1])
        if DYN in (left.type, right.type):
            return self._fold(f"dyn_{operator}", (left, right), DYN)
        raise CelCompileError(
            f"no matching overload for {_SYMBOLS[operator]} on {left.type}, {right.type}"
        )

    def _unary(self, tree: Any) -> Node:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        operator, operand_tree = tree.children
        operand = self.visit(operand_tree)
        if operator.data == "unary_not":
            self._want(operand, BOOL, "!")
            return self._fold("not", (operand,), BOOL)
        if operand.type.kind in ("int", "double", "duration"):
            return self._fold(f"{operand.type.kind}_neg", (operand,), operand.type)
        raise CelCompileError(f"no matching overload for -_ on {operand.type}")

    def _member(self, tree: Any) -> Node:
        return self.visit(tree.children[0])

    def _primary(self, tree: Any) -> Node:
        return self.visit(tree.children[0])

    def _paren_expr(self, tree: Any) -> Node:
        return self.visit(tree.children[0])

    def _ident(self, tree: Any) -> Node:
        name = str(tree.children[0])
        for scope in reversed(self._scopes):
            if name in scope:
                found: Node = scope[name]
                return found
        if name in _TYPE_NAMES:
            return ir.Const(name, TYPE)
        raise CelCompileError(f"undeclared reference to {name!r}")

    def _dot_ident(self, tree: Any) -> Node:
        return self._ident(tree)

    def _literal(self, tree: Any) -> Node:
        token = tree.children[0]
        text = str(token)
        kind = token.type
        if kind == "INT_LIT":
            value = int(text, 16) if "x" in text.lower() else int(text)
            if text.lower().startswith("-0x"):
                value = -int(text[3:], 16)
            if not cel.INT64_MIN <= value <= cel.INT64_MAX:
                raise CelCompileError(f"int literal {text} out of range")
            return ir.Const(value, INT)
        if kind == "UINT_LIT":
            digits = text[:-1]
            value = int(digits, 16) if "x" in digits.lower() else int(digits)
            if not 0 <= value <= cel.UINT64_MAX:
                raise CelCompileError(f"uint literal {text} out of range")
            return ir.Const(value, UINT)
        if kind == "FLOAT_LIT":
            return ir.Const(float(text), DOUBLE)
        if kind in ("STRING_LIT", "MLSTRING_LIT"):
            return ir.Const(_string_literal(text), STRING)
        if kind == "BYTES_LIT":
            return ir.Const(_bytes_literal(text[1:]), BYTES)
        if kind == "BOOL_LIT":
            return ir.Const(text == "true", BOOL)
        if kind == "NULL_LIT":
            return ir.Const(None, NULL)
        raise CelCompileError(f"unsupported literal {text}")

    def _list_lit(self, tree: Any) -> Node:
        items = self._arguments(tree.children[0] if tree.children else None)
        item_type = _join_all([item.type for item in items])
        node_type = ir.list_of(item_type)
        failing = _first_error(items)
        if failing is not None:
            return failing._replace(type=node_type)
        if all(isinstance(item, ir.Const) for item in items):
            return ir.Const([item.value for item in items], node_type)  # type: ignore[attr-defined]
        return ir.ListLit(tuple(items), node_type)

    def _map_lit(self, tree: Any) -> Node:
        pairs: list[tuple[Node, Node]] = []
        if tree.children:
            values = [self.visit(child) for child in tree.children[0].children]
            pairs = list(zip(values[::2], values[1::2], strict=True))
        for key, _ in pairs:
            if key.type.kind not in _MAP_KEYS:
                raise CelCompileError(f"map keys must be int, uint, bool or string, not {key.type}")
        key_type = _join_all([key.type for key, _ in pairs])
        value_type = _join_all([value.type for _, value in pairs])
        node_type = ir.map_of(key_type, value_type)
        failing = _first_error(part for pair in pairs for part in pair)
        if failing is not None:
            return failing._replace(type=node_type)
        if all(isinstance(k, ir.Const) for k, _ in pairs):
            keys = [(k.type.kind, k.value) for k, _ in pairs]  # type: ignore[attr-defined]
            if any(
                isinstance(key, float | bytes) or not isinstance(key, int | str) for _, key in keys
            ):
                return _error("invalid map key type", node_type)  # a dyn() of another type
            if len(set(keys)) != len(keys):
                return _error("duplicate map key", node_type)
            if len({value for _, value in keys}) != len(keys):
                # 1, 1u and true are three keys in CEL and one in a Python dict.
                raise CelCompileError("map keys of different types that are equal in Python")
            if all(isinstance(v, ir.Const) for _, v in pairs):
                return ir.Const({k.value: v.value for k, v in pairs}, node_type)  # type: ignore[attr-defined]
        return ir.MapLit(tuple(pairs), node_type)

    def _member_index(self, tree: Any) -> Node:
        operand = self.visit(tree.children[0])
        index = self.visit(tree.children[1])
        kind = operand.type.kind
        if kind == "list":
            if index.type.kind not in ("int", "uint", "dyn"):
                raise CelCompileError(f"list index must be an int, not {index.type}")
            return self._fold("index_list", (operand, index), operand.type.params[0])
        if kind == "map":
            if not _comparable(index.type, operand.type.params[0]):
                raise CelCompileError(f"map key must be {operand.type.params[0]}, not {index.type}")
            return self._fold("index_map", (operand, index), operand.type.params[1])
        if kind == "dyn":
            return self._fold("index_dyn", (operand, index), DYN)
        raise CelCompileError(f"{operand.type} cannot be indexed")

    def _member_object(self, tree: Any) -> Node:
        raise CelCompileError("message construction is not supported in validation rules")

    def _member_dot(self, tree: Any) -> Node:
        operand = self.visit(tree.children[0])
        return self._select(operand, str(tree.children[1]))

    def _select(self, operand: Node, name: str) -> Node:
        kind = operand.type.kind
        if kind == "map":
            if operand.type.params[0].kind not in ("string", "dyn"):
                raise CelCompileError(f"{operand.type} has no field {name!r}")
            key = ir.Const(name, STRING)
            return self._fold("index_map", (operand, key), operand.type.params[1])
        if kind != "message":
            raise CelCompileError(f"{operand.type} has no field {name!r}")
        info = self._field(operand.type, name)
        if isinstance(operand, ir.Const):
            if info.read == "wrapper":
                unset = not operand.value.HasField(name)
                return ir.Const(None if unset else getattr(operand.value, name).value, info.type)
            return ir.Const(_read_constant(getattr(operand.value, name), info), info.type)
        return ir.Select(operand, name, info.read, info.type)

    def _field(self, message_type: CelType, name: str) -> FieldInfo:
        fields = self._fields_of(message_type.message)
        if fields is None or name not in fields:
            raise CelCompileError(f"{message_type.message} has no field {name!r}")
        return fields[name]

    def _ident_arg(self, tree: Any) -> Node:
        name = str(tree.children[0])
        argument_tree = tree.children[1] if len(tree.children) > 1 else None
        if name == "has":
            return self._has(argument_tree)
        arguments = self._arguments(argument_tree)
        return self._call(name, None, arguments)

    def _dot_ident_arg(self, tree: Any) -> Node:
        return self._ident_arg(tree)

    def _member_dot_arg(self, tree: Any) -> Node:
        name = str(tree.children[1])
        argument_tree = tree.children[2] if len(tree.children) > 2 else None
        if name in _MACROS:
            return self._macro(name, tree.children[0], argument_tree)
        target = self.visit(tree.children[0])
        return self._call(name, target, self._arguments(argument_tree))

    def _arguments(self, tree: Any) -> list[Node]:
        if tree is None:
            return []
        return [self.visit(child) for child in tree.children]

    def _has(self, tree: Any) -> Node:
        arguments = tree.children if tree is not None else []
        select = _unwrap_select(arguments[0]) if len(arguments) == 1 else None
        if select is None:
            raise CelCompileError("has() takes one field selection, such as has(this.name)")
        operand = self.visit(select.children[0])
        name = str(select.children[1])
        if operand.type.kind == "map":
            return self._in(ir.Const(name, STRING), operand)
        if operand.type.kind != "message":
            raise CelCompileError(f"has() needs a message field, not a field of {operand.type}")
        info = self._field(operand.type, name)
        if isinstance(operand, ir.Const):
            return ir.Const(_has_constant(operand.value, name, info), BOOL)
        return ir.Has(operand, name, info.presence)

    def _macro(self, name: str, target_tree: Any, argument_tree: Any) -> Node:
        target = self.visit(target_tree)
        result = self._comprehension(name, target, argument_tree)
        if _is_error(target):
            return target._replace(type=result.type)
        return result

    def _comprehension(self, name: str, target: Node, argument_tree: Any) -> Node:
        arguments = argument_tree.children if argument_tree is not None else []
        expected = (2, 3) if name == "map" else (2,)
        if len(arguments) not in expected:
            raise CelCompileError(f"{name}() takes {' or '.join(map(str, expected))} arguments")
        variable = _unwrap_ident(arguments[0])
        if variable is None:
            raise CelCompileError(f"{name}()'s first argument must be a variable name")
        kind = target.type.kind
        if kind == "list" or kind == "map":
            item_type = target.type.params[0]
        elif kind == "dyn":
            item_type = DYN
        else:
            raise CelCompileError(f"{name}() needs a list or map, not {target.type}")
        self._macro_vars += 1
        python_name = f"item{self._macro_vars}_{variable}"
        self._scopes.append({variable: ir.Ref(python_name, item_type)})
        try:
            parts = [self.visit(argument) for argument in arguments[1:]]
        finally:
            self._scopes.pop()
        body = parts[-1]
        condition = parts[0] if len(parts) == 2 else None
        if name in ("all", "exists", "exists_one", "filter"):
            self._want(body, BOOL, f"{name}()")
        if condition is not None:
            self._want(condition, BOOL, "map()")
        if name == "filter":
            result_type = ir.list_of(item_type)
        elif name == "map":
            result_type = ir.list_of(body.type)
        else:
            result_type = BOOL
        return ir.Comprehension(name, python_name, target, body, condition, result_type)

    # Functions.

    def _call(self, name: str, target: Node | None, arguments: list[Node]) -> Node:
        kinds = tuple(argument.type.kind for argument in arguments)
        target_kind = target.type.kind if target is not None else None
        receiver = [target] if target is not None else []
        key = (name, target_kind, kinds)
        overload = _OVERLOADS.get(key)
        if overload is None and target is None and arguments:
            overload = _CONVERSIONS.get((name, kinds[0])) if len(arguments) == 1 else None
        if overload is None and name == "format" and target_kind == "string" and kinds == ("list",):
            overload = ("format", STRING)
        sized = [argument.type.kind for argument in (*receiver, *arguments)]
        if overload is None and name == "size" and sized in _SIZED:
            overload = ("size", INT)
        if overload is None and name == "getField" and target is None and len(arguments) == 2:
            return self._get_field(arguments[0], arguments[1])
        if overload is None and name == "unique" and target_kind == "list" and not arguments:
            overload = ("unique", BOOL)
        if (
            overload is None
            and name == "matches"
            and target_kind == "string"
            and kinds == ("string",)
        ):
            pattern = arguments[0]
            if isinstance(pattern, ir.Const) and not isinstance(target, ir.Const):
                try:
                    cel.regex(pattern.value)
                except cel.EvaluationError as error:
                    return _error(str(error), BOOL)
                return ir.Op("matches_constant", (target,), BOOL, self._pattern(pattern.value))  # type: ignore[arg-type]
            overload = ("matches", BOOL)
        if overload is None:
            shown = ", ".join(str(argument.type) for argument in arguments)
            on = f"{target.type}." if target is not None else ""
            raise CelCompileError(f"no matching overload for {on}{name}({shown})")
        op, result = overload
        return self._fold(op, (*receiver, *arguments), result)

    def _get_field(self, message_node: Node, name_node: Node) -> Node:
        if message_node.type.kind != "message" or not isinstance(name_node, ir.Const):
            raise CelCompileError("getField() takes a message and a constant field name")
        return self._select(message_node, str(name_node.value))

    # Folding.

    def _fold(self, op: str, args: tuple[Node, ...], result: CelType) -> Node:
        failing = _first_error(args)
        if failing is not None:
            return failing._replace(type=result)
        if op == "to_uint" and isinstance(args[0], ir.Op) and args[0].op == "size":
            return args[0]._replace(type=UINT)  # a size is never negative: uint() cannot fail
        if op == "type_of":
            return ir.Const(_type_name(args[0].type), TYPE)
        if all(isinstance(arg, ir.Const) for arg in args) and op in FOLDABLE:
            values = [arg.value for arg in args]  # type: ignore[attr-defined]
            try:
                value = FOLDABLE[op](*values)
            except cel.EvaluationError as error:
                return _error(str(error), result)
            except TypeError:  # dyn operands of types no overload takes
                return _error(f"no matching overload for {op}", result)
            return ir.Const(value, result)
        return ir.Op(op, args, result)

    def _want(self, node: Node, wanted: CelType, where: str) -> None:
        if node.type != wanted and node.type != DYN:
            raise CelCompileError(f"{where} needs {wanted}, not {node.type}")


def _unwrap_select(tree: Any) -> Any:
    """The member_dot inside an argument's chain of single-child rules, or None."""
    node = tree
    while hasattr(node, "data"):
        if node.data == "member_dot":
            return node
        if len(node.children) != 1:
            return None
        node = node.children[0]
    return None


def _unwrap_ident(tree: Any) -> str | None:
    node = tree
    while hasattr(node, "data"):
        if node.data == "ident":
            return str(node.children[0])
        if len(node.children) != 1:
            return None
        node = node.children[0]
    return None


def _assignable(left: CelType, right: CelType) -> bool:
    return (
        left == right
        or DYN in (left, right)
        or NULL in (left, right)
        or (left.kind == right.kind and left.kind in ("list", "map"))
    )


def _comparable(left: CelType, right: CelType) -> bool:
    if left == right or DYN in (left, right):
        return True
    if left.kind in _NUMBERS and right.kind in _NUMBERS:
        return True  # heterogeneous numeric equality
    if NULL in (left, right):
        return True
    return left.kind == right.kind and left.kind in ("list", "map", "message")


def _join(left: CelType, right: CelType) -> CelType:
    if left == right:
        return left
    if left == NULL:
        return right
    if right == NULL:
        return left
    if left.kind == right.kind == "list":
        return ir.list_of(_join(left.params[0], right.params[0]))
    return DYN


def _join_all(types: list[CelType]) -> CelType:
    if not types:
        return DYN
    joined = types[0]
    for other in types[1:]:
        joined = _join(joined, other)
    return joined


def _read_constant(value: Any, info: FieldInfo) -> Any:
    """A field of a constant message (the rules) as its CEL value."""
    if info.type.kind == "list":
        item = FieldInfo(info.type.params[0], info.read, "")
        return [_read_constant(element, item) for element in value]
    if info.read == "duration":
        return cel.read_duration(value)
    if info.read == "timestamp":
        return cel.read_timestamp(value)
    return value


def _has_constant(message: Any, name: str, info: FieldInfo) -> bool:
    if info.presence == "has_field":
        return bool(message.HasField(name))
    return (
        bool(len(getattr(message, name)))
        if info.presence == "nonempty"
        else bool(getattr(message, name))
    )


_SYMBOLS = {
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "add": "+",
    "sub": "-",
    "mul": "*",
    "div": "/",
    "mod": "%",
}
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"}
)
_MAP_KEYS = frozenset({"int", "uint", "bool", "string", "dyn"})
_SIZED = [[kind] for kind in ("list", "map", "string", "bytes", "dyn")]

# (function, receiver kind or None, argument kinds) -> (overload, result type)
_OVERLOADS: dict[tuple[str, str | None, tuple[str, ...]], tuple[str, CelType]] = {
    ("contains", "string", ("string",)): ("contains", BOOL),
    ("startsWith", "string", ("string",)): ("starts_with", BOOL),
    ("endsWith", "string", ("string",)): ("ends_with", BOOL),
    ("contains", "bytes", ("bytes",)): ("contains", BOOL),
    ("startsWith", "bytes", ("bytes",)): ("starts_with", BOOL),
    ("endsWith", "bytes", ("bytes",)): ("ends_with", BOOL),
    ("matches", None, ("string", "string")): ("matches", BOOL),
    ("isEmail", "string", ()): ("is_email", BOOL),
    ("isHostname", "string", ()): ("is_hostname", BOOL),
    ("isIp", "string", ()): ("is_ip", BOOL),
    ("isIp", "string", ("int",)): ("is_ip", BOOL),
    ("isIpPrefix", "string", ()): ("is_ip_prefix", BOOL),
    ("isIpPrefix", "string", ("int",)): ("is_ip_prefix", BOOL),
    ("isIpPrefix", "string", ("bool",)): ("is_ip_prefix_strict", BOOL),
    ("isIpPrefix", "string", ("int", "bool")): ("is_ip_prefix", BOOL),
    ("isUri", "string", ()): ("is_uri", BOOL),
    ("isUriRef", "string", ()): ("is_uri_ref", BOOL),
    ("isHostAndPort", "string", ("bool",)): ("is_host_and_port", BOOL),
    ("isNan", "double", ()): ("is_nan", BOOL),
    ("isInf", "double", ()): ("is_inf", BOOL),
    ("isInf", "double", ("int",)): ("is_inf", BOOL),
    ("size", None, ("string",)): ("size", INT),
    ("size", None, ("bytes",)): ("size", INT),
    ("size", None, ("list",)): ("size", INT),
    ("size", None, ("map",)): ("size", INT),
    ("duration", None, ("string",)): ("parse_duration", DURATION),
    ("timestamp", None, ("string",)): ("parse_timestamp", TIMESTAMP),
    ("dyn", None, ("dyn",)): ("identity", DYN),
}
for _part in (
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
):
    _OVERLOADS[(_part, "timestamp", ())] = (f"timestamp_part:{_part}", INT)
    _OVERLOADS[(_part, "timestamp", ("string",))] = (f"timestamp_part:{_part}", INT)
for _part in ("getHours", "getMinutes", "getSeconds", "getMilliseconds"):
    _OVERLOADS[(_part, "duration", ())] = (f"duration_part:{_part}", INT)

_CONVERSIONS: dict[tuple[str, str], tuple[str, CelType]] = {
    **{("int", kind): ("to_int", INT) for kind in ("int", "uint", "double", "string", "timestamp")},
    **{("uint", kind): ("to_uint", UINT) for kind in ("int", "uint", "double", "string")},
    **{("double", kind): ("to_double", DOUBLE) for kind in ("int", "uint", "double", "string")},
    **{
        ("string", kind): ("to_string", STRING)
        for kind in ("int", "uint", "double", "string", "bytes", "bool", "duration", "timestamp")
    },
    ("bytes", "string"): ("to_bytes", BYTES),
    ("bytes", "bytes"): ("to_bytes", BYTES),
    ("bool", "bool"): ("identity", BOOL),
    ("dyn", "int"): ("identity", DYN),
    ("duration", "duration"): ("identity", DURATION),
    ("timestamp", "timestamp"): ("identity", TIMESTAMP),
    ("dyn", "string"): ("identity", DYN),
    ("dyn", "list"): ("identity", DYN),
    ("dyn", "map"): ("identity", DYN),
    ("dyn", "message"): ("identity", DYN),
    ("dyn", "double"): ("identity", DYN),
    ("dyn", "uint"): ("identity", DYN),
    ("dyn", "bool"): ("identity", DYN),
}
for _kind in (
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "list",
    "map",
    "duration",
    "timestamp",
    "message",
    "null",
    "type",
):
    _CONVERSIONS.setdefault(("type", _kind), ("type_of", TYPE))


def _type_name(type_: CelType) -> str:
    """What `type(x)` is, from x's static type (the names _TYPE_NAMES denote)."""
    names = {
        "null": "null_type",
        "duration": "google.protobuf.Duration",
        "timestamp": "google.protobuf.Timestamp",
        "message": type_.message,
    }
    return names.get(type_.kind, type_.kind)


def _is_ip_prefix(value: str, *arguments: Any) -> bool:
    version = next((a for a in arguments if not isinstance(a, bool)), 0)
    strict = next((a for a in arguments if isinstance(a, bool)), False)
    return cel.is_ip_prefix(value, version, strict)


FOLDABLE: dict[str, Callable[..., Any]] = {
    "eq": cel.equal,
    "ne": lambda left, right: not cel.equal(left, right),
    "lt": cel.less,
    "le": cel.less_equal,
    "gt": cel.greater,
    "ge": cel.greater_equal,
    "in_list": cel.in_list,
    "in_map": lambda key, values: cel.has_key(values, key),
    "not": lambda value: not value,
    "int_add": lambda a, b: cel.int64(a + b),
    "int_sub": lambda a, b: cel.int64(a - b),
    "int_mul": lambda a, b: cel.int64(a * b),
    "int_div": cel.int_divide,
    "int_mod": cel.int_modulo,
    "int_neg": lambda a: cel.int64(-a),
    "uint_add": lambda a, b: cel.uint64(a + b),
    "uint_sub": lambda a, b: cel.uint64(a - b),
    "uint_mul": lambda a, b: cel.uint64(a * b),
    "uint_div": cel.uint_divide,
    "uint_mod": cel.uint_modulo,
    "double_add": lambda a, b: a + b,
    "double_sub": lambda a, b: a - b,
    "double_mul": lambda a, b: a * b,
    "double_div": cel.double_divide,
    "double_neg": lambda a: -a,
    "duration_neg": lambda a: cel.duration(-a),
    "concat": lambda a, b: a + b,
    "list_concat": lambda a, b: [*a, *b],
    "timestamp_add": lambda a, b: cel.timestamp(a + b),
    "timestamp_sub": lambda a, b: cel.timestamp(a - b),
    "timestamp_diff": lambda a, b: cel.duration(a - b),
    "duration_add": lambda a, b: cel.duration(a + b),
    "duration_sub": lambda a, b: cel.duration(a - b),
    "index_list": cel.index_list,
    "index_map": cel.index_map,
    "size": len,
    "contains": lambda text, part: part in text,
    "starts_with": lambda text, part: text.startswith(part),
    "ends_with": lambda text, part: text.endswith(part),
    "matches": cel.matches,
    "is_email": cel.is_email,
    "is_hostname": cel.is_hostname,
    "is_ip": cel.is_ip,
    "is_ip_prefix": _is_ip_prefix,
    "is_ip_prefix_strict": _is_ip_prefix,
    "is_host_and_port": cel.is_host_and_port,
    "is_nan": cel.is_nan,
    "is_inf": cel.is_inf,
    "unique": cel.unique,
    "format": cel.format_text,
    "to_int": cel.to_int,
    "to_uint": cel.to_uint,
    "to_double": cel.to_double,
    "to_string": cel.to_string,
    "to_bytes": cel.to_bytes,
    "parse_duration": cel.parse_duration,
    "parse_timestamp": cel.parse_timestamp,
    "identity": lambda value: value,
    "is_uri": cel.is_uri,
    "is_uri_ref": cel.is_uri_ref,
}


def _string_literal(text: str) -> str:
    raw = text[:1] in "rR"
    body = text[1:] if raw else text
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    body = body[len(quote) : -len(quote)]
    if raw:
        return body
    return _unescape(body, as_bytes=False).decode("utf-8", "surrogatepass")


def _bytes_literal(text: str) -> bytes:
    raw = text[:1] in "rR"
    body = text[1:] if raw else text
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    body = body[len(quote) : -len(quote)]
    if raw:
        return body.encode("utf-8")
    return _unescape(body, as_bytes=True)


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}


_HEX_DIGITS = "0123456789abcdefABCDEF"


def _escape_digits(body: str, start: int, width: int, digits: str) -> int:
    """The value of the `width` digits an escape needs at `start` (\\x41, \\u00e9, \\101)."""
    text = body[start : start + width]
    if len(text) != width or any(char not in digits for char in text):
        near = body[max(start - 2, 0) : start + width]
        raise CelCompileError(f"invalid escape in a literal, near {near!r}")
    return int(text, 16 if len(digits) > 8 else 8)


def _unescape(body: str, *, as_bytes: bool) -> bytes:
    """CEL escapes: in strings, octal and \\x are code points; in bytes, single octets."""
    out = bytearray()
    position = 0
    while position < len(body):
        char = body[position]
        if char != "\\":
            out += char.encode("utf-8")
            position += 1
            continue
        escape = body[position + 1 : position + 2]
        if escape in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[escape].encode()
            position += 2
        elif escape in ("x", "X"):
            value = _escape_digits(body, position + 2, 2, _HEX_DIGITS)
            out += bytes([value]) if as_bytes else chr(value).encode("utf-8")
            position += 4
        elif escape in ("u", "U") and not as_bytes:
            width = 4 if escape == "u" else 8
            value = _escape_digits(body, position + 2, width, _HEX_DIGITS)
            if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
                raise CelCompileError(f"invalid code point \\{escape}{value:x} in a literal")
            out += chr(value).encode("utf-8")
            position += 2 + width
        elif escape in ("0", "1", "2", "3"):
            value = _escape_digits(body, position + 1, 3, "01234567")
            out += bytes([value]) if as_bytes else chr(value).encode("utf-8")
            position += 4
        else:
            raise CelCompileError(f"invalid escape \\{escape} in a literal")
    return bytes(out)
