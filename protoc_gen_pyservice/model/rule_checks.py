"""Rules that contradict themselves or their field are compile errors, found before rendering.

Covers at least what protoc-gen-validate's own checker rejects. `check_rules` raises
GenerationError naming the element and the conflict.
"""

from __future__ import annotations

from collections.abc import Callable

from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.model.nodes import RuleSet, RuleValue

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
_NANOS = 1_000_000_000


def rule_dict(rules: RuleSet) -> dict[str, RuleValue]:
    return dict(rules.values)


def count(values: dict[str, RuleValue], name: str) -> int:
    """A length or count rule (len, min_items, ...), always an unsigned integer."""
    value = values[name]
    assert isinstance(value, int)
    return value


def nanos(value: RuleValue, element: str, rule: str, family: str) -> int:
    """A Duration or Timestamp rule value in nanoseconds; it must be normalised."""
    assert isinstance(value, RuleSet)
    parts = rule_dict(value)
    seconds, fraction = int(parts.get("seconds", 0)), int(parts.get("nanos", 0))  # type: ignore[arg-type]
    if not -_NANOS < fraction < _NANOS or (
        seconds and fraction and (seconds > 0) != (fraction > 0)
    ):
        raise GenerationError(element, f"{family}.{rule} is not a normalised {family}")
    if family == "timestamp" and not 0 <= fraction < _NANOS:
        raise GenerationError(element, f"{family}.{rule} is not a normalised {family}")
    return seconds * _NANOS + fraction


def one_line(text: str) -> str:
    """`text` as written, but for what would break a one-line message (line breaks, other
    control and invisible characters), which come out as Python escapes them."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def check_rules(
    rules: RuleSet,
    element: str,
    *,
    defined_enum_values: frozenset[int] | None = None,
    to_number: Callable[[RuleValue, str], float | int] | None = None,
) -> None:
    """Reject contradictory rules of one family on one field."""
    family = rules.family
    values = rule_dict(rules)

    def fail(message: str) -> None:
        raise GenerationError(element, f"{family} rules: {message}")

    def has(*names: str) -> list[str]:
        return [name for name in names if name in values]

    def number(name: str) -> float | int:
        value = values[name]
        if to_number is not None:
            return to_number(value, name)
        assert isinstance(value, int | float)
        return value

    if "const" in values:
        others = sorted(set(values) - {"const", "ignore_empty", "strict"})
        if others:
            fail(f"const cannot be combined with {', '.join(others)}")
    for low, high in (("lt", "lte"), ("gt", "gte")):
        if low in values and high in values:
            fail(f"{low} and {high} cannot both be set")
    bounds = has("lt", "lte", "gt", "gte")
    if "in" in values and (bounds or "not_in" in values):
        fail(f"in cannot be combined with {', '.join(bounds or ['not_in'])}")
    lower = has("gt", "gte")
    upper = has("lt", "lte")
    if lower and upper:
        lo, hi = number(lower[0]), number(upper[0])
        if lo == hi and not (lower[0] == "gte" and upper[0] == "lte"):
            fail(f"{lower[0]} ({lo}) equal to {upper[0]} ({hi}) leaves no valid value")
    _check_lengths(values, fail)
    if "pattern" in values:
        for other in ("in", "well_known_regex"):
            if other in values:
                fail(f"pattern cannot be combined with {other}")
        pattern = values["pattern"]
        assert isinstance(pattern, str)
        import re2  # only requests with patterns pay for loading RE2

        options = re2.Options()
        # Else RE2 also logs the rejection to stderr through absl, in lines protoc shows
        # beside the error it reports.
        options.log_errors = False
        try:
            re2.compile(pattern, options=options)
        except re2.error as error:
            reason = error.args[0] if error.args else ""
            if isinstance(reason, bytes):  # google-re2 passes RE2's own message on as bytes
                reason = reason.decode("utf-8", "backslashreplace")
            fail(f'pattern "{one_line(pattern)}" is not valid RE2: {one_line(str(reason))}')
    if defined_enum_values is not None and values.get("defined_only"):
        for value in values.get("in", ()):  # type: ignore[union-attr]
            if value not in defined_enum_values:
                fail(f"in value {value!r} is not a defined enum number, but defined_only is set")
    if family == "timestamp":
        relative = has("lt_now", "gt_now", "within")
        absolute = has("lt", "lte", "gt", "gte", "const")
        if relative and absolute:
            fail(f"{', '.join(relative)} cannot be combined with {', '.join(absolute)}")
        if values.get("lt_now") and values.get("gt_now"):
            fail("lt_now and gt_now cannot both be set")
        if "within" in values and nanos(values["within"], element, "within", "duration") <= 0:
            fail("within must be a positive duration")


def _check_lengths(values: dict[str, RuleValue], fail: Callable[[str], None]) -> None:
    for exact, low, high in (
        ("len", "min_len", "max_len"),
        ("len_bytes", "min_bytes", "max_bytes"),
    ):
        if exact in values and (low in values or high in values):
            fail(f"{exact} cannot be combined with {low} or {high}")
    for low, high in (
        ("min_len", "max_len"),
        ("min_bytes", "max_bytes"),
        ("min_items", "max_items"),
        ("min_pairs", "max_pairs"),
    ):
        if low in values and high in values and count(values, low) > count(values, high):
            fail(f"{low} ({count(values, low)}) is greater than {high} ({count(values, high)})")
    for text_rule in ("prefix", "suffix", "contains"):
        if text_rule not in values:
            continue
        text = values[text_rule]
        assert isinstance(text, str | bytes)
        size = len(text)
        for limit in ("max_len", "len"):
            if limit in values and size > count(values, limit):
                fail(f"{text_rule} {text!r} is longer than {limit} ({count(values, limit)})")
        if isinstance(text, str):
            for limit in ("max_bytes", "len_bytes"):
                if limit in values and len(text.encode()) > count(values, limit):
                    fail(f"{text_rule} {text!r} is longer than {limit} ({count(values, limit)})")
