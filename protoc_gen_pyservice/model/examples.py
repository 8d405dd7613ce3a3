"""Example requests from the validation plans: for every request type of a file's RPCs, a
value that passes every rule, and for every rule on it or on the messages inside it, a change
to that value that breaks that rule alone.

Plain frozen data, no code text: values are trees of Scalar, EnumConstant, MessageValue,
ListValue, MapValue, TimestampFromNow and Provided (a value only the user can give, read
through runtime.testing.example at build time); a case is a Change at a place in the valid
request. Rules no single change can break alone are listed as Skipped, with the reason.

Valid requests are minimal: a field is set only when leaving it unset would break a rule.
Rules inside messages the valid request leaves unset (optional messages, oneof members,
empty collections) are broken by setting them to a valid value with the rule broken.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable
from typing import NamedTuple, TypeAlias

from protoc_gen_pyservice.model import cel_eval, naming
from protoc_gen_pyservice.model.nodes import Field, FieldType, File, Message, Service, TypeRef
from protoc_gen_pyservice.model.plan import (
    Check,
    CheckKind,
    Constant,
    FieldKind,
    FieldPlan,
    Literal,
    MessagePlan,
    OneofPlan,
    ValuePlan,
)
from protoc_gen_pyservice.model.solve import Domain, FromNow, Values
from protoc_gen_pyservice.model.validation import (
    _SCALAR_FAMILY,
    WELL_KNOWN,
    WRAPPERS,
    ValidationPlanner,
)

_NANOS = 1_000_000_000


# Values


class Scalar(NamedTuple):
    value: Literal


class EnumConstant(NamedTuple):
    enum: TypeRef
    name: str | None  # the first value with this number; None for a number no value has
    number: int


class FieldValue(NamedTuple):
    name: str  # the proto field name, also protoc's Python attribute
    value: Value


class MessageValue(NamedTuple):
    ref: TypeRef
    fields: tuple[FieldValue, ...]  # in declaration order


class ListValue(NamedTuple):
    items: tuple[Value, ...]


class MapValue(NamedTuple):
    entries: tuple[tuple[Value, Value], ...]


class TimestampFromNow(NamedTuple):
    """A Timestamp this many seconds from when the request is built (rules against the clock)."""

    seconds: int


class Provided(NamedTuple):
    """A field value the user gives through runtime.testing.provide_example(field, value)."""

    field: str  # the field's full proto name: pkg.Message.field
    rule: str  # the rule no value could be derived for
    detail: str


Value: TypeAlias = (
    "Scalar | EnumConstant | MessageValue | ListValue | MapValue | TimestampFromNow | Provided"
)


# Cases


class Step(NamedTuple):
    """One step from a message into a field: the field itself, or an item (an index, or a
    map key) of it."""

    field: str
    item: Scalar | None = None


class ChangeKind(enum.Enum):
    SET = "set"  # the field takes `value` (a message value is copied in)
    CLEAR = "clear"  # the field, or every field of the oneof of that name, is cleared
    ITEMS = "items"  # the repeated field's items become `value`'s
    ENTRIES = "entries"  # the map's entries become `value`'s


class Change(NamedTuple):
    container: tuple[Step, ...]  # from the request to the message holding `field`
    field: str
    kind: ChangeKind
    value: Value | None = None


class Case(NamedTuple):
    name: str  # a pytest id, unique within its request type: "email-string.email"
    field_path: str  # as the validator reports it: email, profile.name, tags[0], labels["k"]
    rule_id: str
    change: Change
    function: str  # the Python name of the function that builds it


class Skipped(NamedTuple):
    field_path: str
    rule_id: str
    reason: str


class RequestExamples(NamedTuple):
    ref: TypeRef
    builder: str  # valid_create_user_request
    cases_name: str  # INVALID_CREATE_USER_REQUEST
    valid: MessageValue
    cases: tuple[Case, ...]
    skipped: tuple[Skipped, ...]


class ServiceTesting(NamedTuple):
    service: Service
    serve_function: str  # serve_user_service
    fixture_function: str  # user_service_client_fixture


class TestingPlan(NamedTuple):
    """What a file's `_testing.py` holds."""

    services: tuple[ServiceTesting, ...]
    requests: tuple[RequestExamples, ...]


class _Break(NamedTuple):
    path: str  # relative to the message the change is relative to
    rule_id: str
    change: Change


class _Found(NamedTuple):
    breaks: list[_Break]
    skipped: list[Skipped]


class _Slot(NamedTuple):
    """A field of a message being built: its rules, and the message types around it (where
    recursion stops)."""

    message: Message
    field: Field
    plan: FieldPlan | None
    constants: dict[str, Constant]
    ancestors: tuple[str, ...]


_ALL_PASS = "no value passes all of its rules"


def key_text(key: Literal) -> str:
    """A map key as field paths show it; the same as runtime.validation.key_text."""
    if isinstance(key, str):
        return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


class ExamplesPlanner:
    """Plans the `_testing.py` of each generated file with services."""

    def __init__(self, planner: ValidationPlanner) -> None:
        self._planner = planner
        # The valid values of the message whose cases are being found: the message's own
        # CEL rules must keep holding when a case changes one field.
        self._current: dict[str, Value] = {}

    def plan(self, file: File) -> TestingPlan:
        taken: set[str] = set()
        services = tuple(
            ServiceTesting(
                service=service,
                serve_function=naming.unique(f"serve_{naming.snake_case(service.name)}", taken),
                fixture_function=naming.unique(
                    f"{naming.snake_case(service.name)}_client_fixture", taken
                ),
            )
            for service in file.services
        )
        requests: dict[str, TypeRef] = {}
        for service in file.services:
            for method in service.methods:
                requests.setdefault(method.request.proto_name, method.request)
        stems: set[str] = set()
        return TestingPlan(
            services=services,
            requests=tuple(self._request(ref, _stem(ref, stems)) for ref in requests.values()),
        )

    def _request(self, ref: TypeRef, stem: str) -> RequestExamples:
        valid = self._valid_message(ref, ())
        assert isinstance(valid, MessageValue)  # only fields can need a provided value
        found = self._breaks(ref, valid, ())
        names: set[str] = set()
        cases = tuple(
            Case(
                name=naming.unique(_case_name(item.path, item.rule_id), names),
                field_path=item.path,
                rule_id=item.rule_id,
                change=item.change,
                function=f"_invalid_{stem}_{number}",
            )
            for number, item in enumerate(found.breaks, 1)
        )
        return RequestExamples(
            ref=ref,
            builder=f"valid_{stem}",
            cases_name=f"INVALID_{stem.upper()}",
            valid=valid,
            cases=cases,
            skipped=tuple(found.skipped),
        )

    # Valid values

    def _valid_message(self, ref: TypeRef, ancestors: tuple[str, ...]) -> MessageValue | Provided:
        if ref.proto_name in WELL_KNOWN or ref.proto_name in WRAPPERS:
            return MessageValue(ref, ())
        message = self._planner.message(ref)
        planned = self._planner.message_plan(ref)
        plans = {plan.name: plan for plan in planned[0].fields} if planned else {}
        constants = planned[1] if planned else {}
        inside = (*ancestors, ref.proto_name)
        values: dict[str, Value] = {}
        for field in message.fields:
            value = self._valid_field(
                _Slot(message, field, plans.get(field.name), constants, inside)
            )
            if value is not None:
                values[field.name] = value
        for oneof in planned[0].oneofs if planned else ():
            members = _members(message, oneof)
            if any(name in values for name in members):
                continue
            for name in members:
                field = _field(message, name)
                value = self._chosen_member(
                    _Slot(message, field, plans.get(name), constants, inside)
                )
                if value is not None:
                    values[name] = value
                    break
        if message.protovalidate is not None and message.protovalidate.checks:
            self._satisfy_message_rules(message, plans, constants, values)
        return MessageValue(
            ref,
            tuple(FieldValue(f.name, values[f.name]) for f in message.fields if f.name in values),
        )

    def _satisfy_message_rules(
        self,
        message: Message,
        plans: dict[str, FieldPlan],
        constants: dict[str, Constant],
        values: dict[str, Value],
    ) -> None:
        """Change scalar fields the message's own CEL rules read until they all hold, trying
        a few valid values of each (bounded); a Provided value when none do."""
        if _message_rules_hold(message, values):
            return
        assert message.protovalidate is not None
        names: list[str] = []
        for check in message.protovalidate.checks:
            for expression in (check.failure, check.message_expression):
                if expression is not None:
                    names += [n for n in cel_eval.fields_read(expression) if n not in names]
        options: list[list[Value | None]] = []
        fields: list[Field] = []
        for name in names[:3]:
            field = _field(message, name)
            if field.repeated or field.map_entry is not None or _is_plain_message(field):
                continue
            plan = plans.get(name)
            found = self._values(
                field.type, field.type_ref, plan.value if plan else None, constants
            )
            if found is None:
                found = Values(self._domain(field.type, field.type_ref), (), {}, False)
            candidates = found.passing(6, filled=True) or found.passing(1, filled=True) or []
            fields.append(field)
            options.append(
                [values.get(name), *(self._node(field.type, field.type_ref, c) for c in candidates)]
            )
        for combination in itertools.islice(itertools.product(*options), 500):
            trial = dict(values)
            for field, value in zip(fields, combination, strict=True):
                if value is None:
                    trial.pop(field.name, None)
                else:
                    trial[field.name] = value
            if _message_rules_hold(message, trial):
                values.clear()
                values.update(trial)
                return
        if fields:
            values[fields[0].name] = Provided(
                _full_name(message, fields[0]),
                message.protovalidate.checks[0].rule_id,
                "no example derived passes the message's own CEL rules",
            )

    def _valid_field(self, slot: _Slot) -> Value | None:
        """The field's value in a valid message, None where unset is valid."""
        message, field, plan, constants, ancestors = slot
        if field.map_entry is not None or field.repeated:
            count = _minimum_count(plan)
            cel_rules = [
                c for c in (plan.collection_checks if plan else ()) if c.kind is CheckKind.CEL
            ]
            if count == 0 and _collection_passes(cel_rules, _empty(field.map_entry is not None)):
                return None
            items = self._items(slot, max(count, 1)) if cel_rules or count else None
            if items is None:
                return _provided_collection(message, field, plan)
            if not _collection_passes(cel_rules, items):
                # A CEL rule on the whole collection: examples do not solve those.
                return Provided(
                    _full_name(message, field),
                    cel_rules[0].rule_id,
                    "no example derived passes the CEL rules on the whole collection",
                )
            return items
        value_plan = plan.value if plan is not None else None
        if _is_plain_message(field):
            assert field.type_ref is not None
            required = plan is not None and plan.required is not None
            if not (required or field.legacy_required):
                return None
            if field.type_ref.proto_name in ancestors:
                return Provided(
                    _full_name(message, field),
                    "message.required",
                    "the message type contains itself through required fields",
                )
            return self._valid_message(field.type_ref, ancestors)
        required = plan is not None and plan.required is not None
        if field.has_presence and not (required or field.legacy_required):
            return None  # unset, so not checked
        values = self._values(field.type, field.type_ref, value_plan, constants)
        if values is None:
            if field.has_presence or required:
                return self._any_value(field.type, field.type_ref)
            return None
        found = values.passing(filled=field.has_presence or required)
        if found is None:
            return _provided(message, field, values)
        if values.is_empty(found[0]) and not field.has_presence:
            return None
        return self._node(field.type, field.type_ref, found[0])

    def _chosen_member(self, slot: _Slot) -> Value | None:
        """A value for the member of a required oneof the valid message sets."""
        _, field, plan, constants, ancestors = slot
        if _is_plain_message(field):
            assert field.type_ref is not None
            if field.type_ref.proto_name in ancestors:
                return None
            return self._valid_message(field.type_ref, ancestors)
        values = self._values(field.type, field.type_ref, plan.value if plan else None, constants)
        if values is None:
            return self._any_value(field.type, field.type_ref)
        found = values.passing(filled=True)
        return self._node(field.type, field.type_ref, found[0]) if found else None

    def _any_value(self, kind: FieldType, ref: TypeRef | None) -> Value:
        """A value for a field without rules that must be set."""
        if kind in (FieldType.MESSAGE, FieldType.GROUP):
            assert ref is not None
            found = self._valid_message(ref, ())
            return found if isinstance(found, MessageValue) else MessageValue(ref, ())
        values = Values(self._domain(kind, ref), (), {}, ignore_empty=False)
        passing = values.passing(filled=True)
        assert passing is not None
        return self._node(kind, ref, passing[0])

    def _items(
        self, slot: _Slot, count: int, first: Value | None = None, first_key: Literal | None = None
    ) -> ListValue | MapValue | None:
        """`count` valid items (distinct where they must be; map keys always are), the first
        item replaced by `first`, the first key by `first_key`, when given; None when not
        that many can be found."""
        _, field, plan, constants, ancestors = slot
        value_field = field.map_entry.value if field.map_entry else field
        if _is_plain_message(value_field):
            assert value_field.type_ref is not None
            if value_field.type_ref.proto_name in ancestors:
                return None
            item = self._valid_message(value_field.type_ref, ancestors)
            nodes: list[Value] = [item] * count
        else:
            value_plan = plan.value if plan is not None else None
            values = self._values(
                value_field.type, value_field.type_ref, value_plan, constants
            ) or Values(self._domain(value_field.type, value_field.type_ref), (), {}, False)
            wanted = max(count - (first is not None), 1)
            found = values.passing(wanted, filled=True)
            if found is None:
                single = values.passing(filled=True)
                if _unique_items(plan) or single is None:
                    return None
                found = single * wanted
            nodes = [self._node(value_field.type, value_field.type_ref, v) for v in found]
        if first is not None:
            nodes = [first, *[node for node in nodes if node != first]]
        nodes = nodes[:count]
        if len(nodes) < count:
            return None
        if field.map_entry is None:
            return ListValue(tuple(nodes))
        keys = self._keys(slot, count, first_key)
        if keys is None:
            return None
        return MapValue(tuple(zip((Scalar(key) for key in keys), nodes, strict=True)))

    def _keys(self, slot: _Slot, count: int, first: Literal | None) -> list[Literal] | None:
        _, field, plan, constants, _ = slot
        assert field.map_entry is not None
        key_field = field.map_entry.key
        checks = plan.key.checks if plan is not None and plan.key is not None else ()
        values = Values(self._domain(key_field.type, None), checks, constants, False)
        found = values.passing(count, filled=True)
        if found is None:
            return None
        if first is not None:
            found = [first, *[key for key in found if key != first]][:count]
        return found

    # Cases

    def _breaks(self, ref: TypeRef, valid: MessageValue, ancestors: tuple[str, ...]) -> _Found:
        planned = self._planner.message_plan(ref)
        found = _Found([], [])
        if planned is None:
            return found
        plan, constants = planned
        message = self._planner.message(ref)
        inside = (*ancestors, ref.proto_name)
        current = {value.name: value.value for value in valid.fields}
        outer_current = self._current
        self._current = current
        try:
            self._field_breaks(plan, constants, message, inside, current, found)
        finally:
            self._current = outer_current
        self._message_rule_breaks(message, plan, constants, current, found)
        return self._oneof_breaks(plan, message, current, found)

    def _field_breaks(
        self,
        plan: MessagePlan,
        constants: dict[str, Constant],
        message: Message,
        inside: tuple[str, ...],
        current: dict[str, Value],
        found: _Found,
    ) -> None:
        for field_plan in plan.fields:
            field = _field(message, field_plan.name)
            value = current.get(field.name)
            if isinstance(value, Provided):
                found.skipped.extend(
                    Skipped(field.name, rule, f"its valid value is the example for {value.field}")
                    for rule in _rule_ids(field_plan)
                )
                continue
            slot = _Slot(message, field, field_plan, constants, inside)
            if field_plan.kind is FieldKind.SINGLE:
                self._single_breaks(slot, value, found)
            else:
                self._collection_breaks(slot, value, found)

    def _message_rule_breaks(
        self,
        message: Message,
        plan: MessagePlan,
        constants: dict[str, Constant],
        current: dict[str, Value],
        found: _Found,
    ) -> None:
        """A case for each of the message's own CEL rules: one scalar field it reads set to
        a value valid for the field that breaks that rule alone."""
        rules = message.protovalidate
        if rules is None:
            return
        plans = {field_plan.name: field_plan for field_plan in plan.fields}
        for index, check in enumerate(rules.checks):
            change = self._message_rule_break(message, plans, constants, current, index)
            if change is None:
                found.skipped.append(
                    Skipped("", check.rule_id, "no single field change breaks this rule alone")
                )
            else:
                found.breaks.append(_Break("", check.rule_id, change))

    def _message_rule_break(
        self,
        message: Message,
        plans: dict[str, FieldPlan],
        constants: dict[str, Constant],
        current: dict[str, Value],
        index: int,
    ) -> Change | None:
        assert message.protovalidate is not None
        check = message.protovalidate.checks[index]
        expression = check.failure if check.failure is not None else check.message_expression
        assert expression is not None
        for name in cel_eval.fields_read(expression):
            field = _field(message, name)
            if field.repeated or field.map_entry is not None or _is_plain_message(field):
                continue
            plan = plans.get(name)
            values = self._values(
                field.type, field.type_ref, plan.value if plan else None, constants
            )
            if values is None:
                values = Values(self._domain(field.type, field.type_ref), (), {}, False)
            for candidate in values.passing(12, filled=True) or []:
                node = self._node(field.type, field.type_ref, candidate)
                outcomes = _message_rule_outcomes(message, {**current, name: node})
                if outcomes is not None and [not ok for ok in outcomes] == [
                    position == index for position in range(len(outcomes))
                ]:
                    return Change((), name, ChangeKind.SET, node)
        return None

    def _oneof_breaks(
        self, plan: MessagePlan, message: Message, current: dict[str, Value], found: _Found
    ) -> _Found:
        for oneof in plan.oneofs:
            members = _members(message, oneof)
            if oneof.members:
                found.skipped.append(
                    Skipped(
                        "", oneof.check.rule_id, "a message oneof rule is no real oneof to clear"
                    )
                )
            elif any(name in current for name in members):
                found.breaks.append(
                    _Break(
                        oneof.name, oneof.check.rule_id, Change((), oneof.name, ChangeKind.CLEAR)
                    )
                )
            else:
                found.skipped.append(
                    Skipped(oneof.name, oneof.check.rule_id, "no member can be set validly")
                )
        return found

    def _single_breaks(self, slot: _Slot, current: Value | None, found: _Found) -> None:
        _, field, plan, constants, ancestors = slot
        assert plan is not None
        name = field.name
        if plan.required is not None:  # so the valid message sets it
            found.breaks.append(
                _Break(name, plan.required.rule_id, Change((), name, ChangeKind.CLEAR))
            )
        value_plan = plan.value
        if value_plan is None:
            return
        if value_plan.embedded is not None:
            assert field.type_ref is not None
            self._nested_breaks(name, None, field.type_ref, current, ancestors, found, name)
            return
        values = self._values(field.type, field.type_ref, value_plan, constants)
        assert values is not None
        message = slot.message

        def keeps_message_rules(candidate: object) -> bool:
            if message.protovalidate is None or not message.protovalidate.checks:
                return True
            trial = {**self._current, name: self._node(field.type, field.type_ref, candidate)}
            return _message_rules_hold(message, trial)

        for index, check in enumerate(value_plan.checks):
            bad = values.breaking(index, keeps_message_rules)
            if bad is None:
                found.skipped.append(Skipped(name, check.rule_id, _why_unbreakable(values, check)))
                continue
            node = self._node(field.type, field.type_ref, bad)
            found.breaks.append(_Break(name, check.rule_id, Change((), name, ChangeKind.SET, node)))

    def _nested_breaks(
        self,
        field: str,
        item: Scalar | None,
        ref: TypeRef,
        current: Value | None,
        ancestors: tuple[str, ...],
        found: _Found,
        path: str,
        wrap: ChangeKind = ChangeKind.SET,
        rebuild: Callable[[MessageValue], Value] | None = None,
        skip_empty: bool = False,
    ) -> None:
        """The breaks inside a message-typed value at `path`: changes inside it where the
        valid message has it (`current`), else the whole value set to a broken one."""
        if ref.proto_name in ancestors:
            return  # the same rules, one level up
        nested = (
            current if isinstance(current, MessageValue) else self._valid_message(ref, ancestors)
        )
        if not isinstance(nested, MessageValue):
            return
        inner = self._breaks(ref, nested, ancestors)
        found.skipped.extend(
            Skipped(f"{path}.{skip.field_path}", skip.rule_id, skip.reason)
            for skip in inner.skipped
        )
        for broken in inner.breaks:
            inner_path = f"{path}.{broken.path}" if broken.path else path
            if skip_empty and _is_zero(self._apply(nested, broken.change)):
                found.skipped.append(
                    Skipped(
                        inner_path,
                        broken.rule_id,
                        "the item it breaks is empty, and not checked (IGNORE_IF_ZERO_VALUE)",
                    )
                )
                continue
            if isinstance(current, MessageValue):
                change = broken.change._replace(
                    container=(Step(field, item), *broken.change.container)
                )
            else:
                changed = self._apply(nested, broken.change)
                value = rebuild(changed) if rebuild is not None else changed
                change = Change((), field, wrap, value)
            found.breaks.append(_Break(inner_path, broken.rule_id, change))

    def _collection_breaks(self, slot: _Slot, current: Value | None, found: _Found) -> None:
        _, field, plan, constants, ancestors = slot
        assert plan is not None
        name = field.name
        is_map = field.map_entry is not None
        kind = ChangeKind.ENTRIES if is_map else ChangeKind.ITEMS
        low, high = _count_bounds(plan)
        valid_count = max(low, 1)

        def items(
            count: int, first: Value | None = None, first_key: Literal | None = None
        ) -> ListValue | MapValue | None:
            return self._items(slot, count, first, first_key)

        for check in plan.collection_checks:
            changed: ListValue | MapValue | None = None
            reason = (
                "a CEL rule on the whole collection is not solved"
                if check.kind is CheckKind.CEL
                else "no items of that count could be derived"
            )
            if check.kind in (CheckKind.LEN_LT, CheckKind.EMPTY):
                if plan.collection_ignore_empty and low - 1 == 0:
                    reason = "an empty collection is not checked (ignore_empty)"
                else:
                    changed = items(low - 1) if low - 1 else _empty(is_map)
            elif check.kind is CheckKind.LEN_GT:
                changed = items(high + 1)
            elif check.kind is CheckKind.NOT_UNIQUE:
                if high < 2:
                    reason = "at most one item is allowed"
                else:
                    distinct = items(max(low, 2) - 1)
                    if isinstance(distinct, ListValue):
                        changed = ListValue((distinct.items[0], *distinct.items))
            if changed is None:
                found.skipped.append(Skipped(name, check.rule_id, reason))
            else:
                found.breaks.append(_Break(name, check.rule_id, Change((), name, kind, changed)))
        if high < 1:
            found.skipped.extend(
                Skipped(f"{name}[]", rule, "no item is allowed") for rule in _item_rule_ids(plan)
            )
            return
        value_field = field.map_entry.value if field.map_entry else field
        if plan.key is not None:
            assert field.map_entry is not None
            key_field = field.map_entry.key
            keys = Values(self._domain(key_field.type, None), plan.key.checks, constants, False)
            for index, check in enumerate(plan.key.checks):
                bad_key = keys.breaking(index)
                changed = None if bad_key is None else items(valid_count, first_key=bad_key)
                if bad_key is None or changed is None:
                    found.skipped.append(
                        Skipped(f"{name}[]", check.rule_id, _why_unbreakable(keys, check))
                    )
                    continue
                path = f"{name}[{key_text(bad_key)}]"
                found.breaks.append(_Break(path, check.rule_id, Change((), name, kind, changed)))
        value_plan = plan.value
        if value_plan is None:
            return
        first_key = _first_key(current)
        if value_plan.embedded is not None:
            assert value_field.type_ref is not None
            item = _first_item(current)
            selector = Scalar(0) if not is_map else first_key
            if item is not None and selector is not None:
                self._nested_breaks(
                    name,
                    selector,
                    value_field.type_ref,
                    item,
                    ancestors,
                    found,
                    _item_path(name, selector),
                    skip_empty=value_plan.ignore_empty,
                )
                return
            template = items(valid_count)
            if template is None:
                return
            selector = Scalar(0) if not is_map else _first_key(template)
            self._nested_breaks(
                name,
                selector,
                value_field.type_ref,
                None,
                ancestors,
                found,
                _item_path(name, selector),
                wrap=kind,
                rebuild=lambda broken: _with_first(template, broken),
                skip_empty=value_plan.ignore_empty,
            )
            return
        values = self._values(value_field.type, value_field.type_ref, value_plan, constants)
        assert values is not None
        for index, check in enumerate(value_plan.checks):
            bad = values.breaking(index)
            node = None if bad is None else self._node(value_field.type, value_field.type_ref, bad)
            changed = None if node is None else items(valid_count, first=node)
            if changed is None:
                found.skipped.append(
                    Skipped(f"{name}[]", check.rule_id, _why_unbreakable(values, check))
                )
                continue
            selector = Scalar(0) if not is_map else _first_key(changed)
            found.breaks.append(
                _Break(_item_path(name, selector), check.rule_id, Change((), name, kind, changed))
            )

    # Applying a change to a value

    def _apply(self, value: MessageValue, change: Change) -> MessageValue:
        if change.container:
            step, *rest = change.container
            inner_change = change._replace(container=tuple(rest))
            return self._with_field(
                value,
                step.field,
                self._apply_inside(_get(value, step.field), step.item, inner_change),
            )
        message = self._planner.message(value.ref)
        if change.kind is ChangeKind.CLEAR:
            members = next((o.field_names for o in message.oneofs if o.name == change.field), ())
            cleared = {change.field, *members}
            return value._replace(fields=tuple(f for f in value.fields if f.name not in cleared))
        assert change.value is not None
        return self._with_field(value, change.field, change.value)

    def _apply_inside(self, current: Value | None, item: Scalar | None, change: Change) -> Value:
        """`change` applied inside the field value `current`, or inside its item `item`."""
        if item is None:
            assert isinstance(current, MessageValue)
            return self._apply(current, change)
        if isinstance(current, ListValue):
            assert isinstance(item.value, int)
            items = list(current.items)
            inner = items[item.value]
            assert isinstance(inner, MessageValue)
            items[item.value] = self._apply(inner, change)
            return ListValue(tuple(items))
        assert isinstance(current, MapValue)
        entries = []
        for key, entry in current.entries:
            if key == item:
                assert isinstance(entry, MessageValue)
                entry = self._apply(entry, change)
            entries.append((key, entry))
        return MapValue(tuple(entries))

    def _with_field(self, value: MessageValue, name: str, new: Value) -> MessageValue:
        message = self._planner.message(value.ref)
        oneof = _field(message, name).oneof
        siblings = set()
        if oneof is not None:
            siblings = set(next(o.field_names for o in message.oneofs if o.name == oneof))
        values = {f.name: f.value for f in value.fields if f.name == name or f.name not in siblings}
        values[name] = new
        return value._replace(
            fields=tuple(
                FieldValue(f.name, values[f.name]) for f in message.fields if f.name in values
            )
        )

    # One value

    def _domain(self, kind: FieldType, ref: TypeRef | None) -> Domain:
        if kind is FieldType.ENUM:
            assert ref is not None
            declared = self._planner.enum(ref)
            return Domain(
                "enum",
                enum_numbers=tuple(value.number for value in declared.values),
                closed_enum=declared.closed,
            )
        if kind in (FieldType.MESSAGE, FieldType.GROUP):
            assert ref is not None
            name = ref.proto_name
            family = WRAPPERS.get(name) or WELL_KNOWN[name]
            return Domain(family, float32=name == "google.protobuf.FloatValue")
        return Domain(_SCALAR_FAMILY[kind], float32=kind is FieldType.FLOAT)

    def _values(
        self,
        kind: FieldType,
        ref: TypeRef | None,
        plan: ValuePlan | None,
        constants: dict[str, Constant],
    ) -> Values | None:
        if plan is None or plan.embedded is not None:
            return None
        return Values(self._domain(kind, ref), plan.checks, constants, plan.ignore_empty)

    def _node(self, kind: FieldType, ref: TypeRef | None, value: object) -> Value:
        """A solved value as a value tree node of the field's type."""
        if kind is FieldType.ENUM:
            assert ref is not None and isinstance(value, int)
            names = [v.name for v in self._planner.enum(ref).values if v.number == value]
            return EnumConstant(ref, names[0] if names else None, value)
        if kind not in (FieldType.MESSAGE, FieldType.GROUP):
            assert isinstance(value, bool | int | float | str | bytes)
            return Scalar(value)
        assert ref is not None
        name = ref.proto_name
        if isinstance(value, FromNow):
            return TimestampFromNow(value.seconds)
        if name in WRAPPERS:
            assert isinstance(value, bool | int | float | str | bytes)
            return MessageValue(ref, (FieldValue("value", Scalar(value)),) if value else ())
        if name == "google.protobuf.Any":
            assert isinstance(value, str)
            return MessageValue(ref, (FieldValue("type_url", Scalar(value)),) if value else ())
        assert isinstance(value, int)
        seconds, nanos = divmod(value, _NANOS)
        if name == "google.protobuf.Duration" and seconds < 0 and nanos:
            seconds, nanos = seconds + 1, nanos - _NANOS  # a Duration's parts share its sign
        parts = (("seconds", seconds), ("nanos", nanos))
        return MessageValue(ref, tuple(FieldValue(n, Scalar(v)) for n, v in parts if v))


def _stem(ref: TypeRef, taken: set[str]) -> str:
    """The name stem of a request type's builders: its qualname in snake case
    (`Outer.Inner` -> `outer_inner`); a type whose stem another request type of the file
    already has gets its full proto name instead (`beta.v1.Common` -> `beta_v1_common`), and
    underscores appended while that is taken too."""
    stem = "_".join(naming.snake_case(part) for part in ref.qualname.split("."))
    if stem in taken:
        stem = "_".join(naming.snake_case(part) for part in ref.proto_name.split("."))
    return naming.unique(stem, taken)


def _field(message: Message, name: str) -> Field:
    return next(field for field in message.fields if field.name == name)


def _full_name(message: Message, field: Field) -> str:
    return f"{message.ref.proto_name}.{field.name}"


def _is_plain_message(field: Field) -> bool:
    """A message-typed field that is neither a wrapper nor Duration, Timestamp or Any."""
    return (
        field.type in (FieldType.MESSAGE, FieldType.GROUP)
        and field.type_ref is not None
        and field.type_ref.proto_name not in WRAPPERS
        and field.type_ref.proto_name not in WELL_KNOWN
    )


def _count_bounds(plan: FieldPlan | None) -> tuple[int, int]:
    """The fewest and most items (or pairs) the collection rules allow."""
    low, high = 0, 2**31
    for check in plan.collection_checks if plan is not None else ():
        if check.kind is CheckKind.EMPTY:
            low = 1
        elif check.kind is CheckKind.LEN_LT and isinstance(check.arg, int):
            low = check.arg
        elif check.kind is CheckKind.LEN_GT and isinstance(check.arg, int):
            high = check.arg
    return low, high


def _unique_items(plan: FieldPlan | None) -> bool:
    return plan is not None and any(c.kind is CheckKind.NOT_UNIQUE for c in plan.collection_checks)


def _minimum_count(plan: FieldPlan | None) -> int:
    if plan is not None and plan.required is not None:  # protovalidate's `required`
        return max(1, _count_bounds(plan)[0])
    if plan is None or plan.collection_ignore_empty:
        return 0
    return _count_bounds(plan)[0]


def _case_name(path: str, rule_id: str) -> str:
    """A pytest id: the field path (`message` for a message's own rules) and the rule id,
    which protovalidate's custom rules may spell with spaces."""
    return f"{path or 'message'}-{'_'.join(rule_id.split())}"


def _cel_value(value: Value) -> object:
    """A value tree node as CEL sees it, for the message's own rules."""
    if isinstance(value, Scalar):
        return value.value
    if isinstance(value, EnumConstant):
        return value.number
    if isinstance(value, ListValue):
        return [_cel_value(item) for item in value.items]
    if isinstance(value, MapValue):
        return {_cel_value(key): _cel_value(item) for key, item in value.entries}
    raise cel_eval.Unsupported(type(value).__name__)


_DEFAULTS = {
    FieldType.STRING: "",
    FieldType.BYTES: b"",
    FieldType.BOOL: False,
    FieldType.DOUBLE: 0.0,
    FieldType.FLOAT: 0.0,
}


def _message_rule_outcomes(message: Message, values: dict[str, Value]) -> list[bool] | None:
    """Whether each of the message's own CEL rules holds on `values`; None when that cannot
    be told (a rule reads what examples do not model)."""
    from protoc_gen_pyservice.runtime import cel

    assert message.protovalidate is not None
    defaults: dict[str, object] = {}
    for field in message.fields:
        if field.map_entry is not None:
            defaults[field.name] = {}
        elif field.repeated:
            defaults[field.name] = []
        elif field.type not in (FieldType.MESSAGE, FieldType.GROUP):
            defaults[field.name] = _DEFAULTS.get(field.type, 0)
    try:
        view = cel_eval.MessageView(
            {name: _cel_value(value) for name, value in values.items()}, defaults
        )
        outcomes = []
        for check in message.protovalidate.checks:
            if check.failure is not None:
                outcomes.append(not cel_eval.evaluate(check.failure, {"this": view}))
            else:
                assert check.message_expression is not None
                outcomes.append(not cel_eval.evaluate(check.message_expression, {"this": view}))
    except (cel_eval.Unsupported, cel.EvaluationError, TypeError):
        return None
    return outcomes


def _message_rules_hold(message: Message, values: dict[str, Value]) -> bool:
    if message.protovalidate is None or not message.protovalidate.checks:
        return True
    outcomes = _message_rule_outcomes(message, values)
    return outcomes is not None and all(outcomes)


def _members(message: Message, oneof: OneofPlan) -> tuple[str, ...]:
    if oneof.members:
        return oneof.members
    return next(o.field_names for o in message.oneofs if o.name == oneof.name)


def _rule_ids(plan: FieldPlan) -> list[str]:
    checks: list[Check] = [*plan.collection_checks]
    if plan.required is not None:
        checks.append(plan.required)
    for value in (plan.key, plan.value):
        if value is not None:
            checks += value.checks
    return [check.rule_id for check in checks]


def _item_rule_ids(plan: FieldPlan) -> list[str]:
    return [
        c.rule_id for value in (plan.key, plan.value) if value is not None for c in value.checks
    ]


def _why_unbreakable(values: Values, check: Check) -> str:
    if values.ignore_empty and check.kind is CheckKind.EMPTY:
        return "an empty value is not checked (ignore_empty)"
    if values.ignore_empty and check.kind is CheckKind.CEL and check.rule_id.endswith("_empty"):
        return "an empty value is not checked (IGNORE_IF_ZERO_VALUE)"
    return "no value breaks this rule while passing the others"


def _provided(message: Message, field: Field, values: Values) -> Provided:
    pattern = next((c for c in values.checks if c.kind is CheckKind.NO_MATCH), None)
    if pattern is not None:
        return Provided(
            _full_name(message, field),
            pattern.rule_id,
            "the pattern is not one of the simple shapes examples are derived from",
        )
    return Provided(_full_name(message, field), values.checks[0].rule_id, _ALL_PASS)


def _is_zero(value: Value) -> bool:
    """Whether a value reads as its type's zero value (a message: every field zero), as
    IGNORE_IF_ZERO_VALUE tests it."""
    if isinstance(value, Scalar):
        return not value.value
    if isinstance(value, EnumConstant):
        return value.number == 0
    if isinstance(value, ListValue):
        return not value.items
    if isinstance(value, MapValue):
        return not value.entries
    if isinstance(value, MessageValue):
        return all(_is_zero(field.value) for field in value.fields)
    return False


def _collection_passes(checks: list[Check], value: ListValue | MapValue) -> bool:
    """Whether compiled CEL rules on a whole collection all hold for `value` (False when
    that cannot be told)."""
    if not checks:
        return True
    from protoc_gen_pyservice.runtime import cel

    try:
        this = _cel_value(value)
        return not any(
            check.expression is None or cel_eval.evaluate(check.expression, {"this": this})
            for check in checks
        )
    except (cel_eval.Unsupported, cel.EvaluationError, TypeError):
        return False


def _provided_collection(message: Message, field: Field, plan: FieldPlan | None) -> Provided:
    assert plan is not None  # a collection without rules is left empty
    kind = "entries" if field.map_entry is not None else "items"
    distinct = ", all distinct" if _unique_items(plan) else ""
    need = f"it needs {_minimum_count(plan)}{distinct}"
    return Provided(
        _full_name(message, field),
        _rule_ids(plan)[0],
        f"not enough valid {kind} could be derived: {need}",
    )


def _empty(is_map: bool) -> ListValue | MapValue:
    return MapValue(()) if is_map else ListValue(())


def _first_item(current: Value | None) -> Value | None:
    if isinstance(current, ListValue):
        return current.items[0] if current.items else None
    if isinstance(current, MapValue):
        return current.entries[0][1] if current.entries else None
    return None


def _first_key(value: Value | None) -> Scalar | None:
    if isinstance(value, MapValue) and value.entries:
        key = value.entries[0][0]
        return key if isinstance(key, Scalar) else None
    return None


def _item_path(name: str, selector: Scalar | None) -> str:
    if selector is None:
        return f"{name}[]"
    return f"{name}[{key_text(selector.value)}]"


def _with_first(template: ListValue | MapValue, first: Value) -> Value:
    if isinstance(template, ListValue):
        return ListValue((first, *template.items[1:]))
    key = template.entries[0][0]
    return MapValue(((key, first), *template.entries[1:]))


def _get(value: MessageValue, name: str) -> Value | None:
    return next((f.value for f in value.fields if f.name == name), None)
