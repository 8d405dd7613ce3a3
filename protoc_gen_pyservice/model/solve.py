"""Values for one field, item, key or map value that pass all of its checks, or break exactly one.

Candidates come from the rules themselves (bounds and their neighbours, list members, the
prefix, suffix and substrings, examples of the pattern and formats, padding to each length
bound), nicest first; each is tested against every check exactly as the generated validator
tests it, so a value is only ever chosen when its outcome is certain.

Values are plain Python: str, bytes, int, float and bool as protobuf holds them; enums as
numbers; Durations and Timestamps as nanoseconds, or FromNow for rules against the clock;
Any as its type URL.

`Values._passes` repeats templates/_rules/checks.j2, a second source of truth on purpose: the
plugin must not import the runtime (its dependencies, its start-up cost).
tests/unit/test_examples.py holds it to the generated validators for every CheckKind.
"""

from __future__ import annotations

import functools
import itertools
import math
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from protoc_gen_pyservice.model.plan import Check, CheckKind, Constant, Literal, Range

if TYPE_CHECKING:
    from protoc_gen_pyservice.model.patterns import PatternShape

_NANOS = 1_000_000_000
# How late after building a request its validation may run: values checked against the
# clock keep their outcome for that long.
CLOCK_SLACK_SECONDS = 60
_INT_LIMITS = {
    "int32": (-(2**31), 2**31 - 1),
    "sint32": (-(2**31), 2**31 - 1),
    "sfixed32": (-(2**31), 2**31 - 1),
    "enum": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "fixed32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "sint64": (-(2**63), 2**63 - 1),
    "sfixed64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "fixed64": (0, 2**64 - 1),
    # Durations and Timestamps in nanoseconds: what protobuf's JSON mapping accepts.
    "duration": (-315_576_000_000 * _NANOS, 315_576_000_000 * _NANOS),
    "timestamp": (-62_135_596_800 * _NANOS, 253_402_300_799 * _NANOS),
}
_COMMON_TYPE_URLS = (
    "type.googleapis.com/google.protobuf.Empty",
    "type.googleapis.com/google.protobuf.Struct",
    "type.googleapis.com/google.protobuf.Duration",
)
# Padding characters by UTF-8 length, for strings that must have so many bytes.
_WIDE = {2: "é", 3: "€", 4: "😀"}
# The first two pad every candidate; the others (a space among them) only the last ones,
# for rules the usual letters cannot break.
_FILLERS = "abxz0 -"


class FromNow(NamedTuple):
    """A Timestamp this many seconds from the moment the request is built."""

    seconds: int


class Domain(NamedTuple):
    """What a value can be: its rule family and, for numbers, the field type's limits."""

    family: str  # string, bytes, bool, int32 ... fixed64, float, double, enum, duration, ...
    float32: bool = False
    enum_numbers: tuple[int, ...] = ()  # defined numbers, in declaration order
    closed_enum: bool = False  # a number no value has cannot even be set


Value = Any  # str | bytes | int | float | bool | FromNow


class Values:
    """The checks on one value, able to find values that pass them or break one of them."""

    def __init__(
        self,
        domain: Domain,
        checks: tuple[Check, ...],
        constants: Mapping[str, Constant],
        ignore_empty: bool,
    ) -> None:
        self.domain = domain
        self.checks = checks
        self._constants = constants
        self.ignore_empty = ignore_empty
        self._relative = any(
            check.kind in (CheckKind.NOT_BEFORE_NOW, CheckKind.NOT_AFTER_NOW, CheckKind.NOT_WITHIN)
            or (check.kind is CheckKind.CEL and _reads_clock(check))
            for check in checks
        )

    def passing(self, count: int = 1, *, filled: bool = False) -> list[Value] | None:
        """`count` distinct values that pass every check, nicest first (`filled`: values
        other than the default first); None if there are not that many among the
        candidates."""
        found: list[Value] = []
        defaults: list[Value] = []
        candidates = self._candidates()
        if not filled:
            candidates = itertools.chain(self._defaults(), candidates)
        for value in candidates:
            if self._outcomes(value) != (True,) * len(self.checks) or value in found:
                continue
            if filled and self.is_empty(value):
                defaults.append(value)
                continue
            found.append(value)
            if len(found) == count:
                return found
        found += defaults
        for value in self._more(found):
            if len(found) >= count:
                break
            found.append(value)
        return found[:count] if len(found) >= count else None

    def breaking(self, index: int, accept: Callable[[Value], bool] | None = None) -> Value | None:
        """A value that breaks check number `index` and passes all the others (and that
        `accept`, when given, takes: the rules on the message around it)."""
        wanted = tuple(position != index for position in range(len(self.checks)))
        for value in self._candidates():
            if self.is_empty(value) and self.ignore_empty:
                continue  # the checks do not run on it
            if self._outcomes(value) == wanted and (accept is None or accept(value)):
                return value
        return None

    def _defaults(self) -> Iterator[Value]:
        """The value an unset field reads as."""
        family = self.domain.family
        if family == "string" or family == "any":
            yield ""
        elif family == "bytes":
            yield b""
        elif family == "bool":
            yield False
        elif family in ("float", "double"):
            yield 0.0
        elif not self._relative:
            yield 0

    def is_empty(self, value: Value) -> bool:
        """Whether a value is the field's default (the value an unset field reads as)."""
        return not isinstance(value, FromNow) and not value

    def _outcomes(self, value: Value) -> tuple[bool | None, ...]:
        if self.ignore_empty and self.is_empty(value):
            return (True,) * len(self.checks)
        return tuple(self._passes(check, value) for check in self.checks)

    # Checks, as the generated validator evaluates them (templates/_rules/checks.j2).

    def _passes(self, check: Check, value: Value) -> bool | None:
        kind = check.kind
        if isinstance(value, FromNow) and kind is CheckKind.CEL:
            return _cel_passes(check, value, self.domain.family)
        if isinstance(value, FromNow):
            return _clock(kind, value.seconds * _NANOS, check.arg)
        if kind is CheckKind.NOT_EQUAL:
            return bool(value == check.arg)
        if kind is CheckKind.NOT_IDENTICAL:
            return value is check.arg
        if kind in (CheckKind.NOT_IN, CheckKind.IN):
            assert check.constant is not None
            inside = value in self._constants[check.constant].values
            return inside if kind is CheckKind.NOT_IN else not inside
        if kind is CheckKind.RANGE:
            assert check.bounds is not None
            return _within(check.bounds, value)
        if kind in _LENGTHS:
            measured = len(value.encode()) if kind in _UTF8 else len(value)
            return bool(_LENGTHS[kind](measured, check.arg))
        if kind is CheckKind.EMPTY:
            return bool(value)
        if kind is CheckKind.NO_PREFIX:
            return bool(value.startswith(check.arg))
        if kind is CheckKind.NO_SUFFIX:
            return bool(value.endswith(check.arg))
        if kind is CheckKind.NO_CONTAINS:
            return check.arg in value
        if kind is CheckKind.CONTAINS:
            return check.arg not in value
        if kind is CheckKind.NO_MATCH:
            assert check.constant is not None
            pattern = self._constants[check.constant].values[0]
            assert isinstance(pattern, str | bytes)
            return _found_in(pattern, value)
        if kind is CheckKind.FORMAT:
            from protoc_gen_pyservice.model import formats  # only format rules pay for it

            assert check.function is not None
            return formats.JUDGES[check.function](value, check.arg)
        if kind is CheckKind.CEL:
            return _cel_passes(check, value, self.domain.family)
        return None  # not a check on a single value

    # Candidates.

    def _candidates(self) -> Iterator[Value]:
        family = self.domain.family
        if family in ("string", "bytes"):
            texts = _text_candidates(self.checks, self._constants)
            if family == "bytes":
                yield from _unique(_latin1(text) for text in texts)
            else:
                yield from _unique(texts)
        elif family == "bool":
            yield from (False, True)
        elif family == "any":
            yield from _unique(self._type_urls())
        elif self._relative:
            yield from _unique(self._offsets())
        else:
            yield from self._numbers()

    def _type_urls(self) -> Iterator[str]:
        yield ""
        for check in self.checks:
            if check.constant is not None:
                yield from (str(url) for url in self._constants[check.constant].values)
        yield from _COMMON_TYPE_URLS

    def _offsets(self) -> Iterator[FromNow]:
        steps = [0, -3600, 3600]
        for check in self.checks:
            if check.kind is CheckKind.NOT_WITHIN and isinstance(check.arg, int):
                within = check.arg // _NANOS
                steps += [within // 2, -(within // 2), within + 3600, -(within + 3600)]
            if check.kind is CheckKind.CEL and check.expression is not None:
                from protoc_gen_pyservice.model import cel_eval
                from protoc_gen_pyservice.runtime import cel

                for constant in cel_eval.constants(check.expression):
                    if isinstance(constant, cel.Duration):
                        within = int(constant) // _NANOS
                        steps += [within // 2, -(within // 2), within + 3600, -(within + 3600)]
        yield from (FromNow(step) for step in steps)

    def _numbers(self) -> Iterator[Value]:
        domain = self.domain
        seeds: list[float | int] = [0, 1, -1, 2, 10, 100]
        scale = _NANOS if domain.family in ("duration", "timestamp") else 1
        seeds = [seed * scale for seed in seeds]
        for check in self.checks:
            if check.bounds is not None:
                seeds += _around_bounds(check.bounds, scale)
            if isinstance(check.arg, int | float) and not isinstance(check.arg, bool):
                seeds += [check.arg, check.arg - scale, check.arg + scale]
            if check.constant is not None:
                for member in self._constants[check.constant].values:
                    if isinstance(member, int | float) and not isinstance(member, bool):
                        seeds += [member, member - scale, member + scale]
            if check.kind is CheckKind.CEL and check.expression is not None:
                from protoc_gen_pyservice.model import cel_eval

                for member in cel_eval.constants(check.expression):
                    if isinstance(member, int | float) and not isinstance(member, bool):
                        step = 1 if member != int(member) or abs(member) < scale else scale
                        seeds += [member, member - step, member + step, member - 1, member + 1]
        seeds += domain.enum_numbers
        if domain.enum_numbers:
            seeds += [max(domain.enum_numbers) + 1, min(domain.enum_numbers) - 1]
        is_float = domain.family in ("float", "double")
        values: list[float | int] = []
        for seed in seeds:
            value = self._representable(seed, is_float)
            if value is not None and value not in values:
                values.append(value)
        if is_float:
            for extra in (0.5, math.inf, -math.inf):
                if extra not in values:
                    values.append(extra)
        yield from sorted(values, key=self._niceness)

    def _representable(self, value: float | int, is_float: bool) -> float | int | None:
        if is_float:
            number = float(value)
            if math.isnan(number):
                return None
            return _to_float32(number) if self.domain.float32 else number
        if isinstance(value, float):
            if not value.is_integer():
                return None
            value = int(value)
        low, high = _INT_LIMITS.get(self.domain.family, (None, None))
        if low is not None and high is not None and not low <= value <= high:
            return None
        if self.domain.closed_enum and value not in self.domain.enum_numbers:
            return None
        return value

    def _niceness(self, value: float | int) -> tuple[object, ...]:
        domain = self.domain
        scale = _NANOS if domain.family in ("duration", "timestamp") else 1
        undefined = bool(domain.enum_numbers) and value not in domain.enum_numbers
        whole = math.isfinite(value) and float(value / scale).is_integer()
        return (undefined, not math.isfinite(value), not whole, abs(value), value < 0)

    def _more(self, found: list[Value]) -> Iterator[Value]:
        """Further distinct passing values, grown from the last one found, then varied from
        each one found."""
        if not found or isinstance(found[-1], bool | FromNow):
            return
        grown = self._grown(found[-1])
        if isinstance(found[-1], str | bytes):
            varied = (self._varied(start) for start in reversed(found))
            grown = itertools.chain(grown, *varied)
        for value in grown:
            if value not in found and self._outcomes(value) == (True,) * len(self.checks):
                yield value

    def _grown(self, start: Value) -> Iterator[Value]:
        if isinstance(start, str | bytes):
            for count in range(1, 300):
                for filler in _FILLERS[:2]:
                    pad = filler * count
                    pad_value: Value = pad.encode() if isinstance(start, bytes) else pad
                    yield start + pad_value
                    yield pad_value + start
            return
        step: float | int = 1 if isinstance(start, int) else 2.0**-10
        if self.domain.family in ("duration", "timestamp"):
            step = _NANOS
        for attempt in range(1, 10_000):
            value = self._representable(start + attempt * step, isinstance(start, float))
            if value is not None:
                yield value

    def _varied(self, start: str | bytes) -> Iterator[Value]:
        """Values like `start` with characters changed: padding never makes another uuid or
        address, nor a longer value within a maximum length."""
        from protoc_gen_pyservice.model import formats

        function = next((c.function for c in self.checks if c.kind is CheckKind.FORMAT), None)
        text = start.decode("latin-1") if isinstance(start, bytes) else start
        for varied in formats.variants(function, text):
            yield varied.encode("latin-1") if isinstance(start, bytes) else varied


_LENGTHS: dict[CheckKind, Callable[[int, Any], bool]] = {
    CheckKind.LEN_NE: lambda size, arg: size == arg,
    CheckKind.LEN_LT: lambda size, arg: size >= arg,
    CheckKind.LEN_GT: lambda size, arg: size <= arg,
    CheckKind.UTF8_LEN_NE: lambda size, arg: size == arg,
    CheckKind.UTF8_LEN_LT: lambda size, arg: size >= arg,
    CheckKind.UTF8_LEN_GT: lambda size, arg: size <= arg,
}
_UTF8 = (CheckKind.UTF8_LEN_NE, CheckKind.UTF8_LEN_LT, CheckKind.UTF8_LEN_GT)


def _within(bounds: Range, value: Any) -> bool:
    lower, upper = bounds.lower, bounds.upper

    def above(bound: Any, inclusive: bool) -> bool:
        return bool(value >= bound if inclusive else value > bound)

    def below(bound: Any, inclusive: bool) -> bool:
        return bool(value <= bound if inclusive else value < bound)

    if bounds.exclusive:
        return above(lower, bounds.lower_inclusive) or below(upper, bounds.upper_inclusive)
    return (lower is None or above(lower, bounds.lower_inclusive)) and (
        upper is None or below(upper, bounds.upper_inclusive)
    )


def _clock(kind: CheckKind, offset: int, within: Literal | None) -> bool | None:
    """A check against the clock on a Timestamp `offset` nanoseconds from the time it was
    built, read by the validator up to CLOCK_SLACK_SECONDS later: certain outcomes only."""
    slack = CLOCK_SLACK_SECONDS * _NANOS
    if kind is CheckKind.NOT_BEFORE_NOW:  # lt_now
        return True if offset < 0 else False if offset > slack else None
    if kind is CheckKind.NOT_AFTER_NOW:  # gt_now
        return True if offset > slack else False if offset <= 0 else None
    if kind is CheckKind.NOT_WITHIN:
        assert isinstance(within, int)
        if slack - within <= offset <= within:
            return True
        return False if offset > within + slack or offset < -within else None
    return None


def _around_bounds(bounds: Range, scale: int) -> list[float | int]:
    found: list[float | int] = []
    for bound in (bounds.lower, bounds.upper):
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            found += [bound, bound - scale, bound + scale]
            if isinstance(bound, float) and math.isfinite(bound):
                found += [math.nextafter(bound, math.inf), math.nextafter(bound, -math.inf)]
    lower, upper = bounds.lower, bounds.upper
    if isinstance(lower, int | float) and isinstance(upper, int | float):
        middle = (lower + upper) / 2
        found += [middle, math.floor(middle), math.ceil(middle)] if math.isfinite(middle) else []
    return found


def _to_float32(value: float) -> float:
    """What a `float` field holds after `value` is stored in it."""
    try:
        rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)
    return rounded


@functools.cache
def _matcher(pattern: str | bytes) -> Callable[[Any], bool]:
    import re2  # only rules with patterns pay for loading RE2

    options = re2.Options()
    options.log_errors = False
    compiled: Any = re2.compile(pattern, options=options)
    return lambda text: compiled.search(text) is not None


def _found_in(pattern: str | bytes, value: Any) -> bool:
    return _matcher(pattern)(value)


def _latin1(text: str) -> bytes | None:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _unique(values: Iterable[Value]) -> Iterator[Value]:
    seen: set[tuple[type, Value]] = set()
    for value in values:
        if value is None:
            continue
        key = (type(value), value)
        if key not in seen:
            seen.add(key)
            yield value


def _text(value: Literal | None) -> str | None:
    """A rule argument as text: bytes rules' arguments are spelled as Latin-1."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


class _TextRules(NamedTuple):
    seeds: tuple[str, ...]
    prefix: str
    suffix: str
    contains: str
    avoid: tuple[str, ...]  # substrings a filler must not form
    lengths: tuple[int, ...]  # code points (bytes for bytes fields) worth trying
    byte_lengths: tuple[int, ...]  # UTF-8 bytes worth trying, for strings with byte rules
    patterns: tuple[PatternShape, ...]


def _text_rules(checks: tuple[Check, ...], constants: Mapping[str, Constant]) -> _TextRules:
    seeds: list[str] = []
    prefix = suffix = contains = ""
    avoid: list[str] = []
    lengths: set[int] = set()
    byte_lengths: set[int] = set()
    patterns: list[PatternShape] = []
    for check in checks:
        kind, arg = check.kind, _text(check.arg)
        if kind is CheckKind.NOT_EQUAL and arg is not None:
            seeds.append(arg)
        elif kind in (CheckKind.NOT_IN, CheckKind.IN) and check.constant is not None:
            members = [_text(member) for member in constants[check.constant].values]
            seeds += [member for member in members if member is not None]
            avoid += [member for member in members if member]
        elif kind is CheckKind.NO_PREFIX and arg is not None:
            prefix = arg
        elif kind is CheckKind.NO_SUFFIX and arg is not None:
            suffix = arg
        elif kind is CheckKind.NO_CONTAINS and arg is not None:
            contains = arg
        elif kind is CheckKind.CONTAINS and arg is not None:
            avoid.append(arg)
            seeds.append(arg)
        elif kind is CheckKind.NO_MATCH and check.constant is not None:
            from protoc_gen_pyservice.model.patterns import PatternShape  # only for patterns

            pattern = _text(constants[check.constant].values[0])
            shape = PatternShape.parse(pattern) if pattern is not None else None
            if shape is not None:
                patterns.append(shape)
        elif kind is CheckKind.FORMAT and check.function is not None:
            from protoc_gen_pyservice.model import formats

            seeds += [*formats.SEEDS[check.function], *formats.BREAKERS[check.function]]
        elif kind is CheckKind.CEL and check.expression is not None:
            from protoc_gen_pyservice.model.patterns import PatternShape

            affix = _cel_affix(check.expression)
            if affix is not None:
                which, text = affix
                if which == "starts_with":
                    prefix = text
                elif which == "ends_with":
                    suffix = text
                elif which == "contains":
                    contains = text
                else:
                    avoid.append(text)

            for pattern in _cel_text_hints(check.expression, seeds, lengths):
                shape = PatternShape.parse(pattern)
                if shape is not None:
                    patterns.append(shape)
        elif kind in _LENGTHS or kind is CheckKind.EMPTY:
            bound = check.arg if isinstance(check.arg, int) else 1
            nearby = {max(0, bound + step) for step in (-1, 0, 1)}
            (byte_lengths if kind in _UTF8 else lengths).update(nearby)
    # A value of a few characters, for rules that need any text other than the seeds.
    lengths.update((1, 3))
    return _TextRules(
        seeds=tuple(seeds),
        prefix=prefix,
        suffix=suffix,
        contains=contains,
        avoid=(*avoid, prefix, suffix, contains),
        lengths=tuple(sorted(lengths)),
        byte_lengths=tuple(sorted(byte_lengths)),
        patterns=tuple(patterns),
    )


def _cel_passes(check: Check, value: Value, family: str) -> bool | None:
    """Whether `value` passes a compiled protovalidate rule; None when that is not certain
    (an evaluation error, or something examples do not model)."""
    from protoc_gen_pyservice.model import cel_eval
    from protoc_gen_pyservice.runtime import cel

    assert check.expression is not None
    this: Any = value
    now = cel.now()
    if isinstance(value, FromNow):
        # Built at request time, checked within CLOCK_SLACK_SECONDS: the outcome must hold
        # for a clock anywhere in that window.
        outcomes = set()
        for slack in (0, CLOCK_SLACK_SECONDS):
            moment = cel.Timestamp(now + slack * _NANOS)
            this = cel.Timestamp(now + value.seconds * _NANOS)
            try:
                broken = cel_eval.evaluate(check.expression, {"this": this, "now": moment})
            except (cel.EvaluationError, cel_eval.Unsupported, TypeError):
                return None
            outcomes.add(not broken)
        return outcomes.pop() if len(outcomes) == 1 else None
    if family == "duration":
        this = cel.Duration(value)
    elif family == "timestamp":
        this = cel.Timestamp(value)
    try:
        broken = cel_eval.evaluate(check.expression, {"this": this, "now": now})
    except (cel.EvaluationError, cel_eval.Unsupported, TypeError):
        return None
    return not broken


def _reads_clock(check: Check) -> bool:
    """Whether a compiled rule reads `now` (timestamp.lt_now, gt_now, within)."""
    from protoc_gen_pyservice.model import cel_eval
    from protoc_gen_pyservice.model import cel_ir as ir

    assert check.expression is not None
    return any(
        isinstance(node, ir.Ref) and node.name == "now" for node in cel_eval.walk(check.expression)
    )


# Seeds for protovalidate's format functions, by the CEL overloads rules compile to.
_CEL_FORMAT_SEEDS = {
    "is_email": ("user@example.com", "user@", "a@b.c"),
    "is_hostname": ("example.com", "-x.com", "1.2"),
    "is_ip": ("192.168.0.1", "::1", "1.2.3"),
    "is_ip_prefix": ("10.0.0.0/8", "10.0.0.1/8", "2001:db8::/32", "10.0.0.0"),
    "is_ip_prefix_strict": ("10.0.0.0/8", "10.0.0.1/8", "2001:db8::/32"),
    "is_host_and_port": ("example.com:80", "[::1]:443", "example.com", "host:99999"),
    "is_uri": ("https://example.com/", "example.com", "https://exa mple.com"),
    "is_uri_ref": ("/path", "https://example.com/", "%zz"),
}


def _cel_affix(expression: Any) -> tuple[str, str] | None:
    """A standard string rule's affix: `not this.startsWith(s)` is a prefix rule (and so
    for endsWith and contains); `this.contains(s)` a substring to avoid."""
    from protoc_gen_pyservice.model import cel_ir as ir

    negated = isinstance(expression, ir.Op) and expression.op == "not"
    inner = expression.args[0] if negated else expression
    if not (
        isinstance(inner, ir.Op)
        and inner.op in ("starts_with", "ends_with", "contains")
        and isinstance(inner.args[0], ir.Ref)
        and isinstance(inner.args[1], ir.Const)
        and isinstance(inner.args[1].value, str)
    ):
        return None
    if negated:
        return inner.op, inner.args[1].value
    return ("avoid", inner.args[1].value) if inner.op == "contains" else None


def _cel_text_hints(expression: Any, seeds: list[str], lengths: set[int]) -> list[str]:
    """Seeds and lengths from a compiled rule's constants; returns its patterns."""
    from protoc_gen_pyservice.model import cel_eval
    from protoc_gen_pyservice.model import cel_ir as ir

    patterns = []
    for constant in cel_eval.constants(expression):
        if isinstance(constant, tuple) and constant[:1] == ("pattern",):
            patterns.append(constant[1])
        elif isinstance(constant, str):
            seeds.append(constant)
            seeds.append("a" + constant + "z")
        elif isinstance(constant, bytes):
            seeds.append(constant.decode("latin-1"))
        elif isinstance(constant, int) and not isinstance(constant, bool) and 0 <= constant < 300:
            lengths.update({max(0, constant + step) for step in (-1, 0, 1)})
    for node in cel_eval.walk(expression):
        if isinstance(node, ir.Op) and node.op in _CEL_FORMAT_SEEDS:
            seeds += _CEL_FORMAT_SEEDS[node.op]
    return patterns


def _text_candidates(checks: tuple[Check, ...], constants: Mapping[str, Constant]) -> Iterator[str]:
    rules = _text_rules(checks, constants)
    stretches = tuple(sorted({*rules.lengths, *rules.byte_lengths}))
    pattern_examples = [text for shape in rules.patterns for text in shape.examples(stretches)]
    yield from rules.seeds
    yield from pattern_examples
    yield ""
    fillers = [f for f in _FILLERS if not any(f in text for text in rules.avoid if text)] or ["a"]
    cores = ["", *pattern_examples, *rules.seeds]
    yield from _compositions(rules, cores, fillers[:2])
    yield from _compositions(rules, cores, fillers[2:])


def _compositions(rules: _TextRules, cores: list[str], fillers: list[str]) -> Iterator[str]:
    """Each core with the prefix, substring and suffix around it, padded to each length;
    each of those parts may be left out, so that the rule it satisfies can be broken."""
    for core in cores:
        for use_prefix, use_contains, use_suffix in _SWITCHES:
            prefix = rules.prefix if use_prefix else ""
            middle = core + (rules.contains if use_contains else "")
            tail = rules.suffix if use_suffix else ""
            yield prefix + middle + tail
            for points, size in _length_targets(rules):
                for filler in fillers:
                    pad = _pad(points, size, prefix + middle + tail, filler)
                    if pad is not None:
                        yield prefix + middle + pad + tail
                        yield prefix + pad + middle + tail


_SWITCHES = [
    (prefix, contains, suffix)
    for prefix in (True, False)
    for contains in (True, False)
    for suffix in (True, False)
]


def _length_targets(rules: _TextRules) -> Iterator[tuple[int | None, int | None]]:
    """Lengths to pad to: each code point count with each byte count, then each alone."""
    for points in rules.lengths:
        for size in rules.byte_lengths:
            yield points, size
    for points in rules.lengths:
        yield points, None
    for size in rules.byte_lengths:
        yield None, size


def _pad(points: int | None, size: int | None, text: str, filler: str) -> str | None:
    """Characters that bring `text` to `points` code points and `size` UTF-8 bytes."""
    need_points = None if points is None else points - len(text)
    need_bytes = None if size is None else size - len(text.encode())
    if need_points is None:
        need_points = need_bytes
    if need_points is None or need_points < 0:
        return None
    if need_bytes is None:
        return filler * need_points
    if not need_points <= need_bytes <= 4 * need_points:
        return None
    chars = [filler] * need_points
    extra = need_bytes - need_points
    for index in range(need_points):
        if extra <= 0:
            break
        grow = min(3, extra)
        chars[index] = _WIDE[grow + 1]
        extra -= grow
    return "".join(chars)
