"""Validation plans from the model: typed rules -> checks, after rule_checks rejected conflicts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.model import cel_eval, naming
from protoc_gen_pyservice.model import cel_ir as ir
from protoc_gen_pyservice.model.nodes import (
    Enum,
    Field,
    FieldRules,
    FieldType,
    File,
    Message,
    RuleSet,
    RuleValue,
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
    Range,
    Read,
    ValidationPlan,
    ValuePlan,
)
from protoc_gen_pyservice.model.protovalidate import Ignore, ValueRules, value_read
from protoc_gen_pyservice.model.rule_checks import (
    NUMERIC_FAMILIES,
    check_rules,
    count,
    nanos,
    rule_dict,
)

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
# Formats whose usual spellings a precompiled pattern accepts outright: (that pattern, the
# check for everything else), so only unusual values pay for the full check.
_FAST_FORMATS = {"is_email": ("plain_email", "is_unusual_email")}
_FORMATS = {
    "email": ("is_email", "a valid email address"),
    "hostname": ("is_hostname", "a valid hostname"),
    "ip": ("is_ip", "a valid IP address"),
    "ipv4": ("is_ipv4", "a valid IPv4 address"),
    "ipv6": ("is_ipv6", "a valid IPv6 address"),
    "uri": ("is_uri", "a valid absolute URI"),
    "uri_ref": ("is_uri_ref", "a valid URI reference"),
    "address": ("is_address", "a valid hostname or IP address"),
    "uuid": ("is_uuid", "a valid UUID"),
}
_BYTES_FORMATS = {
    "ip": ("is_ip_bytes", "a valid IP address (4 or 16 bytes)"),
}
_HEADER_REGEXES = {
    1: ("is_header_name", "HTTP header name"),
    2: ("is_header_value", "HTTP header value"),
}
_BOUND_WORDS = {
    "gt": "greater than",
    "gte": "greater than or equal to",
    "lt": "less than",
    "lte": "less than or equal to",
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


def _required(rules: RuleSet | None) -> bool:
    return rules is not None and bool(rule_dict(rules).get("required"))


def _skip(rules: RuleSet | None) -> bool:
    return rules is not None and bool(rule_dict(rules).get("skip"))


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
        plans = [
            self._field(message, field)
            if field.protovalidate is None
            else self._protovalidate_plan(field)
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

    def _protovalidate_plan(self, field: Field) -> FieldPlan | None:
        """The plan of a protovalidate field, for the examples (the validator itself is
        written from the compiled rules)."""
        rules = field.protovalidate
        assert rules is not None
        if rules.ignore is Ignore.ALWAYS:
            return None
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
                _cel_value_plan(rules.items, field.map_entry.value, embedded),
                _cel_value_plan(rules.keys, field.map_entry.key, None),
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
                _cel_value_plan(rules.items, field, embedded),
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

    def _constant(
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
            and type_rules is not None
            and type_rules.family in WELL_KNOWN.values()
            and rule_dict(type_rules).get("required")
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
        self, message: Message, field: Field, rules: RuleSet | None, element: str
    ) -> FieldPlan | None:
        checks: list[Check] = []
        item_rules: FieldRules | None = None
        ignore_empty = False
        if rules is not None:
            check_rules(rules, element)
            values = rule_dict(rules)
            checks += _count_checks(values, "repeated", "min_items", "max_items", "item")
            if values.get("unique"):
                if field.type in (FieldType.MESSAGE, FieldType.GROUP):
                    raise GenerationError(
                        element, "repeated.unique does not apply to message items"
                    )
                checks.append(
                    Check(
                        CheckKind.NOT_UNIQUE,
                        "repeated.unique",
                        "repeated value must contain unique items",
                    )
                )
            item_rules = _nested_rules(values.get("items"))
            ignore_empty = bool(values.get("ignore_empty"))
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
        self, message: Message, field: Field, rules: RuleSet | None, element: str
    ) -> FieldPlan | None:
        entry = field.map_entry
        assert entry is not None
        if rules is not None and rules.family != "map":
            raise GenerationError(element, f"{rules.family} rules do not apply to a map field")
        checks: list[Check] = []
        key_rules = value_rules = None
        ignore_empty = False
        if rules is not None:
            check_rules(rules, element)
            values = rule_dict(rules)
            checks += _count_checks(values, "map", "min_pairs", "max_pairs", "pair")
            if values.get("no_sparse") and entry.value.type is not FieldType.MESSAGE:
                raise GenerationError(
                    element, "map.no_sparse applies only to maps with message values"
                )
            key_rules = _nested_rules(values.get("keys"))
            value_rules = _nested_rules(values.get("values"))
            ignore_empty = bool(values.get("ignore_empty"))
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
        rules: RuleSet | None,
        message_rules: RuleSet | None,
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
        enum_numbers = self._planner.enum_numbers(type_ref) if type_ref is not None else None
        check_rules(rules, element, defined_enum_values=enum_numbers)
        checks = self._scalar_checks(rules, field_name, enum_numbers)
        if not checks:  # `string = {}` or ignore_empty alone: nothing to check
            return None
        return ValuePlan(
            Read.PLAIN, tuple(checks), bool(rule_dict(rules).get("ignore_empty")), None
        )

    def _message_value(
        self,
        type_ref: TypeRef,
        rules: RuleSet | None,
        message_rules: RuleSet | None,
        element: str,
        field_name: str,
    ) -> ValuePlan | None:
        name = type_ref.proto_name
        if name in WRAPPERS:
            if rules is None:
                return None
            if rules.family != WRAPPERS[name]:
                raise GenerationError(element, f"{rules.family} rules do not apply to {name}")
            check_rules(rules, element)
            checks = self._scalar_checks(rules, field_name, None)
            if not checks:
                return None
            return ValuePlan(
                Read.WRAPPED, tuple(checks), bool(rule_dict(rules).get("ignore_empty")), None
            )
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

    def _well_known(self, rules: RuleSet, element: str, field_name: str) -> ValuePlan | None:
        family = rules.family
        values = rule_dict(rules)
        if family == "any":
            url_checks = self._set_checks(values, "any", field_name, _literal, "type URL")
            return ValuePlan(Read.TYPE_URL, tuple(url_checks), False, None) if url_checks else None

        def to_nanos(value: RuleValue, rule: str) -> int:
            return nanos(value, element, rule, "duration" if rule == "within" else family)

        check_rules(rules, element, to_number=to_nanos)
        checks: list[Check] = []
        if "const" in values:
            checks.append(
                Check(
                    CheckKind.NOT_EQUAL,
                    f"{family}.const",
                    f"value must equal {_show_nanos(to_nanos(values['const'], 'const'))}",
                    arg=to_nanos(values["const"], "const"),
                )
            )
        checks += self._range_checks(values, family, lambda v, rule: to_nanos(v, rule), _show_nanos)
        checks += self._set_checks(values, family, field_name, lambda v: to_nanos(v, "in"), "value")
        if values.get("lt_now"):
            checks.append(
                Check(CheckKind.NOT_BEFORE_NOW, "timestamp.lt_now", "value must be less than now")
            )
        if values.get("gt_now"):
            checks.append(
                Check(CheckKind.NOT_AFTER_NOW, "timestamp.gt_now", "value must be greater than now")
            )
        if "within" in values:
            within = to_nanos(values["within"], "within")
            checks.append(
                Check(
                    CheckKind.NOT_WITHIN,
                    "timestamp.within",
                    f"value must be within {_show_nanos(within)} of now",
                    arg=within,
                )
            )
        return ValuePlan(Read.NANOS, tuple(checks), False, None) if checks else None

    def _scalar_checks(
        self, rules: RuleSet, field_name: str, enum_numbers: frozenset[int] | None
    ) -> list[Check]:
        family = rules.family
        values = rule_dict(rules)
        checks: list[Check] = []
        if "const" in values:
            const = values["const"]
            checks.append(
                Check(
                    CheckKind.NOT_IDENTICAL if isinstance(const, bool) else CheckKind.NOT_EQUAL,
                    f"{family}.const",
                    f"value must equal {_clip(_show(_literal(const)))}",
                    arg=_literal(const),
                )
            )
        if family in NUMERIC_FAMILIES:
            checks += self._range_checks(values, family, lambda v, _: _number(v), _show)
        if family == "enum" and values.get("defined_only"):
            assert enum_numbers is not None
            name = self._constant(
                field_name, "defined", ConstantKind.FROZENSET, tuple(sorted(enum_numbers))
            )
            checks.append(
                Check(
                    CheckKind.NOT_IN,
                    "enum.defined_only",
                    "value must be one of the defined enum values",
                    constant=name,
                )
            )
        if family in ("string", "bytes"):
            checks += self._text_checks(values, family, field_name)
        checks += self._set_checks(values, family, field_name, _literal, "value")
        return checks

    def _range_checks(
        self,
        values: dict[str, RuleValue],
        family: str,
        convert: Callable[[RuleValue, str], Literal],
        show: Callable[[Literal], str],
    ) -> list[Check]:
        lower_rule = next((rule for rule in ("gt", "gte") if rule in values), None)
        upper_rule = next((rule for rule in ("lt", "lte") if rule in values), None)
        if lower_rule is None and upper_rule is None:
            return []
        lower = convert(values[lower_rule], lower_rule) if lower_rule else None
        upper = convert(values[upper_rule], upper_rule) if upper_rule else None
        exclusive = lower is not None and upper is not None and lower > upper  # type: ignore[operator]
        rule_id = f"{family}." + "_".join(r for r in (lower_rule, upper_rule) if r)
        if exclusive:
            rule_id += "_exclusive"
        if lower is not None and upper is not None:
            # Interval notation over the valid (inside) or invalid (outside) values.
            if exclusive:
                left = "(" if upper_rule == "lte" else "["
                right = ")" if lower_rule == "gte" else "]"
                span = f"{left}{show(upper)}, {show(lower)}{right}"
                message = f"value must be outside range {span}"
            else:
                left = "[" if lower_rule == "gte" else "("
                right = "]" if upper_rule == "lte" else ")"
                message = f"value must be inside range {left}{show(lower)}, {show(upper)}{right}"
        else:
            rule = lower_rule or upper_rule
            bound = lower if lower is not None else upper
            assert rule is not None and bound is not None
            message = f"value must be {_BOUND_WORDS[rule]} {show(bound)}"
        bounds = Range(
            lower=lower,
            lower_inclusive=lower_rule == "gte",
            upper=upper,
            upper_inclusive=upper_rule == "lte",
            exclusive=exclusive,
        )
        return [Check(CheckKind.RANGE, rule_id, message, bounds=bounds)]

    def _set_checks(
        self,
        values: dict[str, RuleValue],
        family: str,
        field_name: str,
        convert: Callable[[RuleValue], Literal],
        what: str,
    ) -> list[Check]:
        checks = []
        for rule, kind, verb in (
            ("in", CheckKind.NOT_IN, "must"),
            ("not_in", CheckKind.IN, "must not"),
        ):
            members = values.get(rule)
            if not members:
                continue
            assert isinstance(members, tuple)
            literals = tuple(convert(member) for member in members)
            name = self._constant(field_name, rule, ConstantKind.FROZENSET, literals)
            shown = _clip(", ".join(_show(literal) for literal in literals))
            checks.append(
                Check(
                    kind, f"{family}.{rule}", f"{what} {verb} be in list [{shown}]", constant=name
                )
            )
        return checks

    def _text_checks(
        self, values: dict[str, RuleValue], family: str, field_name: str
    ) -> list[Check]:
        checks: list[Check] = []
        unit = "characters" if family == "string" else "bytes"
        for rule, kind, relation, counted in (
            ("len", CheckKind.LEN_NE, "exactly", unit),
            ("min_len", CheckKind.LEN_LT, "at least", unit),
            ("max_len", CheckKind.LEN_GT, "at most", unit),
            ("len_bytes", CheckKind.UTF8_LEN_NE, "exactly", "bytes"),
            ("min_bytes", CheckKind.UTF8_LEN_LT, "at least", "bytes"),
            ("max_bytes", CheckKind.UTF8_LEN_GT, "at most", "bytes"),
        ):
            if rule in values and not _vacuous(kind, values[rule]):
                checks.append(
                    Check(
                        _minimum(kind, values[rule]),
                        f"{family}.{rule}",
                        f"value length must be {relation} {count(values, rule)} {counted}",
                        arg=_literal(values[rule]),
                    )
                )
        if "pattern" in values:
            pattern = values["pattern"]
            assert isinstance(pattern, str)
            literal: Literal = pattern if family == "string" else pattern.encode()
            name = self._constant(field_name, "pattern", ConstantKind.PATTERN, (literal,))
            checks.append(
                Check(
                    CheckKind.NO_MATCH,
                    f"{family}.pattern",
                    f"value does not match regex pattern {_clip(repr(pattern))}",
                    constant=name,
                )
            )
        for rule, kind, phrase in (
            ("prefix", CheckKind.NO_PREFIX, "does not have prefix"),
            ("suffix", CheckKind.NO_SUFFIX, "does not have suffix"),
            ("contains", CheckKind.NO_CONTAINS, "does not contain substring"),
            ("not_contains", CheckKind.CONTAINS, "contains substring"),
        ):
            if rule in values:
                checks.append(
                    Check(
                        _minimum(kind, values[rule]),
                        f"{family}.{rule}",
                        f"value {phrase} {_clip(repr(values[rule]))}",
                        arg=_literal(values[rule]),
                    )
                )
        formats = (
            _FORMATS
            if family == "string"
            else {**_BYTES_FORMATS, "ipv4": ("", ""), "ipv6": ("", "")}
        )
        for rule in formats:
            if not values.get(rule):
                continue
            if family == "bytes" and rule in ("ipv4", "ipv6"):
                size = 4 if rule == "ipv4" else 16
                label = "IPv4" if rule == "ipv4" else "IPv6"
                checks.append(
                    Check(
                        CheckKind.LEN_NE,
                        f"bytes.{rule}",
                        f"value must be a valid {label} address ({size} bytes)",
                        arg=size,
                    )
                )
                continue
            function, description = formats[rule]
            fast_function = None
            if function in _FAST_FORMATS:
                fast_function, function = _FAST_FORMATS[function]
            checks.append(
                Check(
                    CheckKind.FORMAT,
                    f"{family}.{rule}",
                    f"value must be {description}",
                    function=function,
                    fast_function=fast_function,
                )
            )
        known = values.get("well_known_regex")
        if isinstance(known, int) and known in _HEADER_REGEXES:
            function, description = _HEADER_REGEXES[known]
            strict = bool(values.get("strict", True))
            checks.append(
                Check(
                    CheckKind.FORMAT,
                    f"{family}.well_known_regex",
                    f"value must be a valid {description}",
                    arg=strict,
                    function=function,
                )
            )
        return checks


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
    rules: ValueRules | None, field: Field, embedded: Embedded | None
) -> ValuePlan | None:
    if rules is not None and rules.ignore is Ignore.ALWAYS:
        return None
    checks = _cel_checks(rules)
    if not checks and embedded is None:
        return None
    read = {"wrapper": Read.WRAPPED, "duration": Read.NANOS, "timestamp": Read.NANOS}.get(
        value_read(field), Read.PLAIN
    )
    zero_ignored = (
        rules is not None and rules.ignore is Ignore.IF_ZERO_VALUE and not field.has_presence
    )
    return ValuePlan(read, checks, zero_ignored, embedded)


def _minimum(kind: CheckKind, bound: RuleValue) -> CheckKind:
    """A minimum of one (code point, byte, item) is simply "not empty"."""
    if kind in (CheckKind.LEN_LT, CheckKind.UTF8_LEN_LT) and bound == 1:
        return CheckKind.EMPTY
    return kind


def _vacuous(kind: CheckKind, value: RuleValue) -> bool:
    """A minimum length or count of 0 holds for every value: no check is made for it, and no
    test case could break it."""
    return kind in (CheckKind.LEN_LT, CheckKind.UTF8_LEN_LT) and value == 0


def _count_checks(
    values: dict[str, RuleValue], family: str, low: str, high: str, noun: str
) -> list[Check]:
    checks = []
    for rule, kind, relation in (
        (low, CheckKind.LEN_LT, "at least"),
        (high, CheckKind.LEN_GT, "at most"),
    ):
        if rule in values and not _vacuous(kind, values[rule]):
            checks.append(
                Check(
                    _minimum(kind, values[rule]),
                    f"{family}.{rule}",
                    f"value must contain {relation} {count(values, rule)} {noun}(s)",
                    arg=_literal(values[rule]),
                )
            )
    return checks


def _nested_rules(value: RuleValue | None) -> FieldRules | None:
    """`items`, `keys` and `values` hold FieldRules, kept as a RuleSet of rule families."""
    if value is None:
        return None
    assert isinstance(value, RuleSet)
    families = dict(value.values)
    message_rules = families.pop("message", None)
    type_rules = next(iter(families.values()), None)
    assert type_rules is None or isinstance(type_rules, RuleSet)
    assert message_rules is None or isinstance(message_rules, RuleSet)
    return FieldRules(type_rules=type_rules, message_rules=message_rules)


def _literal(value: RuleValue) -> Literal:
    assert isinstance(value, bool | int | float | str | bytes)
    return value


def _number(value: RuleValue) -> Literal:
    assert isinstance(value, int | float) and not isinstance(value, bool)
    return value


def _show(value: Literal) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bytes):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _show_nanos(value: Literal) -> str:
    assert isinstance(value, int)
    seconds, fraction = divmod(value, 1_000_000_000)
    return f"{seconds}.{fraction:09d}s".replace(".000000000s", "s")


def _clip(text: str, limit: int = 40) -> str:
    """Rule values shown in messages stay short; the rule id names the rule exactly."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
