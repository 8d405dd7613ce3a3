"""CEL's semantics for the code protovalidate rules compile to: what Python's operators do not
already do the way CEL specifies.

The plugin compiles each CEL expression to plain Python at generation time and folds what
depends only on the rules with these same functions, so a constant and a run-time value follow
one definition. Values are Python's: int for int and uint (range-checked after every
operation), float, str, bytes, bool, None for null, lists, dicts, messages, and the two int
subclasses below for durations and timestamps in nanoseconds.

A CEL evaluation error (overflow, division by zero, no such key, a bad conversion) raises
EvaluationError: it is neither a violation nor a crash, and servers answer it as an invalid
argument.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import ipaddress
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

import re2
from protoc_gen_pyservice.runtime import uri

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
_NANOS = 1_000_000_000
# Timestamps span 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_TIMESTAMP_MIN = -62_135_596_800 * _NANOS
_TIMESTAMP_MAX = 253_402_300_799 * _NANOS + _NANOS - 1
# Durations are int64 nanoseconds, about 292 years either way (cel-go's range; the spec's).
_DURATION_MIN = INT64_MIN
_DURATION_MAX = INT64_MAX


class EvaluationError(RuntimeError):
    """A CEL expression could not be evaluated on this input (CEL's error value)."""


class Duration(int):
    """A CEL duration: nanoseconds."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"duration({format_duration(self)!r})"


class Timestamp(int):
    """A CEL timestamp: nanoseconds since the Unix epoch."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"timestamp({format_timestamp(self)!r})"


# Integers.


def int64(value: int) -> int:
    if INT64_MIN <= value <= INT64_MAX:
        return value
    raise EvaluationError("int64 overflow")


def uint64(value: int) -> int:
    if 0 <= value <= UINT64_MAX:
        return value
    raise EvaluationError("uint64 overflow")


def int_divide(left: int, right: int) -> int:
    """CEL's int division: truncated toward zero."""
    if right == 0:
        raise EvaluationError("division by zero")
    quotient = abs(left) // abs(right)
    return int64(quotient if (left < 0) == (right < 0) else -quotient)


def int_modulo(left: int, right: int) -> int:
    """CEL's int modulus: the sign of the dividend."""
    if right == 0:
        raise EvaluationError("modulus by zero")
    if left == INT64_MIN and right == -1:
        raise EvaluationError("int64 overflow")  # as the quotient would
    remainder = abs(left) % abs(right)
    return -remainder if left < 0 else remainder


def uint_divide(left: int, right: int) -> int:
    if right == 0:
        raise EvaluationError("division by zero")
    return left // right


def uint_modulo(left: int, right: int) -> int:
    if right == 0:
        raise EvaluationError("modulus by zero")
    return left % right


def double_divide(left: float, right: float) -> float:
    """IEEE division: a zero divisor gives an infinity or NaN, not an error."""
    if right == 0:
        if left == 0 or math.isnan(left):
            return math.nan
        return math.copysign(math.inf, left) * math.copysign(1.0, right)
    return left / right


# Durations and timestamps.


def duration(nanos: int) -> Duration:
    if _DURATION_MIN <= nanos <= _DURATION_MAX:
        return Duration(nanos)
    raise EvaluationError("duration out of range")


def timestamp(nanos: int) -> Timestamp:
    if _TIMESTAMP_MIN <= nanos <= _TIMESTAMP_MAX:
        return Timestamp(nanos)
    raise EvaluationError("timestamp out of range")


def read_duration(message: Any) -> Duration:
    """A google.protobuf.Duration field's value."""
    return Duration(int(message.seconds) * _NANOS + int(message.nanos))


def read_timestamp(message: Any) -> Timestamp:
    """A google.protobuf.Timestamp field's value."""
    return Timestamp(int(message.seconds) * _NANOS + int(message.nanos))


def now() -> Timestamp:
    """protovalidate's `now`: the clock when the expression runs."""
    import time

    return Timestamp(time.time_ns())


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(h|ms|us|\u00b5s|\u03bcs|ns|m|s)")
_DURATION_UNITS = {
    "h": 3600 * _NANOS,
    "m": 60 * _NANOS,
    "s": _NANOS,
    "ms": 1_000_000,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu: Go takes both
    "ns": 1,
}


def parse_duration(text: str) -> Duration:
    """`duration("1h30m")`: Go's duration syntax (one optional sign), which CEL uses."""
    sign = -1 if text.startswith("-") else 1
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return Duration(0)
    position = 0
    total = 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None:
            raise EvaluationError(f"invalid duration {text!r}")
        number, unit = match.groups()
        whole, _, fraction = number.partition(".")
        scale = _DURATION_UNITS[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        position = match.end()
    if not body:
        raise EvaluationError(f"invalid duration {text!r}")
    return duration(sign * total)


# ASCII digits only (Python's \d takes any script's); fractions past nanoseconds are cut off,
# as Go's time.Parse does.
_TIMESTAMP_TEXT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"([Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)


def parse_timestamp(text: str) -> Timestamp:
    """`timestamp("2006-01-02T15:04:05Z")`: RFC 3339."""
    match = _TIMESTAMP_TEXT.fullmatch(text)
    if match is None:
        raise EvaluationError(f"invalid timestamp {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=datetime.UTC,
        )
    except ValueError:
        raise EvaluationError(f"invalid timestamp {text!r}") from None
    offset = 0
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    seconds = (moment - epoch) // datetime.timedelta(seconds=1) - offset
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    return timestamp(seconds * _NANOS + nanos)


def format_duration(value: int) -> str:
    """A duration as CEL's string() writes it: seconds with as many decimals as it needs."""
    sign = "-" if value < 0 else ""
    seconds, nanos = divmod(abs(value), _NANOS)
    if not nanos:
        return f"{sign}{seconds}s"
    return f"{sign}{seconds}.{nanos:09d}".rstrip("0") + "s"


def format_timestamp(value: int) -> str:
    """A timestamp as RFC 3339 in UTC, with as many fraction digits as it needs."""
    seconds, nanos = divmod(value, _NANOS)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    moment = epoch + datetime.timedelta(seconds=seconds)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if len(text) < 19:  # years before 1000 lose their zeros in strftime
        text = f"{moment.year:04d}" + text[text.index("-") :]
    if nanos:
        text += f".{nanos:09d}".rstrip("0")
    return text + "Z"


def timestamp_part(value: int, part: str, zone: str = "UTC") -> int:
    """getFullYear() and friends, in UTC or in `zone`: a fixed offset such as "+05:30" or an
    IANA time zone name such as "Europe/Paris"."""
    seconds, nanos = divmod(value, _NANOS)
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        seconds=seconds
    )
    if zone != "UTC":
        try:
            moment = moment.astimezone(_time_zone(zone))
        except OverflowError:
            raise EvaluationError("timestamp out of range in time zone " + zone) from None
    parts = {
        "getFullYear": moment.year,
        "getMonth": moment.month - 1,
        "getDate": moment.day,
        "getDayOfMonth": moment.day - 1,
        "getDayOfWeek": (moment.weekday() + 1) % 7,
        "getDayOfYear": moment.timetuple().tm_yday - 1,
        "getHours": moment.hour,
        "getMinutes": moment.minute,
        "getSeconds": moment.second,
        "getMilliseconds": nanos // 1_000_000,
    }
    return parts[part]


_FIXED_ZONE = re.compile(r"([+-])([0-9]{2}):([0-9]{2})")


def _time_zone(name: str) -> datetime.tzinfo:
    fixed = _FIXED_ZONE.fullmatch(name)
    if fixed is not None:
        sign, hours, minutes = fixed.groups()
        offset = datetime.timedelta(hours=int(hours), minutes=int(minutes))
        if offset >= datetime.timedelta(days=1):
            raise EvaluationError(f"invalid time zone {name!r}")
        return datetime.timezone(-offset if sign == "-" else offset)
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise EvaluationError(f"unknown time zone {name!r}") from None


def duration_part(value: int, part: str) -> int:
    """getHours() and friends: whole units, truncated toward zero."""
    units = {
        "getHours": 3600 * _NANOS,
        "getMinutes": 60 * _NANOS,
        "getSeconds": _NANOS,
        "getMilliseconds": 1_000_000,
    }
    scale = units[part]
    whole = abs(value) // scale
    if part == "getMilliseconds":
        whole = (abs(value) % _NANOS) // scale
    return -whole if value < 0 else whole


# Conversions.


def to_int(value: Any) -> int:
    if isinstance(value, Timestamp):
        return value // _NANOS
    if isinstance(value, bool):
        raise EvaluationError("no such overload: int(bool)")
    if isinstance(value, int):
        return int64(int(value))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise EvaluationError("double out of int64 range")
        # Both ends open, as in cel-go and cel-cpp: 2^63 - 1 is no double, and -2^63 is taken
        # as out of range too.
        if not -(2.0**63) < value < 2.0**63:
            raise EvaluationError("double out of int64 range")
        return int(value)
    if isinstance(value, str):
        if _INT_TEXT.fullmatch(value) is None:
            raise EvaluationError(f"cannot convert {value!r} to int")
        return int64(int(value, 10))
    raise EvaluationError(f"no such overload: int({type(value).__name__})")


# What Go's strconv accepts (cel-go): ASCII digits, no spaces or underscores, which Python's
# int() and float() would take.
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_UINT_TEXT = re.compile(r"[0-9]+")
_DOUBLE_TEXT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE
)
_HEX_DOUBLE_TEXT = re.compile(
    r"[+-]?0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)p[+-]?[0-9]+", re.IGNORECASE
)


def to_uint(value: Any) -> int:
    if isinstance(value, bool):
        raise EvaluationError("no such overload: uint(bool)")
    if isinstance(value, int):
        return uint64(int(value))
    if isinstance(value, float):
        if math.isnan(value) or not 0 <= value < 2.0**64:
            raise EvaluationError("double out of uint64 range")
        return int(value)
    if isinstance(value, str):
        if _UINT_TEXT.fullmatch(value) is None:
            raise EvaluationError(f"cannot convert {value!r} to uint")
        return uint64(int(value))
    raise EvaluationError(f"no such overload: uint({type(value).__name__})")


def to_double(value: Any) -> float:
    if isinstance(value, bool):
        raise EvaluationError("no such overload: double(bool)")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if _DOUBLE_TEXT.fullmatch(value) is not None:
            return float(value)
        if _HEX_DOUBLE_TEXT.fullmatch(value) is not None:
            return float.fromhex(value)
        raise EvaluationError(f"cannot convert {value!r} to double")
    raise EvaluationError(f"no such overload: double({type(value).__name__})")


def to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Duration):
        return format_duration(value)
    if isinstance(value, Timestamp):
        return format_timestamp(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise EvaluationError("bytes are not valid UTF-8") from None
    raise EvaluationError(f"no such overload: string({type(value).__name__})")


def to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise EvaluationError(f"no such overload: bytes({type(value).__name__})")


def format_double(value: float) -> str:
    """A double as CEL's string() writes it: Go's strconv.FormatFloat(value, 'g', -1, 64), the
    shortest digits that read back, with an exponent from 1e+06 and below 1e-04."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign, digits, point = _shortest_digits(value)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + _fixed(digits, point)


def _format_fixed_shortest(value: float) -> str:
    """Go's strconv.FormatFloat(value, 'f', -1, 64): the shortest digits, never an exponent
    (string.format's %s and %d of a double, as cel-go writes them)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    sign, digits, point = _shortest_digits(value)
    return sign + _fixed(digits, point)


def _shortest_digits(value: float) -> tuple[str, str, int]:
    """(sign, significant digits, position of the decimal point) of repr(value)."""
    parsed = decimal.Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, parsed.digits)).lstrip("0") or "0"
    exponent = int(parsed.exponent) + len(parsed.digits) - len(digits)
    trimmed = digits.rstrip("0") or "0"
    point = len(digits) + exponent if digits != "0" else 1
    return ("-" if parsed.sign else ""), trimmed, point


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


# Collections.


def index_list(values: Sequence[Any], index: Any) -> Any:
    if isinstance(index, float):
        if index != int(index):
            raise EvaluationError("invalid list index")
        index = int(index)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(values):
        raise EvaluationError(f"index {index} out of range")
    return values[index]


def index_map(values: Mapping[Any, Any], key: Any) -> Any:
    """`m[k]`: an error when the key is absent (protobuf maps would insert it)."""
    if has_key(values, key):
        return values[key]
    raise EvaluationError("no such key")


def _bool_int_confusion(values: Mapping[Any, Any], key: Any) -> bool:
    """Python takes True for 1 as a key; CEL keys of different types never meet."""
    for present in values:
        if present == key:
            return isinstance(present, bool) != isinstance(key, bool)
    return False


def unique(values: Iterable[Any]) -> bool:
    """protovalidate's `unique()`: no two items equal (CEL equality; NaN is not equal to NaN)."""
    seen: list[Any] = []
    hashable: set[Any] = set()
    for value in values:
        if isinstance(value, float) and math.isnan(value):
            continue
        try:
            key = (type(value) is bool, value)
            if key in hashable:
                return False
            hashable.add(key)
        except TypeError:
            if value in seen:
                return False
            seen.append(value)
    return True


def exists_one(values: Iterable[Any], test: Callable[[Any], bool]) -> bool:
    """exists_one(): true for exactly one item; every item is tested, since an error from any
    of them is the macro's error."""
    return sum(1 for value in values if test(value)) == 1


# CEL's && and || are commutative: a false (&&) or true (||) operand decides the result even
# when another operand is an error. The generated code puts operands that cannot fail first
# and passes those that can here, each as a function, when more than one can.


def logical_and(*operands: Callable[[], bool]) -> bool:
    error: EvaluationError | None = None
    for operand in operands:
        try:
            if not operand():
                return False
        except EvaluationError as raised:
            error = error or raised
    if error is not None:
        raise error
    return True


def logical_or(*operands: Callable[[], bool]) -> bool:
    error: EvaluationError | None = None
    for operand in operands:
        try:
            if operand():
                return True
        except EvaluationError as raised:
            error = error or raised
    if error is not None:
        raise error
    return False


def all_of(values: Iterable[Any], test: Callable[[Any], bool]) -> bool:
    """all() whose predicate can fail: a false item decides it over an error from another."""
    return logical_and(*(functools.partial(test, value) for value in values))


def any_of(values: Iterable[Any], test: Callable[[Any], bool]) -> bool:
    """exists() whose predicate can fail: a true item decides it over an error from another."""
    return logical_or(*(functools.partial(test, value) for value in values))


def fail(message: str) -> NoReturn:
    """A part of an expression that is an error whatever the input (`1 / 0`), where the rest
    can still decide the result (`x || 1 / 0 == 1`)."""
    raise EvaluationError(message)


def equal(left: Any, right: Any) -> bool:
    """CEL's ==: numbers of any kind compare by value (NaN equals nothing), lists item by
    item and maps key by key, and values of different types are unequal (Python takes True
    for 1 and an item for itself, NaN included)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, Duration | Timestamp) or isinstance(right, Duration | Timestamp):
        return type(left) is type(right) and int(left) == int(right)
    if isinstance(left, int | float) and isinstance(right, int | float):
        return bool(_as_doubles(left, right, operator.eq))
    if isinstance(left, str | bytes) or isinstance(right, str | bytes):
        return type(left) is type(right) and left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        if len(left) != len(right):
            return False
        for key, item in left.items():
            if not has_key(right, key) or not equal(item, index_map(right, key)):
                return False
        return True
    if isinstance(left, Sequence) and isinstance(right, Sequence):
        return len(left) == len(right) and all(map(equal, left, right))
    return bool(left == right)


def _as_doubles(left: Any, right: Any, compare: Callable[[Any, Any], Any]) -> Any:
    """An int or uint against a double compares as two doubles, as in cel-go and cel-cpp
    ("one continuous number line"); two integers compare exactly."""
    if isinstance(left, float) != isinstance(right, float):
        return compare(float(left), float(right))
    return compare(left, right)


def _ordered(left: Any, right: Any, compare: Callable[[Any, Any], Any]) -> bool:
    """<, <=, > or >= of two dyn values: numbers of any kind, or two of one ordered type."""
    kinds = (_order_kind(left), _order_kind(right))
    if kinds[0] != kinds[1] or kinds[0] is None:
        raise EvaluationError("no matching overload for an ordering")
    return bool(_as_doubles(left, right, compare))


def _order_kind(value: Any) -> type | None:
    if isinstance(value, bool | Duration | Timestamp | str | bytes):
        return type(value)
    return float if isinstance(value, int | float) else None


def less(left: Any, right: Any) -> bool:
    return _ordered(left, right, operator.lt)


def less_equal(left: Any, right: Any) -> bool:
    return _ordered(left, right, operator.le)


def greater(left: Any, right: Any) -> bool:
    return _ordered(left, right, operator.gt)


def greater_equal(left: Any, right: Any) -> bool:
    return _ordered(left, right, operator.ge)


def in_list(item: Any, values: Iterable[Any]) -> bool:
    """`item in list` by CEL's ==."""
    return any(equal(item, value) for value in values)


def has_key(values: Mapping[Any, Any], key: Any) -> bool:
    """`key in map`, keeping true and 1 apart."""
    return key in values and not _bool_int_confusion(values, key)


def make_map(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    """A map literal whose keys are known only at run time: a repeated key is an error."""
    made: dict[Any, Any] = {}
    for key, value in pairs:
        if isinstance(key, float | bytes) or not isinstance(key, int | str):
            raise EvaluationError(f"invalid map key type {type(key).__name__}")
        if key in made:
            raise EvaluationError(f"duplicate map key {_format_s(key)}")
        made[key] = value
    return made


# Strings.

_REGEX_OPTIONS = re2.Options()
_REGEX_OPTIONS.log_errors = False
_regex_cache: dict[str, Any] = {}


def regex(expression: str) -> Callable[[str], bool]:
    """A `matches()` test: RE2, found anywhere in the text, as CEL specifies."""
    try:
        compiled: Any = re2.compile(expression, options=_REGEX_OPTIONS)
    except re2.error:
        raise EvaluationError(f"invalid regular expression {expression!r}") from None

    def found_in(text: str) -> bool:
        return compiled.search(text) is not None

    return found_in


def matches(text: str, expression: str) -> bool:
    """`matches()` with a pattern known only at run time (cached, bounded)."""
    test = _regex_cache.get(expression)
    if test is None:
        test = regex(expression)
        if len(_regex_cache) >= 256:
            _regex_cache.clear()
        _regex_cache[expression] = test
    return bool(test(text))


def format_text(template: str, arguments: Sequence[Any]) -> str:
    """CEL's `string.format(list)`: %s, %d, %f, %e, %x, %X, %o, %b and %%, each taking the
    next argument; `%.Nf` and `%.Ne` set the precision."""
    out: list[str] = []
    index = 0
    position = 0
    length = len(template)
    while position < length:
        char = template[position]
        if char != "%":
            out.append(char)
            position += 1
            continue
        position += 1
        if position >= length:
            raise EvaluationError("format: unterminated %")
        if template[position] == "%":
            out.append("%")
            position += 1
            continue
        precision: int | None = None
        if template[position] == ".":
            end = position + 1
            while end < length and template[end].isdigit():
                end += 1
            precision = int(template[position + 1 : end] or "0")
            position = end
        if position >= length:
            raise EvaluationError("format: unterminated %")
        verb = template[position]
        position += 1
        if index >= len(arguments):
            raise EvaluationError("format: too few arguments")
        out.append(_format_one(verb, arguments[index], precision))
        index += 1
    return "".join(out)


def _format_one(verb: str, value: Any, precision: int | None) -> str:
    # cel-go's rules (the conformance suite's): %d, %f and %e take any number, %x integers,
    # strings and bytes, %o integers, %b integers and bools; a duration or timestamp (int
    # subclasses here) is none of these.
    number = _plain_number(value)
    if verb == "s":
        return _format_s(value)
    if verb == "d":
        if number is None:
            raise EvaluationError("format: %d needs a number")
        return _format_fixed_shortest(number) if isinstance(number, float) else str(number)
    if verb in "fe":
        if number is None:
            raise EvaluationError(f"format: %{verb} needs a number")
        as_double = float(number)
        if math.isnan(as_double) or math.isinf(as_double):
            return _format_fixed_shortest(as_double)
        digits = 6 if precision is None else precision
        return f"{as_double:.{digits}{verb}}"
    if verb in "xX":
        if isinstance(value, str | bytes):
            text = (value.encode() if isinstance(value, str) else value).hex()
        elif isinstance(number, int):
            text = format(number, "x") if number >= 0 else "-" + format(-number, "x")
        else:
            raise EvaluationError(f"format: %{verb} needs an integer, string or bytes")
        return text.upper() if verb == "X" else text
    if verb in "ob":
        if verb == "b" and isinstance(value, bool):
            return "1" if value else "0"
        if not isinstance(number, int):
            raise EvaluationError(f"format: %{verb} needs an integer")
        return ("-" if number < 0 else "") + format(abs(number), verb)
    raise EvaluationError(f"format: unknown verb %{verb}")


def _plain_number(value: Any) -> int | float | None:
    if isinstance(value, bool | Duration | Timestamp):
        return None
    if isinstance(value, int):
        return int(value)
    return value if isinstance(value, float) else None


def _format_s(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float):
        return _format_fixed_shortest(value)
    if isinstance(value, int):
        return to_string(value)
    if isinstance(value, Mapping):
        # Sorted by the keys' text, as cel-go writes maps: a stable message whatever the order.
        entries = sorted((_format_s(key), _format_s(item)) for key, item in value.items())
        return "{" + ", ".join(f"{key}: {item}" for key, item in entries) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_format_s(item) for item in value) + "]"
    raise EvaluationError(f"format: %s cannot write a {type(value).__name__}")


# protovalidate's functions.

_EMAIL = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)


def is_email(value: str) -> bool:
    """The WHATWG (HTML) definition of a valid email address, which protovalidate uses."""
    return len(value) <= 254 and _EMAIL.fullmatch(value) is not None


def is_hostname(value: str) -> bool:
    """RFC 1123 host name: labels of 1 to 63 letters, digits and inner hyphens, at most 253
    characters, an optional trailing dot, and a last label not all digits."""
    if len(value) > 253:
        return False
    host = value.removesuffix(".")
    all_digits = False
    for label in host.split("."):
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not label.isascii() or not label.replace("-", "").isalnum():
            return False
        all_digits = label.isdigit()
    return not all_digits


def _ipv4(value: str) -> ipaddress.IPv4Address | None:
    parts = value.split(".")
    if len(parts) != 4:
        return None
    for part in parts:
        if not part or len(part) > 3 or not part.isascii() or not part.isdigit():
            return None
        if len(part) > 1 and part[0] == "0":
            return None
        if int(part) > 255:
            return None
    return ipaddress.IPv4Address(value)


def _ipv6(value: str, *, zone_allowed: bool) -> ipaddress.IPv6Address | None:
    address, percent, zone = value.partition("%")
    if percent and (not zone_allowed or not zone):
        return None
    if not address.isascii() or len(address) > 45:
        return None
    if "." in address:  # an embedded IPv4 part is dotted decimal without leading zeros
        head, _, tail = address.rpartition(":")
        if _ipv4(tail) is None:
            return None
        del head
    try:
        return ipaddress.IPv6Address(address)
    except ValueError:
        return None


def is_ip(value: str, version: int = 0) -> bool:
    """protovalidate's isIp(): IPv4 in dotted decimal, IPv6 (RFC 4291, with an optional zone)."""
    if version in (0, 4) and _ipv4(value) is not None:
        return True
    return version in (0, 6) and _ipv6(value, zone_allowed=True) is not None


def is_ip_prefix(value: str, version: int = 0, strict: bool = False) -> bool:
    """isIpPrefix(): an address, `/`, and a prefix length; strict wants the host bits zero."""
    address, slash, length = value.partition("/")
    if not slash or not length.isascii() or not length.isdigit():
        return False
    if len(length) > 1 and length[0] == "0":
        return False
    bits = int(length)
    parsed: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    if version in (0, 4):
        parsed = _ipv4(address)
    if parsed is None and version in (0, 6):
        parsed = _ipv6(address, zone_allowed=False)
    if parsed is None or bits > parsed.max_prefixlen:
        return False
    if not strict:
        return True
    host_bits = parsed.max_prefixlen - bits
    return int(parsed) & ((1 << host_bits) - 1) == 0


def is_host_and_port(value: str, port_required: bool) -> bool:
    """isHostAndPort(): a host name, IPv4 address or bracketed IPv6 address, then `:port`
    (0 to 65535, no leading zeros), which may be left out unless required."""
    if not value:
        return False
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return False
        host, rest = value[1:end], value[end + 1 :]
        if _ipv6(host, zone_allowed=True) is None:
            return False
        if not rest:
            return not port_required
        return rest[0] == ":" and _is_port(rest[1:])
    host, colon, port = value.rpartition(":")
    if not colon:
        return not port_required and (is_hostname(value) or _ipv4(value) is not None)
    return (is_hostname(host) or _ipv4(host) is not None) and _is_port(port)


def _is_port(text: str) -> bool:
    if not text or not text.isascii() or not text.isdigit():
        return False
    if len(text) > 1 and text[0] == "0":
        return False
    return int(text) <= 65535


def is_nan(value: float) -> bool:
    return math.isnan(value)


def is_inf(value: float, sign: int = 0) -> bool:
    if not math.isinf(value):
        return False
    return sign == 0 or (sign > 0) == (value > 0)


# protovalidate's isUri() and isUriRef(): RFC 3986, as the uri and uri_ref rules check it.
# RFC 3986 as written (protovalidate's definition), stricter than protoc-gen-validate's.
is_uri = uri.is_uri
is_uri_ref = uri.is_uri_ref


def get_field(message: Any, name: str) -> Any:
    """protovalidate's getField(message, name), for fields whose names CEL reserves (`in`)."""
    try:
        return getattr(message, name)
    except AttributeError:
        raise EvaluationError(f"no such field {name!r}") from None
