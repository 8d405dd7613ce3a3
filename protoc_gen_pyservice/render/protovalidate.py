"""protovalidate's compiled rules (model/protovalidate.py) -> the statements of a validator.

Each field becomes straight-line code: read the value once, skip it as its presence and
`ignore` mode say, test each rule's compiled condition, recurse into messages. Statements are
laid out one per line (long conditions through filters.fit), as ruff-format keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from protoc_gen_pyservice.model import cel_ir as ir
from protoc_gen_pyservice.model.cel_ir import Node
from protoc_gen_pyservice.model.nodes import Field, FieldType, Message
from protoc_gen_pyservice.model.plan import Embedded
from protoc_gen_pyservice.model.protovalidate import Ignore, RuleCheck, ValueRules, value_read
from protoc_gen_pyservice.render import cel
from protoc_gen_pyservice.render.filters import field_access, fit, pyrepr

_PAD = "    "
_LINE_LENGTH = 100


class BlockWriter:
    """Writes the protovalidate statements of the messages of one validate module."""

    def __init__(
        self,
        constants: cel.ModuleConstants,
        embedded_call: Callable[[Embedded, str, str], str],
    ) -> None:
        self._constants = constants
        self._embedded_call = embedded_call  # (callee, source, prefix) -> call text

    def message(
        self,
        message: Message,
        embedded: Callable[[str], Embedded | None],
    ) -> list[str]:
        lines: list[str] = []
        # The fields a message `oneof` rule names are checked only when set (not zero).
        members = {
            name
            for rule in (message.protovalidate.oneofs if message.protovalidate else ())
            for name in rule.fields
        }
        for field in message.fields:
            rules = field.protovalidate
            callee = embedded(field.name)
            if rules is None and callee is None:
                continue
            if rules is not None and rules.ignore is Ignore.ALWAYS:
                continue
            rules = rules or ValueRules(Ignore.UNSPECIFIED, False, ())
            if field.name in members and rules.ignore is Ignore.UNSPECIFIED:
                rules = rules._replace(ignore=Ignore.IF_ZERO_VALUE)
            lines += self._field(field, rules, callee)
        for oneof in message.oneofs:
            if oneof.protovalidate_required:
                lines.append(f"if m.WhichOneof({pyrepr(oneof.name)}) is None:")
                lines += _indent(
                    _violation(
                        f"prefix + {pyrepr(oneof.name)}",
                        "required",
                        "exactly one field is required in oneof",
                        "",
                    )
                )
        message_rules = message.protovalidate
        if message_rules is not None:
            for oneof_rule in message_rules.oneofs:
                fields = {field.name: field for field in message.fields}
                tests = [_presence(fields[name], "m") for name in oneof_rule.fields]
                listed = ", ".join(oneof_rule.fields)
                count = " + ".join(f"({test})" for test in tests)
                lines.append(f"if {count} > 1:")
                lines += _indent(
                    _violation(
                        "prefix[:-1]", "message.oneof", f"only one of {listed} can be set", ""
                    )
                )
                if oneof_rule.required:
                    lines.append(f"if not ({' or '.join(tests)}):")
                    lines += _indent(
                        _violation(
                            "prefix[:-1]", "message.oneof", f"one of {listed} must be set", ""
                        )
                    )
            for check in message_rules.checks:
                # protovalidate reports a message's own rules without a rule path.
                lines += self._check(check._replace(rule_path=""), "m", "prefix[:-1]", False, 4)
        return lines

    def _field(self, field: Field, rules: ValueRules, callee: Embedded | None) -> list[str]:
        source = field_access("m", field.name)
        path = f"prefix + {pyrepr(field.name)}"
        collection = field.repeated or field.map_entry is not None
        value = f"{field.name}_value"
        body: list[str] = []
        read = value_read(field) if not collection else "plain"
        this = cel.read_value(source, read)
        if this != source:
            body.append(f"{value} = {this}")
            this = value
        if collection:
            body.append(f"{value} = {source}")
            this = value
            converted = _converted_collection(field, value)
            if converted != value and rules.checks:
                # CEL sees the items as durations, timestamps or the wrapped scalars.
                body.append(f"{value}_items = {converted}")
                this = f"{value}_items"
        checks = self._checks(rules.checks, this, path, False, 0)
        zero_guard = rules.ignore is Ignore.IF_ZERO_VALUE and not field.has_presence
        if this == source and _reads(checks, source) + zero_guard > 1:
            # Read once: each attribute read of a protobuf message costs more than a local.
            body.append(f"{value} = {source}")
            this = value
            checks = self._checks(rules.checks, this, path, False, 0)
        # A field with presence is zero only when unset, which the HasField guard skips:
        # protovalidate checks an `optional` field set to 0 even with IGNORE_IF_ZERO_VALUE.
        elements = self._elements(field, rules, value, callee) if collection else []
        if rules.ignore is Ignore.IF_ZERO_VALUE and (checks or elements) and not field.has_presence:
            body += _guard(value if collection else this, checks + elements)
        else:
            body += checks + elements
        if collection and not any(value in line for line in body[1:]):
            body = body[1:]  # nothing reads the collection: no local for it
        if not collection and callee is not None:
            body.append(self._embedded_call(callee, source, f"prefix + {pyrepr(field.name + '.')}"))
        required = (
            _violation(path, "required", "value is required", "required") if rules.required else []
        )
        if not body and not required:
            return []
        if field.has_presence and not collection and not body:
            return [f"if not m.HasField({pyrepr(field.name)}):", *_indent(required)]
        if field.has_presence and not collection:
            guard = f"m.HasField({pyrepr(field.name)})"
            if not required:
                return _guard(guard, body)
            lines = [f"if {guard}:", *_indent(body)]
            if required:
                lines += ["else:", *_indent(required)]
            return lines
        if required and body:
            return [f"if not {source}:", *_indent(required), "else:", *_indent(body)]
        if required:
            return [f"if not {source}:", *_indent(required)]
        return body

    def _elements(
        self, field: Field, rules: ValueRules, value: str, callee: Embedded | None
    ) -> list[str]:
        name = field.name
        if field.map_entry is not None:
            key, item = f"{name}_key", f"{name}_item"
            path = f'f"{{prefix}}{name}[{{validation.key_text({key})}}]"'
            nested = self._deferred_call(callee, item, name, key) if callee else []
            keys = self._element(rules.keys, key, path, field.map_entry.key, True, [])
            values = self._element(rules.items, item, path, field.map_entry.value, False, nested)
            if not keys and not values:
                return []
            if not values:
                return [f"for {key} in {value}:", *_indent(keys)]
            return [f"for {key}, {item} in {value}.items():", *_indent(keys + values)]
        index, item = f"{name}_index", f"{name}_item"
        path = f'f"{{prefix}}{name}[{{{index}}}]"'
        nested = self._deferred_call(callee, item, name, index) if callee else []
        inner = self._element(rules.items, item, path, field, False, nested)
        if not inner:
            return []
        return [f"for {index}, {item} in enumerate({value}):", *_indent(inner)]

    def _deferred_call(self, callee: Embedded, item: str, name: str, selector: str) -> list[str]:
        """An item's validator called with an empty prefix, its violations' paths completed
        only when it reports some: valid items never pay for formatting `name[index].`."""
        return [
            "mark = len(out)",
            self._embedded_call(callee, item, '""'),
            "if len(out) != mark:",
            f"{_PAD}validation.prefix_paths(out, mark, prefix, {pyrepr(name)}, {selector})",
        ]

    def _element(
        self,
        rules: ValueRules | None,
        source: str,
        path: str,
        field: Field,
        for_key: bool,
        nested: list[str],
    ) -> list[str]:
        """One item, map key or map value: its rules, then (`nested`) its own validator, both
        skipped by IGNORE_ALWAYS, and when it is zero by IGNORE_IF_ZERO_VALUE."""
        if rules is not None and rules.ignore is Ignore.ALWAYS:
            return []
        read = value_read(field)
        this = cel.read_value(source, read)
        lines: list[str] = []
        if this != source and rules is not None and rules.checks:
            lines.append(f"{source}_value = {this}")
            this = f"{source}_value"
        checks = self._checks(rules.checks, this, path, for_key, 0) if rules else []
        if rules is not None and rules.required:
            checks = [
                f"if not {this}:",
                *_indent(_violation(path, "required", "value is required", "required", for_key)),
                *checks,
            ]
        body = checks + nested
        if rules is not None and rules.ignore is Ignore.IF_ZERO_VALUE and body:
            plain_message = field.type in (FieldType.MESSAGE, FieldType.GROUP) and read == "plain"
            zero = f"{source}.ByteSize()" if plain_message else this
            return [*lines, *_guard(zero, body)]
        return [*lines, *body] if body else []

    def _checks(
        self, checks: tuple[RuleCheck, ...], this: str, path: str, for_key: bool, at: int
    ) -> list[str]:
        lines: list[str] = []
        pending = list(checks)
        while pending:
            check = pending.pop(0)
            empty = next((c for c in pending if _empty_twin(check, c)), None)
            if empty is not None:
                # A format and its `_empty` twin (`string.email`, `string.email_empty`) never
                # both fail: one test of emptiness serves both.
                pending.remove(empty)
                lines += self._format_pair(check, empty, this, path, for_key)
                continue
            lines += self._check(check, this, path, for_key, at)
        return lines

    def _format_pair(
        self, check: RuleCheck, empty: RuleCheck, this: str, path: str, for_key: bool
    ) -> list[str]:
        assert isinstance(check.failure, ir.Op) and empty.failure is not None
        inner = check.failure.args[0]  # `this == '' || valid`, as _empty_twin found it
        assert isinstance(inner, ir.Or)
        valid = ir.Or(inner.args[1:]) if len(inner.args) > 2 else inner.args[1]
        test = self._python(ir.Op("not", (valid,), ir.BOOL), this)
        return [
            f"if {self._python(empty.failure, this)}:",
            *_indent(_violation(path, empty.rule_id, empty.message, empty.rule_path, for_key)),
            f"elif {test}:",
            *_indent(_violation(path, check.rule_id, check.message, check.rule_path, for_key)),
        ]

    def _check(self, check: RuleCheck, this: str, path: str, for_key: bool, at: int) -> list[str]:
        if check.failure is not None:
            condition = self._python(check.failure, this)
            head = "if True:" if condition == "True" else f"if {condition}:"
            return [
                head,
                *_indent(_violation(path, check.rule_id, check.message, check.rule_path, for_key)),
            ]
        assert check.message_expression is not None
        text = self._python(check.message_expression, this)
        return [
            f"if message := {text}:",
            *_indent(_violation(path, check.rule_id, None, check.rule_path, for_key)),
        ]

    def _python(self, node: Node, this: str) -> str:
        return cel.python(node, this, self._constants)


def _empty_twin(check: RuleCheck, other: RuleCheck) -> bool:
    """Whether `other` is `check`'s `_empty` rule: check fails on `not (this == '' or ok)`,
    other on `this == ''`, with the same emptiness test."""
    if other.rule_id != check.rule_id + "_empty" or other.rule_path != check.rule_path:
        return False
    failure, empty = check.failure, other.failure
    return (
        isinstance(failure, ir.Op)
        and failure.op == "not"
        and isinstance(failure.args[0], ir.Or)
        and failure.args[0].args[0] == empty
    )


def _reads(lines: list[str], source: str) -> int:
    """How many times the statements' conditions read `source` (`m.name`, not `m.name_x`)."""
    pattern = re.compile(re.escape(source) + r"(?![A-Za-z0-9_])")
    tests = (line for line in lines if line.startswith(("if ", "elif ")))
    return sum(len(pattern.findall(line)) for line in tests)


def _lone_if(lines: list[str]) -> bool:
    """One `if cond:` (on one line) and its indented body, nothing else: ruff's SIM102 wants a
    guard around it joined into its condition."""
    return (
        bool(lines)
        and lines[0].startswith("if ")
        and lines[0].endswith(":")
        and "\n" not in lines[0]
        and " if " not in lines[0]
        and all(line.startswith(_PAD) or not line for line in lines[1:])
    )


def laid_out(lines: list[str], indent: int) -> list[str]:
    """Statements written one a line, each laid out as ruff-format would at its depth below
    `indent` (continuation lines keep the statement's own indentation)."""
    out = []
    for line in lines:
        body = line.lstrip(" ")
        depth = len(line) - len(body)
        fitted = [
            " " * depth + part if part else part for part in fit(body, indent + depth).split("\n")
        ]
        if any(indent + len(part) > _LINE_LENGTH for part in fitted):
            # A long custom CEL expression fit() cannot break as ruff-format would: kept on
            # one line, which ruff is told to leave as it is.
            fitted = [" " * depth + body + "  # noqa: E501  # fmt: skip"]
        out += fitted
    return out


def _converted_collection(field: Field, value: str) -> str:
    """A repeated or map field's items as CEL values (Durations as durations, wrappers as
    their values), or `value` itself when they need no conversion."""
    item = field.map_entry.value if field.map_entry is not None else field
    return cel.read_items(value, value_read(item), is_map=field.map_entry is not None)


def _guard(condition: str, body: list[str]) -> list[str]:
    """`body` only when `condition` holds; a lone `if` in it takes the condition into its own
    (`if A and B:`), as ruff's SIM102 wants."""
    if _lone_if(body):
        return [f"if {condition} and {body[0][3:-1]}:", *body[1:]]
    return [f"if {condition}:", *_indent(body)]


def _presence(field: Field, owner: str) -> str:
    if field.repeated or field.map_entry is not None:
        return f"len({field_access(owner, field.name)}) > 0"
    if field.has_presence:
        return f"{owner}.HasField({pyrepr(field.name)})"
    return f"bool({field_access(owner, field.name)})"


def _violation(
    path: str, rule_id: str, message: str | None, rule_path: str, for_key: bool = False
) -> list[str]:
    shown = "message" if message is None else pyrepr(message)
    return [
        "out.append(",
        f"{_PAD}validation.Violation(",
        f"{_PAD * 2}{path},",
        f"{_PAD * 2}{pyrepr(rule_id)},",
        f"{_PAD * 2}{shown},",
        f"{_PAD * 2}{for_key!r},",
        f"{_PAD * 2}{pyrepr(rule_path)},",
        f"{_PAD}),",
        ")",
    ]


def _indent(lines: list[str]) -> Iterator[str] | list[str]:
    return [_PAD + line if line else line for line in "\n".join(lines).split("\n")]
