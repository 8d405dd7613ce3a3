"""protovalidate's rules (`(buf.validate.field)`, `.message`, `.oneof`) -> compiled rule model.

Every standard rule of buf/validate/validate.proto is defined there by CEL, in the
`(buf.validate.predefined).cel` option of the rule's own field. Rules are compiled from those
definitions, with `rules` and `rule` bound to the values the proto sets, so each standard rule
means exactly what protovalidate's specification says, and predefined rules of the user's own
extensions compile the same way. The few rules without CEL (`required`, `ignore`,
`enum.defined_only`, `any.in`/`not_in`, `items`/`keys`/`values`) are read here directly.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple

from google.protobuf import descriptor, descriptor_pool
from google.protobuf.message import Message
from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.model import cel_ir as ir
from protoc_gen_pyservice.model.cel_check import (
    CelCompileError,
    FieldInfo,
    Variable,
    compile_expression,
)
from protoc_gen_pyservice.model.cel_ir import Node
from protoc_gen_pyservice.model.families import (
    AnyRules,
    EnumRules,
    FamilyRules,
    FieldRules,
    MessageFieldRules,
    RepeatedRules,
    read_family,
)

_FD = descriptor.FieldDescriptor
PREDEFINED = "buf.validate.predefined"


class Ignore(enum.IntEnum):
    UNSPECIFIED = 0
    IF_ZERO_VALUE = 1
    ALWAYS = 3


class RuleCheck(NamedTuple):
    """One compiled rule. It is broken when `failure` is true (its message is `message`), or,
    without `failure`, when `message_expression` gives a non-empty message."""

    rule_id: str
    rule_path: str  # `string.min_len`, `repeated.items.cel[0]`, `string.[my.ext]`
    failure: Node | None
    message: str
    message_expression: Node | None = None


class ValueRules(NamedTuple):
    """What protovalidate checks on one value: a field, a repeated item, a map key or value."""

    ignore: Ignore
    required: bool
    checks: tuple[RuleCheck, ...]
    items: ValueRules | None = None  # repeated.items, map.values
    keys: ValueRules | None = None  # map.keys
    # The family's rules in the typed rule model protoc-gen-validate's rules read into too;
    # the checks compile from validate.proto's CEL definitions of those rules.
    family: FamilyRules | None = None


class OneofRule(NamedTuple):
    """MessageRules.oneof: at most one of `fields` set, exactly one when `required`."""

    fields: tuple[str, ...]
    required: bool


class MessageRules(NamedTuple):
    checks: tuple[RuleCheck, ...]  # `cel` and `cel_expression` on the message
    oneofs: tuple[OneofRule, ...]


# The CEL type of each scalar field type, and the rule family it takes.
_SCALARS: dict[int, tuple[ir.CelType, str]] = {
    _FD.TYPE_DOUBLE: (ir.DOUBLE, "double"),
    _FD.TYPE_FLOAT: (ir.DOUBLE, "float"),
    _FD.TYPE_INT64: (ir.INT, "int64"),
    _FD.TYPE_UINT64: (ir.UINT, "uint64"),
    _FD.TYPE_INT32: (ir.INT, "int32"),
    _FD.TYPE_FIXED64: (ir.UINT, "fixed64"),
    _FD.TYPE_FIXED32: (ir.UINT, "fixed32"),
    _FD.TYPE_BOOL: (ir.BOOL, "bool"),
    _FD.TYPE_STRING: (ir.STRING, "string"),
    _FD.TYPE_BYTES: (ir.BYTES, "bytes"),
    _FD.TYPE_UINT32: (ir.UINT, "uint32"),
    _FD.TYPE_ENUM: (ir.INT, "enum"),
    _FD.TYPE_SFIXED32: (ir.INT, "sfixed32"),
    _FD.TYPE_SFIXED64: (ir.INT, "sfixed64"),
    _FD.TYPE_SINT32: (ir.INT, "sint32"),
    _FD.TYPE_SINT64: (ir.INT, "sint64"),
}
WRAPPERS = {
    "google.protobuf.DoubleValue": _FD.TYPE_DOUBLE,
    "google.protobuf.FloatValue": _FD.TYPE_FLOAT,
    "google.protobuf.Int64Value": _FD.TYPE_INT64,
    "google.protobuf.UInt64Value": _FD.TYPE_UINT64,
    "google.protobuf.Int32Value": _FD.TYPE_INT32,
    "google.protobuf.UInt32Value": _FD.TYPE_UINT32,
    "google.protobuf.BoolValue": _FD.TYPE_BOOL,
    "google.protobuf.StringValue": _FD.TYPE_STRING,
    "google.protobuf.BytesValue": _FD.TYPE_BYTES,
}
_WELL_KNOWN_FAMILY = {
    "google.protobuf.Duration": "duration",
    "google.protobuf.Timestamp": "timestamp",
    "google.protobuf.Any": "any",
    "google.protobuf.FieldMask": "field_mask",
}


class ValueKind(NamedTuple):
    """What a value is, for the rules on it: its CEL type, the rule family it takes, and how
    its Python value is read (see cel_ir.Select)."""

    type: ir.CelType
    family: str
    read: str


def value_kind(field: descriptor.FieldDescriptor, element_only: bool) -> ValueKind:
    """A field's value, or (element_only) one repeated item or map value."""
    if (
        not element_only
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    ):
        key = value_kind(field.message_type.fields_by_name["key"], True)
        value = value_kind(field.message_type.fields_by_name["value"], True)
        # `read` is each value's, as for a repeated field's items.
        return ValueKind(ir.map_of(key.type, value.type), "map", value.read)
    if not element_only and field.is_repeated:
        # `read` is each item's: a list of Durations reads as a list of CEL durations.
        item = value_kind(field, True)
        return ValueKind(ir.list_of(item.type), "repeated", item.read)
    if field.type in (_FD.TYPE_MESSAGE, _FD.TYPE_GROUP):
        assert field.message_type is not None
        name = field.message_type.full_name
        if name in WRAPPERS:
            cel_type, family = _SCALARS[WRAPPERS[name]]
            return ValueKind(cel_type, family, "wrapper")
        if name == "google.protobuf.Duration":
            return ValueKind(ir.DURATION, "duration", "duration")
        if name == "google.protobuf.Timestamp":
            return ValueKind(ir.TIMESTAMP, "timestamp", "timestamp")
        return ValueKind(ir.message(name), _WELL_KNOWN_FAMILY.get(name, "message"), "plain")
    cel_type, family = _SCALARS[field.type]
    return ValueKind(cel_type, family, "enum" if field.type == _FD.TYPE_ENUM else "plain")


class Compiler:
    """Compiles the rules of one request; `pool` holds every file of it, so that predefined
    rule extensions and every message type resolve."""

    def __init__(
        self,
        pool: descriptor_pool.DescriptorPool,
        predefined_of: Callable[[descriptor.FieldDescriptor], Any],
    ) -> None:
        self._pool = pool
        # A rule field's (buf.validate.predefined) option, or None.
        self._predefined_of = predefined_of
        self._fields: dict[str, dict[str, FieldInfo] | None] = {}

    def fields_of(self, full_name: str) -> dict[str, FieldInfo] | None:
        if full_name in self._fields:
            return self._fields[full_name]
        try:
            message = self._pool.FindMessageTypeByName(full_name)
        except KeyError:
            self._fields[full_name] = None
            return None
        fields = {}
        for field in message.fields:
            kind = value_kind(field, False)
            if field.is_repeated:
                presence = "nonempty"
            elif field.has_presence:
                presence = "has_field"
            else:
                presence = "nonzero"
            fields[field.name] = FieldInfo(kind.type, kind.read, presence)
        self._fields[full_name] = fields
        return fields

    def field(self, field: descriptor.FieldDescriptor, rules: Message, element: str) -> ValueRules:
        return self._value(value_kind(field, False), field, rules, element, "")

    def _value(
        self,
        kind: ValueKind,
        value_field: descriptor.FieldDescriptor,
        rules: Message,
        element: str,
        path: str,
    ) -> ValueRules:
        """The rules on one value of `kind`; `value_field` describes a single element (the
        field itself, or a map entry's key or value field) for enum numbers and nesting."""
        checks: list[RuleCheck | None] = []
        for index, expression in enumerate(getattr(rules, "cel_expression")):  # noqa: B009
            checks.append(
                self._cel(
                    expression, expression, "", kind.type, f"{path}cel_expression[{index}]", element
                )
            )
        for index, rule in enumerate(getattr(rules, "cel")):  # noqa: B009
            checks.append(
                self._cel(
                    rule.id,
                    rule.expression,
                    rule.message,
                    kind.type,
                    f"{path}cel[{index}]",
                    element,
                )
            )
        family = rules.WhichOneof("type")
        items = keys = None
        typed: FamilyRules | None = None
        if family is not None:
            if family != kind.family:
                raise GenerationError(
                    element, f"{family} rules do not apply to a {kind.family} value"
                )
            family_rules = getattr(rules, family)
            read = read_family(family, family_rules, element, _nested_family)
            assert not isinstance(read, MessageFieldRules)
            typed = read
            checks += self._standard(family_rules, kind, f"{path}{family}.", element)
            if (
                isinstance(typed, RepeatedRules)
                and typed.unique
                and value_field.type in (_FD.TYPE_MESSAGE, _FD.TYPE_GROUP)
            ):
                # As protovalidate: CEL's unique() compares scalars only.
                raise GenerationError(element, "repeated.unique is not supported for message items")
            if family == "repeated" and family_rules.HasField("items"):
                items = self._value(
                    value_kind(value_field, True),
                    value_field,
                    family_rules.items,
                    element + "[]",
                    f"{path}repeated.items.",
                )
            if family == "map":
                entry = value_field.message_type
                assert entry is not None  # map fields have an entry type
                key_field, item_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
                if family_rules.HasField("keys"):
                    keys = self._value(
                        value_kind(key_field, True),
                        key_field,
                        family_rules.keys,
                        element + "[key]",
                        f"{path}map.keys.",
                    )
                if family_rules.HasField("values"):
                    items = self._value(
                        value_kind(item_field, True),
                        item_field,
                        family_rules.values,
                        element + "[]",
                        f"{path}map.values.",
                    )
            if isinstance(typed, EnumRules) and typed.defined_only:
                assert value_field.enum_type is not None  # enum rules only apply to enums
                numbers = sorted({value.number for value in value_field.enum_type.values})
                defined = ir.Op(
                    "in_list",
                    (ir.Ref("this", ir.INT), ir.Const(numbers, ir.list_of(ir.INT))),
                    ir.BOOL,
                )
                checks.append(
                    RuleCheck(
                        "enum.defined_only",
                        f"{path}enum.defined_only",
                        ir.Op("not", (defined,), ir.BOOL),
                        "must be one of the defined enum values",
                    )
                )
            if isinstance(typed, AnyRules):
                checks += self._any(typed, path)
        ignore = Ignore(getattr(rules, "ignore"))  # noqa: B009
        required = bool(getattr(rules, "required"))  # noqa: B009
        found = tuple(check for check in checks if check is not None)
        return ValueRules(ignore, required, found, items, keys, typed)

    def _any(self, rules: AnyRules, path: str) -> list[RuleCheck]:
        checks = []
        url = ir.Select(
            ir.Ref("this", ir.message("google.protobuf.Any")), "type_url", "plain", ir.STRING
        )
        for name, negate, message in (
            ("in", True, "type URL must be in the allow list"),
            ("not_in", False, "type URL must not be in the block list"),
        ):
            urls = list(rules.in_ if name == "in" else rules.not_in)
            if not urls:
                continue
            test: Node = ir.Op("in_list", (url, ir.Const(urls, ir.list_of(ir.STRING))), ir.BOOL)
            if negate:
                test = ir.Op("not", (test,), ir.BOOL)
            checks.append(RuleCheck(f"any.{name}", f"{path}any.{name}", test, message))
        return checks

    def _standard(
        self, rules: Message, kind: ValueKind, path: str, element: str
    ) -> list[RuleCheck | None]:
        checks: list[RuleCheck | None] = []
        for rule_field, value in rules.ListFields():
            predefined = self._predefined_of(rule_field)
            if predefined is None:
                continue
            name = f"[{rule_field.full_name}]" if rule_field.is_extension else rule_field.name
            rule_value = _cel_value(rule_field, value)
            rule_type = value_kind(rule_field, False).type
            for rule in predefined.cel:
                check = self._cel(
                    rule.id,
                    rule.expression,
                    rule.message,
                    kind.type,
                    path + name,
                    element,
                    extra={
                        "rules": Variable(ir.message(rules.DESCRIPTOR.full_name), rules, True),
                        "rule": Variable(rule_type, rule_value, True),
                    },
                )
                if check is not None:
                    checks.append(check)
        return checks

    def message(self, rules: Message, full_name: str, element: str) -> MessageRules:
        this = ir.message(full_name)
        checks = [
            self._cel(expression, expression, "", this, f"cel_expression[{index}]", element)
            for index, expression in enumerate(getattr(rules, "cel_expression"))  # noqa: B009
        ]
        checks += [
            self._cel(rule.id, rule.expression, rule.message, this, f"cel[{index}]", element)
            for index, rule in enumerate(getattr(rules, "cel"))  # noqa: B009
        ]
        oneofs = []
        fields = self.fields_of(full_name) or {}
        for oneof in getattr(rules, "oneof"):  # noqa: B009
            names = tuple(oneof.fields)
            if not names:
                raise GenerationError(element, "a message oneof rule must name at least one field")
            for name in names:
                if name not in fields:
                    raise GenerationError(element, f"message oneof rule names no field {name!r}")
            if len(set(names)) != len(names):
                raise GenerationError(element, "a message oneof rule names a field twice")
            oneofs.append(OneofRule(names, bool(oneof.required)))
        return MessageRules(tuple(check for check in checks if check is not None), tuple(oneofs))

    def _cel(
        self,
        rule_id: str,
        expression: str,
        message: str,
        this: ir.CelType,
        rule_path: str,
        element: str,
        extra: dict[str, Variable] | None = None,
    ) -> RuleCheck | None:
        variables = {"this": Variable(this), "now": Variable(ir.TIMESTAMP), **(extra or {})}
        try:
            node = compile_expression(expression, variables, self.fields_of, lambda text: text)
        except CelCompileError as error:
            raise GenerationError(
                element, f"CEL rule {rule_id!r} ({expression!r}) {error}"
            ) from None
        if node.type == ir.BOOL:
            if isinstance(node, ir.Const):
                if node.value:
                    return None
                return RuleCheck(rule_id, rule_path, ir.Const(True, ir.BOOL), message)
            return RuleCheck(rule_id, rule_path, _negate(node), message)
        if node.type == ir.STRING:
            if isinstance(node, ir.Const):
                if not node.value:
                    return None
                return RuleCheck(rule_id, rule_path, ir.Const(True, ir.BOOL), node.value)
            if (
                isinstance(node, ir.Cond)
                and isinstance(node.otherwise, ir.Const)
                and node.otherwise.value == ""
                and isinstance(node.then, ir.Const)
                and node.then.value
            ):
                return RuleCheck(rule_id, rule_path, node.test, node.then.value)
            if (  # the other way round: `ok ? '' : 'message'`
                isinstance(node, ir.Cond)
                and isinstance(node.then, ir.Const)
                and node.then.value == ""
                and isinstance(node.otherwise, ir.Const)
                and node.otherwise.value
            ):
                return RuleCheck(rule_id, rule_path, _negate(node.test), node.otherwise.value)
            return RuleCheck(rule_id, rule_path, None, "", node)
        if node.type == ir.DYN:
            return RuleCheck(rule_id, rule_path, None, message, node)
        raise GenerationError(
            element,
            f"CEL rule {rule_id!r} ({expression!r}) gives {node.type}; it must give a bool or a "
            "string",
        )


def _nested_family(rules: Message, element: str) -> FieldRules:
    """buf.validate's nested FieldRules (`items`, `keys`, `values`) in the typed model."""
    family = rules.WhichOneof("type")
    if family is None:
        return FieldRules()
    read = read_family(family, getattr(rules, family), element, _nested_family)
    assert not isinstance(read, MessageFieldRules)
    return FieldRules(type_rules=read)


def _negate(node: Node) -> Node:
    """`!node`, simplified: `!!x` is x, and `!(a != b)` is `a == b` (!= is not == in CEL)."""
    if isinstance(node, ir.Op) and node.op == "not":
        return node.args[0]
    if isinstance(node, ir.Op) and node.op in ("eq", "ne"):
        return node._replace(op="ne" if node.op == "eq" else "eq")
    return ir.Op("not", (node,), ir.BOOL)


def _cel_value(field: descriptor.FieldDescriptor, value: Any) -> Any:
    from protoc_gen_pyservice.runtime import cel

    kind = value_kind(field, True)
    convert: Any = lambda item: item  # noqa: E731
    if kind.read == "duration":
        convert = cel.read_duration
    elif kind.read == "timestamp":
        convert = cel.read_timestamp
    if field.is_repeated:
        return [convert(item) for item in value]
    return convert(value)


def value_read(field: Any) -> str:
    """How generated code reads a model Field's value as CEL sees it (see cel_ir.Select)."""
    from protoc_gen_pyservice.model.nodes import FieldType

    if field.type is not FieldType.MESSAGE or field.type_ref is None:
        return "plain"
    name = field.type_ref.proto_name
    if name in WRAPPERS:
        return "wrapper"
    if name == "google.protobuf.Duration":
        return "duration"
    if name == "google.protobuf.Timestamp":
        return "timestamp"
    return "plain"
