"""protoc-gen-validate's rule messages -> the plain RuleSet model."""

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.model.nodes import FieldRules, RuleSet, RuleValue

_FIELD_RULES = "validate.FieldRules"


def field_rules(rules: Message, element: str) -> FieldRules:
    """A `validate.FieldRules` message as plain data; `element` names the field it annotates."""
    family = rules.WhichOneof("type")
    message_rules: Any = getattr(rules, "message")  # noqa: B009 - a dynamic message
    return FieldRules(
        type_rules=_rule_set(family, getattr(rules, family), element) if family else None,
        message_rules=(
            _rule_set("message", message_rules, element) if rules.HasField("message") else None
        ),
    )


def _rule_set(family: str, message: Message, element: str) -> RuleSet:
    return RuleSet(
        family=family,
        values=tuple(
            (field.name, _value(field, value, element)) for field, value in message.ListFields()
        ),
    )


def _value(field: FieldDescriptor, value: Any, element: str) -> RuleValue:
    if field.is_repeated:
        return tuple(_single(field, item, element) for item in value)
    return _single(field, value, element)


def _single(field: FieldDescriptor, value: Any, element: str) -> RuleValue:
    if field.message_type is None:
        # validate.proto is proto2: protobuf hands out a string that is not UTF-8 as bytes.
        if field.type == FieldDescriptor.TYPE_STRING and not isinstance(value, str):
            raise GenerationError(element, f"rule {field.name} is not valid UTF-8")
        return value  # type: ignore[no-any-return]
    if field.message_type.full_name == _FIELD_RULES:
        nested = field_rules(value, element)
        return RuleSet(
            family=field.name,
            values=tuple(
                (rule_set.family, rule_set)
                for rule_set in (nested.type_rules, nested.message_rules)
                if rule_set is not None
            ),
        )
    # Duration and Timestamp bounds: keep seconds and nanos.
    return _rule_set(field.message_type.name.lower(), value, element)
