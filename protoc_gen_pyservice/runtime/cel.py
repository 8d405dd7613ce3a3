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
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import re2

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
_NANOS = 1_000_000_000
# Timestamps span 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_TIMESTAMP_MIN = -62_135_596_800 * _NANOS
_TIMESTAMP_MAX = 253_402_300_799 * _NANOS + _NANOS - 1
# Durations are int64 nanoseconds, about 292 years either way.
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
    if -_DURATION_MAX <= nanos <= _DURATION_MAX:
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


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_DURATION_UNITS = {
    "h": 3600 * _NANOS,
    "m": 60 * _NANOS,
    "s": _NANOS,
    "ms": 1_000_000,
    "us": 1_000,
    "µs": 1_000,
    "ns": 1,
}


def parse_duration(text: str) -> Duration:
    """`duration("1h30m")`: Go's duration syntax, which CEL uses."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
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


_TIMESTAMP_TEXT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
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
    nanos = int((fraction or "0").ljust(9, "0"))
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


def timestamp_part(value: int, part: str) -> int:
    """getFullYear() and friends, in UTC."""
    seconds, nanos = divmod(value, _NANOS)
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        seconds=seconds
    )
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
        # int64 range in doubles: [-2^63, 2^63), since 2^63 - 1 is not a double.
        if not -(2.0**63) <= value < 2.0**63:
            raise EvaluationError("double out of int64 range")
        return int(value)
    if isinstance(value, str):
        try:
            return int64(int(value, 10)) if value.strip() == value else _bad_int(value)
        except ValueError:
            raise EvaluationError(f"cannot convert {value!r} to int") from None
    raise EvaluationError(f"no such overload: int({type(value).__name__})")


def _bad_int(value: str) -> int:
    raise EvaluationError(f"cannot convert {value!r} to int")


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
        if not value.isdigit() or not value.isascii():
            raise EvaluationError(f"cannot convert {value!r} to uint")
        return uint64(int(value))
    raise EvaluationError(f"no such overload: uint({type(value).__name__})")


def to_double(value: Any) -> float:
    if isinstance(value, bool):
        raise EvaluationError("no such overload: double(bool)")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise EvaluationError(f"cannot convert {value!r} to double") from None
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
    """A double as CEL's string() writes it (Go's strconv 'g'-style shortest form)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = exponent[0] if exponent[0] in "+-" else "+"
        digits = exponent.lstrip("+-").rjust(2, "0")
        text = f"{mantissa}e{sign}{digits}"
    return text


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
    if key in values and not _bool_int_confusion(values, key):
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
    count = 0
    for value in values:
        if test(value):
            count += 1
            if count > 1:
                return False
    return count == 1


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
    if verb == "s":
        return _format_s(value)
    if verb == "d":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EvaluationError("format: %d needs an integer")
        if isinstance(value, float):
            if math.isnan(value) or math.isinf(value):
                return format_double(value)
            raise EvaluationError("format: %d needs an integer")
        return str(int(value))
    if verb in "fe":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EvaluationError(f"format: %{verb} needs a number")
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            return format_double(number)
        digits = 6 if precision is None else precision
        return f"{number:.{digits}{verb}}"
    if verb in "xX":
        if isinstance(value, str | bytes):
            data = value.encode() if isinstance(value, str) else value
            text = data.hex()
        elif isinstance(value, int) and not isinstance(value, bool):
            text = format(int(value), "x") if value >= 0 else "-" + format(-int(value), "x")
        else:
            raise EvaluationError(f"format: %{verb} needs an integer, string or bytes")
        return text.upper() if verb == "X" else text
    if verb in "ob":
        if isinstance(value, bool) or not isinstance(value, int):
            raise EvaluationError(f"format: %{verb} needs an integer")
        sign = "-" if value < 0 else ""
        return sign + format(abs(int(value)), verb)
    raise EvaluationError(f"format: unknown verb %{verb}")


def _format_s(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_format_s(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_format_s(k)}: {_format_s(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float):
        return format_double(value)
    return to_string(value) if isinstance(value, str | int | bool) else str(value)


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


def get_field(message: Any, name: str) -> Any:
    """protovalidate's getField(message, name), for fields whose names CEL reserves (`in`)."""
    try:
        return getattr(message, name)
    except AttributeError:
        raise EvaluationError(f"no such field {name!r}") from None
