"""The typed rule model: one frozen type per rule family, with its conflict checks and its plan.

Both rule languages read into these types: protoc-gen-validate's `validate.StringRules` and
protovalidate's `buf.validate.StringRules` become one `StringRules`, and so on for every
family (`read_family`). An unset rule is None (a rule set to 0 or false is present, as in the
proto2 rule messages); Duration and Timestamp values are nanoseconds. Each family knows the
contradictions protoc-gen-validate's checker rejects (`conflicts`) and the checks its rules
plan into (`checks`, for protoc-gen-validate's rules; protovalidate's compile from their CEL
definitions, see protovalidate.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeAlias

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.model.plan import Check, CheckKind, ConstantKind, Literal, Range

NUMERIC_FAMILIES = frozenset(
    {
        "float",
        "double",
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
    }
)
WELL_KNOWN_FAMILIES = frozenset({"duration", "timestamp", "any", "field_mask"})
_NANOS = 1_000_000_000
# Formats whose usual spellings a precompiled pattern accepts outright: (that pattern, the
# check for everything else), so only unusual values pay for the full check.
_FAST_FORMATS = {"is_email": ("plain_email", "is_unusual_email")}
_STRING_FORMATS = {
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


class PlanContext(Protocol):
    """What a family's plan needs from the file being planned."""

    def constant(self, rule: str, kind: ConstantKind, values: tuple[Literal, ...]) -> str:
        """The name of a module-level constant (a frozenset or a pattern) for `rule`."""


Number: TypeAlias = int | float


class NumberRules(NamedTuple):
    """float, double and the ten integer families."""

    family: str
    const: Number | None = None
    lt: Number | None = None
    lte: Number | None = None
    gt: Number | None = None
    gte: Number | None = None
    in_: tuple[Number, ...] = ()
    not_in: tuple[Number, ...] = ()
    ignore_empty: bool | None = None
    finite: bool | None = None  # protovalidate's float and double

    def conflicts(self, element: str) -> None:
        _const_alone(self, element)
        _bounds_conflicts(self, element)

    def checks(self, context: PlanContext) -> list[Check]:
        return [
            *_const_check(self.family, self.const),
            *_range_checks(self, self.family, _show),
            *_set_checks(context, self.family, self.in_, self.not_in, "value"),
        ]


class BoolRules(NamedTuple):
    family: str = "bool"
    const: bool | None = None

    def conflicts(self, element: str) -> None:
        return None

    def checks(self, context: PlanContext) -> list[Check]:
        return _const_check(self.family, self.const)


class EnumRules(NamedTuple):
    family: str = "enum"
    const: int | None = None
    defined_only: bool | None = None
    in_: tuple[int, ...] = ()
    not_in: tuple[int, ...] = ()

    def conflicts(self, element: str, defined: frozenset[int]) -> None:
        _const_alone(self, element)
        _bounds_conflicts(self, element)
        if self.defined_only:
            for value in self.in_:
                if value not in defined:
                    _fail(
                        element,
                        self.family,
                        f"in value {value!r} is not a defined enum number, but defined_only is set",
                    )

    def checks(self, context: PlanContext, defined: frozenset[int]) -> list[Check]:
        checks = _const_check(self.family, self.const)
        if self.defined_only:
            name = context.constant("defined", ConstantKind.FROZENSET, tuple(sorted(defined)))
            checks.append(
                Check(
                    CheckKind.NOT_IN,
                    "enum.defined_only",
                    "value must be one of the defined enum values",
                    constant=name,
                )
            )
        return checks + _set_checks(context, self.family, self.in_, self.not_in, "value")


class StringRules(NamedTuple):
    family: str = "string"
    const: str | None = None
    len: int | None = None
    min_len: int | None = None
    max_len: int | None = None
    len_bytes: int | None = None
    min_bytes: int | None = None
    max_bytes: int | None = None
    pattern: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    contains: str | None = None
    not_contains: str | None = None
    in_: tuple[str, ...] = ()
    not_in: tuple[str, ...] = ()
    # The `well_known` oneof: a format set to true (`email`, ...), or the header regex.
    well_known: str | None = None
    well_known_regex: int | None = None
    strict: bool | None = None
    ignore_empty: bool | None = None

    def conflicts(self, element: str) -> None:
        _const_alone(self, element, also=("strict",))
        _bounds_conflicts(self, element)
        _length_conflicts(self, element)
        _pattern_conflicts(self, element)

    def checks(self, context: PlanContext) -> list[Check]:
        checks = _const_check(self.family, self.const)
        checks += _length_checks(self, "characters")
        checks += _text_checks(self, context)
        if self.well_known in _STRING_FORMATS:
            function, description = _STRING_FORMATS[self.well_known]
            fast_function = None
            if function in _FAST_FORMATS:
                fast_function, function = _FAST_FORMATS[function]
            checks.append(
                Check(
                    CheckKind.FORMAT,
                    f"string.{self.well_known}",
                    f"value must be {description}",
                    function=function,
                    fast_function=fast_function,
                )
            )
        if self.well_known_regex in _HEADER_REGEXES:
            function, description = _HEADER_REGEXES[self.well_known_regex]
            checks.append(
                Check(
                    CheckKind.FORMAT,
                    "string.well_known_regex",
                    f"value must be a valid {description}",
                    arg=self.strict is not False,
                    function=function,
                )
            )
        return checks + _set_checks(context, self.family, self.in_, self.not_in, "value")


class BytesRules(NamedTuple):
    family: str = "bytes"
    const: bytes | None = None
    len: int | None = None
    min_len: int | None = None
    max_len: int | None = None
    pattern: str | None = None
    prefix: bytes | None = None
    suffix: bytes | None = None
    contains: bytes | None = None
    in_: tuple[bytes, ...] = ()
    not_in: tuple[bytes, ...] = ()
    well_known: str | None = None  # ip, ipv4 or ipv6
    ignore_empty: bool | None = None

    def conflicts(self, element: str) -> None:
        _const_alone(self, element)
        _bounds_conflicts(self, element)
        _length_conflicts(self, element)
        _pattern_conflicts(self, element)

    def checks(self, context: PlanContext) -> list[Check]:
        checks = _const_check(self.family, self.const)
        checks += _length_checks(self, "bytes")
        checks += _text_checks(self, context)
        if self.well_known == "ip":
            checks.append(
                Check(
                    CheckKind.FORMAT,
                    "bytes.ip",
                    "value must be a valid IP address (4 or 16 bytes)",
                    function="is_ip_bytes",
                )
            )
        elif self.well_known in ("ipv4", "ipv6"):
            size, label = (4, "IPv4") if self.well_known == "ipv4" else (16, "IPv6")
            checks.append(
                Check(
                    CheckKind.LEN_NE,
                    f"bytes.{self.well_known}",
                    f"value must be a valid {label} address ({size} bytes)",
                    arg=size,
                )
            )
        return checks + _set_checks(context, self.family, self.in_, self.not_in, "value")


class MessageFieldRules(NamedTuple):
    """protoc-gen-validate's `message` rules of a message-typed field."""

    family: str = "message"
    required: bool | None = None
    skip: bool | None = None


class RepeatedRules(NamedTuple):
    family: str = "repeated"
    min_items: int | None = None
    max_items: int | None = None
    unique: bool | None = None
    items: FieldRules | None = None
    ignore_empty: bool | None = None

    def conflicts(self, element: str) -> None:
        _length_conflicts(self, element)

    def checks(self, item_is_message: bool, element: str) -> list[Check]:
        checks = _count_checks(self, "min_items", "max_items", "item")
        if self.unique:
            if item_is_message:
                raise GenerationError(element, "repeated.unique does not apply to message items")
            checks.append(
                Check(
                    CheckKind.NOT_UNIQUE,
                    "repeated.unique",
                    "repeated value must contain unique items",
                )
            )
        return checks


class MapRules(NamedTuple):
    family: str = "map"
    min_pairs: int | None = None
    max_pairs: int | None = None
    no_sparse: bool | None = None
    keys: FieldRules | None = None
    values: FieldRules | None = None
    ignore_empty: bool | None = None

    def conflicts(self, element: str) -> None:
        _length_conflicts(self, element)

    def checks(self) -> list[Check]:
        return _count_checks(self, "min_pairs", "max_pairs", "pair")


class AnyRules(NamedTuple):
    family: str = "any"
    required: bool | None = None
    in_: tuple[str, ...] = ()
    not_in: tuple[str, ...] = ()

    def conflicts(self, element: str) -> None:
        return None

    def checks(self, context: PlanContext) -> list[Check]:
        return _set_checks(context, self.family, self.in_, self.not_in, "type URL")


class DurationRules(NamedTuple):
    """Duration bounds, in nanoseconds."""

    family: str = "duration"
    required: bool | None = None
    const: int | None = None
    lt: int | None = None
    lte: int | None = None
    gt: int | None = None
    gte: int | None = None
    in_: tuple[int, ...] = ()
    not_in: tuple[int, ...] = ()

    def conflicts(self, element: str) -> None:
        _const_alone(self, element)
        _bounds_conflicts(self, element)

    def checks(self, context: PlanContext) -> list[Check]:
        return _time_checks(self, context)


class TimestampRules(NamedTuple):
    """Timestamp bounds, in nanoseconds since the epoch; `within` is a Duration's."""

    family: str = "timestamp"
    required: bool | None = None
    const: int | None = None
    lt: int | None = None
    lte: int | None = None
    gt: int | None = None
    gte: int | None = None
    lt_now: bool | None = None
    gt_now: bool | None = None
    within: int | None = None
    in_: tuple[int, ...] = ()
    not_in: tuple[int, ...] = ()

    def conflicts(self, element: str) -> None:
        _const_alone(self, element)
        _bounds_conflicts(self, element)
        relative = _present(self, "lt_now", "gt_now", "within")
        absolute = _present(self, "lt", "lte", "gt", "gte", "const")
        if relative and absolute:
            _fail(
                element,
                self.family,
                f"{', '.join(relative)} cannot be combined with {', '.join(absolute)}",
            )
        if self.lt_now and self.gt_now:
            _fail(element, self.family, "lt_now and gt_now cannot both be set")
        if self.within is not None and self.within <= 0:
            _fail(element, self.family, "within must be a positive duration")

    def checks(self, context: PlanContext) -> list[Check]:
        checks = _time_checks(self, context)
        if self.lt_now:
            checks.append(
                Check(CheckKind.NOT_BEFORE_NOW, "timestamp.lt_now", "value must be less than now")
            )
        if self.gt_now:
            checks.append(
                Check(CheckKind.NOT_AFTER_NOW, "timestamp.gt_now", "value must be greater than now")
            )
        if self.within is not None:
            checks.append(
                Check(
                    CheckKind.NOT_WITHIN,
                    "timestamp.within",
                    f"value must be within {_show_nanos(self.within)} of now",
                    arg=self.within,
                )
            )
        return checks


class FieldMaskRules(NamedTuple):
    """protovalidate's FieldMask rules (protoc-gen-validate has none)."""

    family: str = "field_mask"
    const: tuple[str, ...] | None = None
    in_: tuple[str, ...] = ()
    not_in: tuple[str, ...] = ()


FamilyRules: TypeAlias = (
    NumberRules
    | BoolRules
    | EnumRules
    | StringRules
    | BytesRules
    | RepeatedRules
    | MapRules
    | AnyRules
    | DurationRules
    | TimestampRules
    | FieldMaskRules
)


class FieldRules(NamedTuple):
    """Everything `(validate.rules)` says about one field: the `type` oneof's family, and
    protoc-gen-validate's `message` rules."""

    type_rules: FamilyRules | None = None
    message_rules: MessageFieldRules | None = None


# Reading either language's rule messages.

_FAMILY_TYPES: dict[str, type[Any]] = {
    **dict.fromkeys(NUMERIC_FAMILIES, NumberRules),
    "bool": BoolRules,
    "enum": EnumRules,
    "string": StringRules,
    "bytes": BytesRules,
    "message": MessageFieldRules,
    "repeated": RepeatedRules,
    "map": MapRules,
    "any": AnyRules,
    "duration": DurationRules,
    "timestamp": TimestampRules,
    "field_mask": FieldMaskRules,
}
_STRING_WELL_KNOWN = frozenset(
    {"email", "hostname", "ip", "ipv4", "ipv6", "uri", "uri_ref", "address", "uuid"}
)
NestedReader = Callable[[Message, str], FieldRules]


def read_family(
    family: str, rules: Message, element: str, nested: NestedReader
) -> FamilyRules | MessageFieldRules:
    """One rule family's message (`validate.StringRules`, `buf.validate.StringRules`, ...) as
    its typed rules; `nested` reads the FieldRules inside (`repeated.items`, `map.keys`)."""
    family_type = _FAMILY_TYPES[family]
    known = set(family_type._fields)
    values: dict[str, Any] = {"family": family}
    for field, value in rules.ListFields():
        if field.is_extension:
            continue  # protovalidate's predefined rules: compiled from their CEL
        name = field.name + "_" if field.name in ("in",) else field.name
        if family == "string" and name in _STRING_WELL_KNOWN and "well_known" in known:
            if value:
                values["well_known"] = name
            continue
        if family == "bytes" and name in ("ip", "ipv4", "ipv6"):
            if value:
                values["well_known"] = name
            continue
        if name not in known:
            continue  # a rule only the other language has: its own compiler reads it
        values[name] = _value(field, value, element, family, nested)
    return family_type(**values)  # type: ignore[no-any-return]


def _value(
    field: FieldDescriptor, value: Any, element: str, family: str, nested: NestedReader
) -> Any:
    if field.is_repeated:
        return tuple(_single(field, item, element, family, nested) for item in value)
    return _single(field, value, element, family, nested)


def _single(
    field: FieldDescriptor, value: Any, element: str, family: str, nested: NestedReader
) -> Any:
    if field.message_type is None:
        # The rule messages are proto2: protobuf hands out a string that is not UTF-8 as bytes.
        if field.type == FieldDescriptor.TYPE_STRING and not isinstance(value, str):
            raise GenerationError(element, f"rule {field.name} is not valid UTF-8")
        return value
    name = field.message_type.full_name
    if name.endswith(".FieldRules"):
        return nested(value, element)
    if name in ("google.protobuf.Duration", "google.protobuf.Timestamp"):
        kind = "duration" if name.endswith("Duration") else "timestamp"
        # `within` is a Duration, and named as one.
        label = f"{kind if field.name == 'within' else family}.{field.name}"
        return _nanos(int(value.seconds), int(value.nanos), element, label, kind)
    if name == "google.protobuf.FieldMask":
        return tuple(value.paths)
    raise GenerationError(element, f"rule {field.name} has an unknown type {name}")


def _nanos(seconds: int, fraction: int, element: str, rule: str, kind: str) -> int:
    """A Duration or Timestamp rule value in nanoseconds; it must be normalised."""
    if not -_NANOS < fraction < _NANOS or (
        seconds and fraction and (seconds > 0) != (fraction > 0)
    ):
        raise GenerationError(element, f"{rule} is not a normalised {kind}")
    if kind == "timestamp" and not 0 <= fraction < _NANOS:
        raise GenerationError(element, f"{rule} is not a normalised {kind}")
    return seconds * _NANOS + fraction


# Conflict checks, shared by the families that have each rule.


def _fail(element: str, family: str, message: str) -> None:
    raise GenerationError(element, f"{family} rules: {message}")


def _present(rules: NamedTuple, *names: str) -> list[str]:
    """Which of `names` are set (an empty `in` list is unset, as protobuf lists it)."""
    fields = rules._asdict()
    return [name for name in names if fields.get(_attribute(name)) not in (None, ())]


def _attribute(rule: str) -> str:
    return "in_" if rule == "in" else rule


def _rule_name(attribute: str) -> str:
    return "in" if attribute == "in_" else attribute


def _set_rules(rules: NamedTuple) -> list[str]:
    """The rules set, by their names in the rule message (a format by its own: `email`)."""
    fields = rules._asdict()
    return [
        str(value) if name == "well_known" else _rule_name(name)
        for name, value in fields.items()
        if name != "family" and value not in (None, ())
    ]


def _const_alone(rules: NamedTuple, element: str, also: tuple[str, ...] = ()) -> None:
    if getattr(rules, "const", None) is None:
        return
    others = sorted(set(_set_rules(rules)) - {"const", "ignore_empty", *also})
    if others:
        _fail(element, rules.family, f"const cannot be combined with {', '.join(others)}")  # type: ignore[attr-defined]


def _bounds_conflicts(rules: Any, element: str) -> None:
    family = rules.family
    for low, high in (("lt", "lte"), ("gt", "gte")):
        if len(_present(rules, low, high)) == 2:
            _fail(element, family, f"{low} and {high} cannot both be set")
    bounds = _present(rules, "lt", "lte", "gt", "gte")
    if _present(rules, "in") and (bounds or _present(rules, "not_in")):
        _fail(element, family, f"in cannot be combined with {', '.join(bounds or ['not_in'])}")
    lower = _present(rules, "gt", "gte")
    upper = _present(rules, "lt", "lte")
    if lower and upper:
        low, high = getattr(rules, lower[0]), getattr(rules, upper[0])
        if low == high and not (lower[0] == "gte" and upper[0] == "lte"):
            _fail(
                element,
                family,
                f"{lower[0]} ({low}) equal to {upper[0]} ({high}) leaves no valid value",
            )


def _length_conflicts(rules: Any, element: str) -> None:
    family = rules.family
    fields = rules._asdict()

    def present(name: str) -> bool:
        return fields.get(name) is not None

    for exact, low, high in (
        ("len", "min_len", "max_len"),
        ("len_bytes", "min_bytes", "max_bytes"),
    ):
        if present(exact) and (present(low) or present(high)):
            _fail(element, family, f"{exact} cannot be combined with {low} or {high}")
    for low, high in (
        ("min_len", "max_len"),
        ("min_bytes", "max_bytes"),
        ("min_items", "max_items"),
        ("min_pairs", "max_pairs"),
    ):
        if present(low) and present(high) and fields[low] > fields[high]:
            _fail(element, family, f"{low} ({fields[low]}) is greater than {high} ({fields[high]})")
    for text_rule in ("prefix", "suffix", "contains"):
        text = fields.get(text_rule)
        if text is None:
            continue
        for limit in ("max_len", "len"):
            if present(limit) and len(text) > fields[limit]:
                _fail(
                    element,
                    family,
                    f"{text_rule} {text!r} is longer than {limit} ({fields[limit]})",
                )
        if isinstance(text, str):
            for limit in ("max_bytes", "len_bytes"):
                if present(limit) and len(text.encode()) > fields[limit]:
                    _fail(
                        element,
                        family,
                        f"{text_rule} {text!r} is longer than {limit} ({fields[limit]})",
                    )


def one_line(text: str) -> str:
    """`text` as written, but for what would break a one-line message (line breaks, other
    control and invisible characters), which come out as Python escapes them."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _pattern_conflicts(rules: StringRules | BytesRules, element: str) -> None:
    if rules.pattern is None:
        return
    if rules.in_:
        _fail(element, rules.family, "pattern cannot be combined with in")
    if isinstance(rules, StringRules) and rules.well_known_regex is not None:
        _fail(element, rules.family, "pattern cannot be combined with well_known_regex")
    import re2  # only requests with patterns pay for loading RE2

    options = re2.Options()
    # Else RE2 also logs the rejection to stderr through absl, in lines protoc shows beside
    # the error it reports.
    options.log_errors = False
    try:
        re2.compile(rules.pattern, options=options)
    except re2.error as error:
        reason = error.args[0] if error.args else ""
        if isinstance(reason, bytes):  # google-re2 passes RE2's own message on as bytes
            reason = reason.decode("utf-8", "backslashreplace")
        _fail(
            element,
            rules.family,
            f'pattern "{one_line(rules.pattern)}" is not valid RE2: {one_line(str(reason))}',
        )


# Plans, shared by the families that have each rule.


def _const_check(family: str, const: Literal | None) -> list[Check]:
    if const is None:
        return []
    shown = _show_nanos(const) if family in ("duration", "timestamp") else _clip(_show(const))
    return [
        Check(
            CheckKind.NOT_IDENTICAL if isinstance(const, bool) else CheckKind.NOT_EQUAL,
            f"{family}.const",
            f"value must equal {shown}",
            arg=const,
        )
    ]


def _range_checks(rules: Any, family: str, show: Callable[[Literal], str]) -> list[Check]:
    lower_rule = next((rule for rule in ("gt", "gte") if getattr(rules, rule) is not None), None)
    upper_rule = next((rule for rule in ("lt", "lte") if getattr(rules, rule) is not None), None)
    if lower_rule is None and upper_rule is None:
        return []
    lower = getattr(rules, lower_rule) if lower_rule else None
    upper = getattr(rules, upper_rule) if upper_rule else None
    exclusive = lower is not None and upper is not None and lower > upper
    rule_id = f"{family}." + "_".join(r for r in (lower_rule, upper_rule) if r)
    if exclusive:
        rule_id += "_exclusive"
    if lower is not None and upper is not None:
        # Interval notation over the valid (inside) or invalid (outside) values.
        if exclusive:
            left = "(" if upper_rule == "lte" else "["
            right = ")" if lower_rule == "gte" else "]"
            message = f"value must be outside range {left}{show(upper)}, {show(lower)}{right}"
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
    context: PlanContext,
    family: str,
    members_in: tuple[Literal, ...],
    members_not_in: tuple[Literal, ...],
    what: str,
) -> list[Check]:
    checks = []
    for rule, members, kind, verb in (
        ("in", members_in, CheckKind.NOT_IN, "must"),
        ("not_in", members_not_in, CheckKind.IN, "must not"),
    ):
        if not members:
            continue
        name = context.constant(rule, ConstantKind.FROZENSET, members)
        shown = _clip(", ".join(_show(literal) for literal in members))
        checks.append(
            Check(kind, f"{family}.{rule}", f"{what} {verb} be in list [{shown}]", constant=name)
        )
    return checks


def _time_checks(rules: DurationRules | TimestampRules, context: PlanContext) -> list[Check]:
    return [
        *_const_check(rules.family, rules.const),
        *_range_checks(rules, rules.family, _show_nanos),
        *_set_checks(context, rules.family, rules.in_, rules.not_in, "value"),
    ]


def _length_checks(rules: StringRules | BytesRules, unit: str) -> list[Check]:
    checks: list[Check] = []
    lengths: list[tuple[str, int | None, CheckKind, str, str]] = [
        ("len", rules.len, CheckKind.LEN_NE, "exactly", unit),
        ("min_len", rules.min_len, CheckKind.LEN_LT, "at least", unit),
        ("max_len", rules.max_len, CheckKind.LEN_GT, "at most", unit),
    ]
    if isinstance(rules, StringRules):
        lengths += [
            ("len_bytes", rules.len_bytes, CheckKind.UTF8_LEN_NE, "exactly", "bytes"),
            ("min_bytes", rules.min_bytes, CheckKind.UTF8_LEN_LT, "at least", "bytes"),
            ("max_bytes", rules.max_bytes, CheckKind.UTF8_LEN_GT, "at most", "bytes"),
        ]
    for rule, bound, kind, relation, counted in lengths:
        if bound is not None and not _vacuous(kind, bound):
            checks.append(
                Check(
                    _minimum(kind, bound),
                    f"{rules.family}.{rule}",
                    f"value length must be {relation} {bound} {counted}",
                    arg=bound,
                )
            )
    return checks


def _text_checks(rules: StringRules | BytesRules, context: PlanContext) -> list[Check]:
    checks: list[Check] = []
    family = rules.family
    if rules.pattern is not None:
        literal: Literal = rules.pattern if family == "string" else rules.pattern.encode()
        name = context.constant("pattern", ConstantKind.PATTERN, (literal,))
        checks.append(
            Check(
                CheckKind.NO_MATCH,
                f"{family}.pattern",
                f"value does not match regex pattern {_clip(repr(rules.pattern))}",
                constant=name,
            )
        )
    affixes: list[tuple[str, str | bytes | None, CheckKind, str]] = [
        ("prefix", rules.prefix, CheckKind.NO_PREFIX, "does not have prefix"),
        ("suffix", rules.suffix, CheckKind.NO_SUFFIX, "does not have suffix"),
        ("contains", rules.contains, CheckKind.NO_CONTAINS, "does not contain substring"),
    ]
    if isinstance(rules, StringRules):
        affixes.append(
            ("not_contains", rules.not_contains, CheckKind.CONTAINS, "contains substring")
        )
    for rule, text, kind, phrase in affixes:
        if text is not None:
            checks.append(
                Check(
                    _minimum(kind, text),
                    f"{family}.{rule}",
                    f"value {phrase} {_clip(repr(text))}",
                    arg=text,
                )
            )
    return checks


def _count_checks(rules: Any, low: str, high: str, noun: str) -> list[Check]:
    checks = []
    for rule, kind, relation in (
        (low, CheckKind.LEN_LT, "at least"),
        (high, CheckKind.LEN_GT, "at most"),
    ):
        bound = getattr(rules, rule)
        if bound is not None and not _vacuous(kind, bound):
            checks.append(
                Check(
                    _minimum(kind, bound),
                    f"{rules.family}.{rule}",
                    f"value must contain {relation} {bound} {noun}(s)",
                    arg=bound,
                )
            )
    return checks


def _minimum(kind: CheckKind, bound: object) -> CheckKind:
    """A minimum of one (code point, byte, item) is simply "not empty"."""
    if kind in (CheckKind.LEN_LT, CheckKind.UTF8_LEN_LT) and bound == 1:
        return CheckKind.EMPTY
    return kind


def _vacuous(kind: CheckKind, value: object) -> bool:
    """A minimum length or count of 0 holds for every value: no check is made for it, and no
    test case could break it."""
    return kind in (CheckKind.LEN_LT, CheckKind.UTF8_LEN_LT) and value == 0


def _show(value: Literal) -> str:
    if isinstance(value, str | bytes):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _show_nanos(value: Literal) -> str:
    assert isinstance(value, int)
    seconds, fraction = divmod(value, _NANOS)
    return f"{seconds}.{fraction:09d}s".replace(".000000000s", "s")


def _clip(text: str, limit: int = 40) -> str:
    """Rule values shown in messages stay short; the rule id names the rule exactly."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
