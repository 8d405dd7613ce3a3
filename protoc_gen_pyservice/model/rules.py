"""protoc-gen-validate's rule messages -> the plain RuleSet model."""

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from protoc_gen_pyservice.model.nodes import FieldRules, RuleSet, RuleValue

_FIELD_RULES = "validate.FieldRules"


def field_rules(rules: Message) -> FieldRules:
    """A `validate.FieldRules` message as plain data."""
    family = rules.WhichOneof("type")
    return FieldRules(
        type_rules=_rule_set(family, getattr(rules, family)) if family else None,
        message_rules=(
            _rule_set("message", rules.message) if rules.HasField("message") else None  # type: ignore[attr-defined]
        ),
    )


def _rule_set(family: str, message: Message) -> RuleSet:
    return RuleSet(
        family=family,
        values=tuple((field.name, _value(field, value)) for field, value in message.ListFields()),
    )


def _value(field: FieldDescriptor, value: Any) -> RuleValue:
    if field.is_repeated:
        return tuple(_single(field, item) for item in value)
    return _single(field, value)


def _single(field: FieldDescriptor, value: Any) -> RuleValue:
    if field.message_type is None:
        return value  # type: ignore[no-any-return]
    if field.message_type.full_name == _FIELD_RULES:
        nested = field_rules(value)
        return RuleSet(
            family=field.name,
            values=tuple(
                (rule_set.family, rule_set)
                for rule_set in (nested.type_rules, nested.message_rules)
                if rule_set is not None
            ),
        )
    # Duration and Timestamp bounds: keep seconds and nanos.
    return _rule_set(field.message_type.name.lower(), value)
