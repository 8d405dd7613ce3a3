"""protoc-gen-validate's rule messages (`validate.FieldRules`) -> the typed rule model."""

from google.protobuf.message import Message
from protoc_gen_pyservice.model.families import FieldRules, MessageFieldRules, read_family


def field_rules(rules: Message, element: str) -> FieldRules:
    """A `validate.FieldRules` message as typed rules; `element` names the field it annotates."""
    family = rules.WhichOneof("type")
    message_rules = None
    if rules.HasField("message"):
        read = read_family("message", getattr(rules, "message"), element, field_rules)  # noqa: B009
        assert isinstance(read, MessageFieldRules)
        message_rules = read
    type_rules = None
    if family:
        read_type = read_family(family, getattr(rules, family), element, field_rules)
        assert not isinstance(read_type, MessageFieldRules)
        type_rules = read_type
    return FieldRules(type_rules=type_rules, message_rules=message_rules)
