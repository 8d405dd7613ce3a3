"""Validation plans from the model: typed rules -> checks, after rule_checks rejected conflicts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.model import cel_eval, naming
from protoc_gen_pyservice.model import cel_ir as ir
from protoc_gen_pyservice.model.families import (
    AnyRules,
    DurationRules,
    EnumRules,
    FamilyRules,
    FieldMaskRules,
    FieldRules,
    MapRules,
    MessageFieldRules,
    RepeatedRules,
    TimestampRules,
)
from protoc_gen_pyservice.model.nodes import (
    Enum,
    Field,
    FieldType,
    File,
    Message,
    TypeRef,
)
from protoc_gen_pyservice.model.plan import (
    Check,
    CheckKind,
    Constant,
    ConstantKind,
    Embedded,
    FieldKind,
    FieldPlan,
    Literal,
    MessagePlan,
    OneofPlan,
    Read,
    ValidationPlan,
    ValuePlan,
)
from protoc_gen_pyservice.model.protovalidate import Ignore, ValueRules, value_read

WRAPPERS = {
    "google.protobuf.DoubleValue": "double",
    "google.protobuf.FloatValue": "float",
    "google.protobuf.Int64Value": "int64",
    "google.protobuf.UInt64Value": "uint64",
    "google.protobuf.Int32Value": "int32",
    "google.protobuf.UInt32Value": "uint32",
    "google.protobuf.BoolValue": "bool",
    "google.protobuf.StringValue": "string",
    "google.protobuf.BytesValue": "bytes",
}
WELL_KNOWN = {
    "google.protobuf.Duration": "duration",
    "google.protobuf.Timestamp": "timestamp",
    "google.protobuf.Any": "any",
}
# Rule families each scalar field type accepts.
_SCALAR_FAMILY = {
    FieldType.DOUBLE: "double",
    FieldType.FLOAT: "float",
    FieldType.INT64: "int64",
    FieldType.UINT64: "uint64",
    FieldType.INT32: "int32",
    FieldType.FIXED64: "fixed64",
    FieldType.FIXED32: "fixed32",
    FieldType.BOOL: "bool",
    FieldType.STRING: "string",
    FieldType.BYTES: "bytes",
    FieldType.UINT32: "uint32",
    FieldType.ENUM: "enum",
    FieldType.SFIXED32: "sfixed32",
    FieldType.SFIXED64: "sfixed64",
    FieldType.SINT32: "sint32",
    FieldType.SINT64: "sint64",
}


class ValidationPlanner:
    """Plans the `_validate.py` of each generated file; knows every file's messages."""

    def __init__(self, model_of: Callable[[str], File], generated_files: frozenset[str]) -> None:
        self._model_of = model_of
        self._generated = generated_files
        self._messages: dict[str, Message] = {}
        self._enums: dict[str, Enum] = {}
        self._indexed: set[str] = set()
        self._has_rules: dict[str, bool] = {}
        self._functions: dict[str, dict[str, str]] = {}
        self._plans: dict[str, ValidationPlan] = {}
        self._message_plans: dict[str, tuple[MessagePlan, dict[str, Constant]]] = {}

    # Indexes over the model, built per file on first need.

    def _index(self, proto_file: str) -> None:
        if proto_file in self._indexed:
            return
        self._indexed.add(proto_file)
        file = self._model_of(proto_file)
        names: set[str] = set()
        functions: dict[str, str] = {}
        for message in _walk(file.messages):
            self._messages[message.ref.proto_name] = message
            functions[message.ref.proto_name] = naming.unique(
                "check_"
                + "__".join(naming.snake_case(part) for part in message.ref.qualname.split(".")),
                names,
            )
            for enum in message.enums:
                self._enums[enum.ref.proto_name] = enum
        for enum in file.enums:
            self._enums[enum.ref.proto_name] = enum
        self._functions[proto_file] = functions

    def _message(self, ref: TypeRef) -> Message:
        self._index(ref.proto_file)
        return self._messages[ref.proto_name]

    def has_rules(self, ref: TypeRef) -> bool:
        """Whether a message type has rules anywhere: own fields, oneofs, or messages inside."""
        cached = self._has_rules.get(ref.proto_name)
        if cached is not None:
            return cached
        if ref.proto_name in WELL_KNOWN or ref.proto_name in WRAPPERS:
            return False
        message = self._message(ref)
        self._has_rules[ref.proto_name] = False  # a cycle adds nothing new
        found = not (message.validation_disabled or message.validation_ignored) and (
            any(oneof.required or oneof.protovalidate_required for oneof in message.oneofs)
            or message.protovalidate is not None
            or any(self._field_has_rules(field) for field in message.fields)
        )
        self._has_rules[ref.proto_name] = found
        return found

    def _field_has_rules(self, field: Field) -> bool:
        if field.protovalidate is not None:
            if field.protovalidate.ignore is Ignore.ALWAYS:
                return False
            if field.protovalidate.checks or field.protovalidate.required:
                return True
            nested = (field.protovalidate.items, field.protovalidate.keys)
            if any(rules is not None and rules.checks for rules in nested):
                return True
        rules = field.rules
        if rules is not None and (
            rules.type_rules is not None
            or (_required(rules.message_rules) and _presence_checked(field))
        ):
            return True
        if rules is not None and _skip(rules.message_rules):
            return False
        target = field.map_entry.value.type_ref if field.map_entry else field.type_ref
        is_message = (field.map_entry.value.type if field.map_entry else field.type) in (
            FieldType.MESSAGE,
            FieldType.GROUP,
        )
        return is_message and target is not None and self.has_rules(target)

    # Plans

    def plan(self, file: File) -> ValidationPlan:
        planned = self._plans.get(file.proto_path)
        if planned is None:
            planned = self._plans[file.proto_path] = self._plan(file)
            constants = {constant.name: constant for constant in planned.constants}
            for message in planned.messages:
                self._message_plans[message.ref.proto_name] = (message, constants)
        return planned

    def message(self, ref: TypeRef) -> Message:
        """The model of a message type of any file of the request."""
        return self._message(ref)

    def enum(self, ref: TypeRef) -> Enum:
        self._index(ref.proto_file)
        return self._enums[ref.proto_name]

    def message_plan(self, ref: TypeRef) -> tuple[MessagePlan, dict[str, Constant]] | None:
        """The checks of a message type with rules, and the constants they name; None for a
        type without rules."""
        if not self.has_rules(ref):
            return None
        self.plan(self._model_of(ref.proto_file))
        return self._message_plans[ref.proto_name]

    def _plan(self, file: File) -> ValidationPlan:
        self._index(file.proto_path)
        module = naming.output_module(file.proto_path, "validate")
        builder = _FileBuilder(self, file, module)
        messages = tuple(
            builder.message(message)
            for message in _walk(file.messages)
            if self.has_rules(message.ref)
        )
        return ValidationPlan(
            module=module,
            messages=messages,
            constants=tuple(builder.constants),
            imports=tuple(sorted(builder.imports)),
        )

    def embedded(self, ref: TypeRef, own_file: str) -> Embedded:
        self._index(ref.proto_file)
        function = self._functions[ref.proto_file][ref.proto_name]
        return Embedded(
            module=naming.output_module(ref.proto_file, "validate"),
            function=function,
            dispatch=ref.proto_file not in self._generated,
        )

    def enum_numbers(self, ref: TypeRef) -> frozenset[int]:
        return frozenset(value.number for value in self.enum(ref).values)


def _walk(messages: tuple[Message, ...]) -> Iterator[Message]:
    for message in messages:
        yield message
        yield from _walk(message.messages)


def _required(rules: MessageFieldRules | None) -> bool:
    return rules is not None and bool(rules.required)


def _skip(rules: MessageFieldRules | None) -> bool:
    return rules is not None and bool(rules.skip)


def _presence_checked(field: Field) -> bool:
    """Whether a `required` rule can fail on the field.

    protoc-gen-validate checks a oneof member, real or synthetic (proto3 `optional`), only
    when it is set, `required` included, so there it never fails: its harness has
    `MessageRequiredButOptional{}` valid, and an unset member of a set oneof is not missing.
    """
    return field.oneof is None and not field.proto3_optional


class _FileBuilder:
    def __init__(self, planner: ValidationPlanner, file: File, module: str) -> None:
        self._planner = planner
        self._file = file
        self._module = module
        self.constants: list[Constant] = []
        self._constant_names: set[str] = set()
        self.imports: set[str] = set()

    def message(self, message: Message) -> MessagePlan:
        self._function = self._planner.embedded(message.ref, self._file.proto_path).function
        # Fields a message `oneof` rule names are checked only when set, as if
        # IGNORE_IF_ZERO_VALUE (protovalidate).
        members = {
            name
            for rule in (message.protovalidate.oneofs if message.protovalidate else ())
            for name in rule.fields
        }
        plans = [
            self._field(message, field)
            if field.protovalidate is None
            else self._protovalidate_plan(field, field.name in members)
            for field in message.fields
        ]
        protovalidate = (
            any(field.protovalidate is not None for field in message.fields)
            or message.protovalidate is not None
            or any(oneof.protovalidate_required for oneof in message.oneofs)
        )
        return MessagePlan(
            ref=message.ref,
            function=self._function,
            protovalidate=message if protovalidate else None,
            protovalidate_embedded=tuple(
                (field.name, embedded)
                for field in message.fields
                if field.protovalidate is not None
                and (embedded := self._protovalidate_embedded(field)) is not None
            ),
            fields=tuple(plan for plan in plans if plan is not None),
            oneofs=tuple(
                OneofPlan(
                    name=oneof.name,
                    check=Check(
                        CheckKind.NOT_EQUAL, "oneof.required", "exactly one field is required"
                    ),
                )
                for oneof in message.oneofs
                if oneof.required
            )
            + _protovalidate_oneofs(message),
        )

    def _protovalidate_plan(self, field: Field, oneof_member: bool) -> FieldPlan | None:
        """The plan of a protovalidate field, for the examples (the validator itself is
        written from the compiled rules)."""
        rules = field.protovalidate
        assert rules is not None
        if rules.ignore is Ignore.ALWAYS:
            return None
        if oneof_member and rules.ignore is Ignore.UNSPECIFIED:
            rules = rules._replace(ignore=Ignore.IF_ZERO_VALUE)
        embedded = self._protovalidate_embedded(field)
        required = (
            Check(CheckKind.NOT_EQUAL, "required", "value is required") if rules.required else None
        )
        zero_ignored = rules.ignore is Ignore.IF_ZERO_VALUE
        if field.map_entry is not None:
            return FieldPlan(
                field.name,
                FieldKind.MAP,
                False,
                required,
                _cel_value_plan(rules.items, field.map_entry.value, embedded, item=True),
                _cel_value_plan(rules.keys, field.map_entry.key, None, item=True),
                _cel_checks(rules, collection=True),
                zero_ignored,
                protovalidate=True,
            )
        if field.repeated:
            return FieldPlan(
                field.name,
                FieldKind.REPEATED,
                False,
                required,
                _cel_value_plan(rules.items, field, embedded, item=True),
                None,
                _cel_checks(rules, collection=True),
                zero_ignored,
                protovalidate=True,
            )
        is_message = field.type in (FieldType.MESSAGE, FieldType.GROUP)
        # Rules on a message value itself (FieldMask, Any, `cel` on a message field) read
        # fields of it, which examples do not model: they plan no value checks.
        solvable = not is_message or value_read(field) != "plain"
        value = _cel_value_plan(rules if solvable else None, field, embedded)
        return FieldPlan(
            field.name,
            FieldKind.SINGLE,
            is_message or field.has_presence,
            required,
            value,
            None,
            (),
            False,
            protovalidate=True,
        )

    def _protovalidate_embedded(self, field: Field) -> Embedded | None:
        """The validator a protovalidate field's message values recurse into, if any."""
        rules = field.protovalidate
        if rules is not None and rules.ignore is Ignore.ALWAYS:
            return None
        value = field.map_entry.value if field.map_entry else field
        if value.type not in (FieldType.MESSAGE, FieldType.GROUP) or value.type_ref is None:
            return None
        if value.type_ref.proto_name in WELL_KNOWN or value.type_ref.proto_name in WRAPPERS:
            return None
        if not self._planner.has_rules(value.type_ref):
            return None
        embedded = self._planner.embedded(value.type_ref, self._file.proto_path)
        if embedded.module != self._module and not embedded.dispatch:
            self.imports.add(embedded.module)
        return embedded

    def _element(self, message: Message, field: Field) -> str:
        return f"{self._file.proto_path}: {message.ref.proto_name}.{field.name}"

    def constant(
        self, field: str, rule: str, kind: ConstantKind, values: tuple[Literal, ...]
    ) -> str:
        base = f"_{self._function.removeprefix('check_')}_{field}_{rule}".upper()
        name = naming.unique(base, self._constant_names)
        self.constants.append(Constant(name, kind, values))
        return name

    def _field(self, message: Message, field: Field) -> FieldPlan | None:
        element = self._element(message, field)
        rules = field.rules or FieldRules()
        type_rules = rules.type_rules
        message_rules = rules.message_rules
        if message_rules is not None and field.type not in (FieldType.MESSAGE, FieldType.GROUP):
            raise GenerationError(element, "message rules apply only to message fields")
        if field.map_entry is not None:
            return self._map(message, field, type_rules, element)
        if field.repeated:
            if type_rules is not None and type_rules.family != "repeated":
                raise GenerationError(
                    element, f"{type_rules.family} rules do not apply to a repeated field"
                )
            return self._repeated(message, field, type_rules, element)
        if type_rules is not None and type_rules.family in ("repeated", "map"):
            raise GenerationError(
                element, f"{type_rules.family} rules apply only to {type_rules.family} fields"
            )
        required = None
        if _required(message_rules) and _presence_checked(field):
            required = Check(CheckKind.NOT_EQUAL, "message.required", "value is required")
        value = self._value(
            field.type, field.type_ref, type_rules, message_rules, element, field.name
        )
        if (
            _presence_checked(field)
            and isinstance(type_rules, AnyRules | DurationRules | TimestampRules)
            and type_rules.required
        ):
            required = Check(
                CheckKind.NOT_EQUAL, f"{type_rules.family}.required", "value is required"
            )
        if value is None and required is None:
            return None
        is_message = field.type in (FieldType.MESSAGE, FieldType.GROUP)
        return FieldPlan(
            name=field.name,
            kind=FieldKind.SINGLE,
            guarded=is_message or field.has_presence,
            required=required,
            value=value,
            key=None,
            collection_checks=(),
            collection_ignore_empty=False,
        )

    def _repeated(
        self, message: Message, field: Field, rules: FamilyRules | None, element: str
    ) -> FieldPlan | None:
        checks: list[Check] = []
        item_rules: FieldRules | None = None
        ignore_empty = False
        if rules is not None:
            assert isinstance(rules, RepeatedRules)
            rules.conflicts(element)
            item_is_message = field.type in (FieldType.MESSAGE, FieldType.GROUP)
            checks += rules.checks(item_is_message, element)
            item_rules = rules.items
            ignore_empty = bool(rules.ignore_empty)
        item = self._value(
            field.type,
            field.type_ref,
            item_rules.type_rules if item_rules else None,
            item_rules.message_rules if item_rules else None,
            element + "[]",
            field.name,
        )
        if not checks and item is None:
            return None
        return FieldPlan(
            field.name, FieldKind.REPEATED, False, None, item, None, tuple(checks), ignore_empty
        )

    def _map(
        self, message: Message, field: Field, rules: FamilyRules | None, element: str
    ) -> FieldPlan | None:
        entry = field.map_entry
        assert entry is not None
        if rules is not None and rules.family != "map":
            raise GenerationError(element, f"{rules.family} rules do not apply to a map field")
        checks: list[Check] = []
        key_rules = value_rules = None
        ignore_empty = False
        if rules is not None:
            assert isinstance(rules, MapRules)
            rules.conflicts(element)
            checks += rules.checks()
            if rules.no_sparse and entry.value.type is not FieldType.MESSAGE:
                raise GenerationError(
                    element, "map.no_sparse applies only to maps with message values"
                )
            key_rules = rules.keys
            value_rules = rules.values
            ignore_empty = bool(rules.ignore_empty)
        key = self._value(
            entry.key.type,
            None,
            key_rules.type_rules if key_rules else None,
            None,
            element + "<key>",
            field.name,
        )
        if key_rules is not None and key_rules.message_rules is not None:
            raise GenerationError(element, "map.keys cannot have message rules")
        value = self._value(
            entry.value.type,
            entry.value.type_ref,
            value_rules.type_rules if value_rules else None,
            value_rules.message_rules if value_rules else None,
            element + "<value>",
            field.name,
        )
        if not checks and key is None and value is None:
            return None
        return FieldPlan(
            field.name, FieldKind.MAP, False, None, value, key, tuple(checks), ignore_empty
        )

    def _value(
        self,
        field_type: FieldType,
        type_ref: TypeRef | None,
        rules: FamilyRules | None,
        message_rules: MessageFieldRules | None,
        element: str,
        field_name: str,
    ) -> ValuePlan | None:
        """Checks on one value (a field, an item or a map key/value), or None when none apply."""
        if field_type in (FieldType.MESSAGE, FieldType.GROUP):
            assert type_ref is not None
            return self._message_value(type_ref, rules, message_rules, element, field_name)
        family = _SCALAR_FAMILY[field_type]
        if rules is None:
            return None
        if rules.family != family:
            raise GenerationError(
                element, f"{rules.family} rules do not apply to a {field_type.value} field"
            )
        context = _Constants(self, field_name)
        if isinstance(rules, EnumRules):
            assert type_ref is not None
            numbers = self._planner.enum_numbers(type_ref)
            rules.conflicts(element, numbers)
            checks = rules.checks(context, numbers)
        else:
            checks = _scalar_checks(rules, element, context)
        if not checks:  # `string = {}` or ignore_empty alone: nothing to check
            return None
        return ValuePlan(Read.PLAIN, tuple(checks), _ignore_empty(rules), None)

    def _message_value(
        self,
        type_ref: TypeRef,
        rules: FamilyRules | None,
        message_rules: MessageFieldRules | None,
        element: str,
        field_name: str,
    ) -> ValuePlan | None:
        name = type_ref.proto_name
        if name in WRAPPERS:
            if rules is None:
                return None
            if rules.family != WRAPPERS[name]:
                raise GenerationError(element, f"{rules.family} rules do not apply to {name}")
            checks = _scalar_checks(rules, element, _Constants(self, field_name))
            if not checks:
                return None
            return ValuePlan(Read.WRAPPED, tuple(checks), _ignore_empty(rules), None)
        if name in WELL_KNOWN:
            if rules is None:
                return None
            family = WELL_KNOWN[name]
            if rules.family != family:
                raise GenerationError(element, f"{rules.family} rules do not apply to {name}")
            return self._well_known(rules, element, field_name)
        if rules is not None:
            raise GenerationError(element, f"{rules.family} rules do not apply to message {name}")
        if _skip(message_rules) or not self._planner.has_rules(type_ref):
            return None
        embedded = self._planner.embedded(type_ref, self._file.proto_path)
        if embedded.module != self._module and not embedded.dispatch:
            self.imports.add(embedded.module)
        return ValuePlan(Read.PLAIN, (), False, embedded)

    def _well_known(self, rules: FamilyRules, element: str, field_name: str) -> ValuePlan | None:
        context = _Constants(self, field_name)
        if isinstance(rules, AnyRules):
            url_checks = rules.checks(context)
            return ValuePlan(Read.TYPE_URL, tuple(url_checks), False, None) if url_checks else None
        assert isinstance(rules, DurationRules | TimestampRules)
        rules.conflicts(element)
        checks = rules.checks(context)
        return ValuePlan(Read.NANOS, tuple(checks), False, None) if checks else None


class _Constants:
    """A family's plan context: module constants named after the message, field and rule."""

    def __init__(self, builder: _FileBuilder, field_name: str) -> None:
        self._builder = builder
        self._field_name = field_name

    def constant(self, rule: str, kind: ConstantKind, values: tuple[Literal, ...]) -> str:
        return self._builder.constant(self._field_name, rule, kind, values)


def _scalar_checks(rules: FamilyRules, element: str, context: _Constants) -> list[Check]:
    """A scalar family's checks, after its conflict checks."""
    if isinstance(rules, EnumRules | RepeatedRules | MapRules | AnyRules | FieldMaskRules):
        raise GenerationError(element, f"{rules.family} rules do not apply here")
    if isinstance(rules, DurationRules | TimestampRules):
        raise GenerationError(element, f"{rules.family} rules do not apply here")
    rules.conflicts(element)
    return rules.checks(context)


def _ignore_empty(rules: FamilyRules) -> bool:
    return bool(getattr(rules, "ignore_empty", None))


def _protovalidate_oneofs(message: Message) -> tuple[OneofPlan, ...]:
    """protovalidate's required oneofs, for the examples to set one member of each."""
    plans = [
        OneofPlan(
            oneof.name,
            Check(CheckKind.NOT_EQUAL, "required", "exactly one field is required in oneof"),
            protovalidate=True,
        )
        for oneof in message.oneofs
        if oneof.protovalidate_required
    ]
    rules = message.protovalidate
    for rule in rules.oneofs if rules is not None else ():
        if rule.required:
            listed = ", ".join(rule.fields)
            plans.append(
                OneofPlan(
                    "",
                    Check(CheckKind.NOT_EQUAL, "message.oneof", f"one of {listed} must be set"),
                    protovalidate=True,
                    members=rule.fields,
                )
            )
    return tuple(plans)


# Collection rules the examples know by their shape: (rule path ending, check kind).
_COUNT_RULES = {
    "repeated.min_items": CheckKind.LEN_LT,
    "repeated.max_items": CheckKind.LEN_GT,
    "map.min_pairs": CheckKind.LEN_LT,
    "map.max_pairs": CheckKind.LEN_GT,
}


def _cel_checks(rules: ValueRules | None, *, collection: bool = False) -> tuple[Check, ...]:
    """Compiled protovalidate rules as plan checks: each broken when its expression is true;
    a collection's counts and uniqueness as the count checks the examples solve."""
    if rules is None:
        return ()
    checks = []
    for rule in rules.checks:
        kind = _COUNT_RULES.get(rule.rule_path) if collection else None
        bound = (
            next((c for c in cel_eval.constants(rule.failure) if isinstance(c, int)), None)
            if kind is not None and rule.failure is not None
            else None
        )
        if kind is not None and isinstance(bound, int):
            if kind is CheckKind.LEN_LT and bound == 1:
                kind = CheckKind.EMPTY
            checks.append(
                Check(kind, rule.rule_id, rule.message, arg=bound, rule_path=rule.rule_path)
            )
            continue
        if collection and rule.rule_path == "repeated.unique":
            checks.append(
                Check(CheckKind.NOT_UNIQUE, rule.rule_id, rule.message, rule_path=rule.rule_path)
            )
            continue
        failure = rule.failure
        if failure is None:
            assert rule.message_expression is not None
            failure = ir.Op("ne", (rule.message_expression, ir.Const("", ir.STRING)), ir.BOOL)
        checks.append(
            Check(
                CheckKind.CEL,
                rule.rule_id,
                rule.message,
                expression=failure,
                rule_path=rule.rule_path,
            )
        )
    return tuple(checks)


def _cel_value_plan(
    rules: ValueRules | None, field: Field, embedded: Embedded | None, *, item: bool = False
) -> ValuePlan | None:
    """A value's plan; `item`: a repeated item or map key or value, which is always present,
    so IGNORE_IF_ZERO_VALUE skips it when zero."""
    if rules is not None and rules.ignore is Ignore.ALWAYS:
        return None
    checks = _cel_checks(rules)
    if not checks and embedded is None:
        return None
    read = {"wrapper": Read.WRAPPED, "duration": Read.NANOS, "timestamp": Read.NANOS}.get(
        value_read(field), Read.PLAIN
    )
    zero_ignored = (
        rules is not None
        and rules.ignore is Ignore.IF_ZERO_VALUE
        and (item or not field.has_presence)
    )
    return ValuePlan(read, checks, zero_ignored, embedded)
