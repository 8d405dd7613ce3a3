"""The validation plan templates print: per message, which values to read and which checks run.

Plain data only: a Check names its condition shape (CheckKind), its rule id, its message and
its literal arguments; templates turn shapes into code.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from protoc_gen_pyservice.model.cel_ir import Node
from protoc_gen_pyservice.model.nodes import Message, TypeRef

Literal = bool | int | float | str | bytes


class CheckKind(enum.Enum):
    """The shape of a failure condition over the value `v`."""

    NOT_EQUAL = "not_equal"  # v != arg
    NOT_IDENTICAL = "not_identical"  # v is not arg (bool const: `is not True`)
    NOT_IN = "not_in"  # v not in CONSTANT (rule `in`, enum defined_only)
    IN = "in"  # v in CONSTANT (rule `not_in`)
    RANGE = "range"  # not (v within bounds)
    LEN_NE = "len_ne"  # len(v) != arg (code points, bytes, items or pairs)
    LEN_LT = "len_lt"
    EMPTY = "empty"  # not v: a minimum length, byte count or item count of 1
    LEN_GT = "len_gt"
    UTF8_LEN_NE = "utf8_len_ne"  # len(v.encode()) != arg
    UTF8_LEN_LT = "utf8_len_lt"
    UTF8_LEN_GT = "utf8_len_gt"
    NO_PREFIX = "no_prefix"
    NO_SUFFIX = "no_suffix"
    NO_CONTAINS = "no_contains"
    CONTAINS = "contains"
    NO_MATCH = "no_match"  # not CONSTANT(v): a precompiled RE2 `found_in` test
    FORMAT = "format"  # not validation.<function>(v[, arg])
    NOT_UNIQUE = "not_unique"
    NOT_BEFORE_NOW = "not_before_now"  # timestamps, in nanoseconds
    NOT_AFTER_NOW = "not_after_now"
    NOT_WITHIN = "not_within"
    CEL = "cel"  # protovalidate: `expression` (compiled CEL) is true when the rule is broken


class Range(NamedTuple):
    lower: Literal | None
    lower_inclusive: bool
    upper: Literal | None
    upper_inclusive: bool
    exclusive: bool  # reversed bounds: valid outside [upper, lower]


class Check(NamedTuple):
    kind: CheckKind
    rule_id: str
    message: str
    arg: Literal | None = None
    constant: str | None = None  # module-level constant the check uses
    function: str | None = None  # runtime predicate, for FORMAT
    fast_function: str | None = None  # a precompiled pattern accepting the common case first
    bounds: Range | None = None
    expression: Node | None = None  # CEL: the compiled failure condition over `this`
    rule_path: str = ""  # CEL: protovalidate's rule path


class ConstantKind(enum.Enum):
    FROZENSET = "frozenset"
    PATTERN = "pattern"


class Constant(NamedTuple):
    name: str
    kind: ConstantKind
    values: tuple[Literal, ...]  # the set's members, or the pattern alone


class Read(enum.Enum):
    """How a value is read from its field."""

    PLAIN = "plain"  # the field (or element) itself
    WRAPPED = "wrapped"  # google.protobuf.*Value: `.value`
    NANOS = "nanos"  # Duration or Timestamp: total nanoseconds
    TYPE_URL = "type_url"  # Any: `.type_url`


class Embedded(NamedTuple):
    """Recursing into a message value: a function in this or another validate module, or the
    runtime's dispatch for types whose file this request does not generate."""

    module: str
    function: str
    dispatch: bool


class ValuePlan(NamedTuple):
    read: Read
    checks: tuple[Check, ...]
    ignore_empty: bool
    embedded: Embedded | None

    @property
    def single_check(self) -> bool:
        """One rule on the value as it is: a guard around it joins its `if` (ruff's SIM102)."""
        return self.embedded is None and self.read is Read.PLAIN and len(self.checks) == 1


class FieldKind(enum.Enum):
    SINGLE = "single"
    REPEATED = "repeated"
    MAP = "map"


class FieldPlan(NamedTuple):
    """A field's checks. protovalidate fields (`protovalidate`) are written from the model's
    compiled rules; their plan, of CEL checks, serves the testing module's examples."""

    name: str  # proto field name == protoc's attribute name
    kind: FieldKind
    guarded: bool  # read only when HasField (presence fields, message-typed values)
    required: Check | None  # message/any/duration/timestamp `required`
    value: ValuePlan | None  # SINGLE: the value; REPEATED: each item; MAP: each value
    key: ValuePlan | None  # MAP keys
    collection_checks: tuple[Check, ...]  # min_items, unique, min_pairs, ...
    collection_ignore_empty: bool
    protovalidate: bool = False

    @property
    def single_collection_check(self) -> bool:
        """One rule on the collection and none on its items: `ignore_empty` joins its `if`."""
        return len(self.collection_checks) == 1 and self.value is None and self.key is None


class OneofPlan(NamedTuple):
    name: str
    check: Check
    # protovalidate's oneofs (written from the model, planned here for the examples): a real
    # oneof's `required`, or a message `oneof` rule over `members`, which is no real oneof.
    protovalidate: bool = False
    members: tuple[str, ...] = ()


class MessagePlan(NamedTuple):
    ref: TypeRef
    function: str
    fields: tuple[FieldPlan, ...]
    oneofs: tuple[OneofPlan, ...]
    # protovalidate: the message whose compiled rules (Field.protovalidate, ...) render, and
    # the validator each of its message-typed fields recurses into.
    protovalidate: Message | None = None
    protovalidate_embedded: tuple[tuple[str, Embedded], ...] = ()


class ValidationPlan(NamedTuple):
    """What a file's `_validate.py` holds."""

    module: str
    messages: tuple[MessagePlan, ...]
    constants: tuple[Constant, ...]
    imports: tuple[str, ...]  # other validate modules called directly
