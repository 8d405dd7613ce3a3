"""Validation at run time: the API generated validators plug into, and the checks they share.

Generated `x_validate.py` modules hold the per-message checks as straight-line code; this
module finds them (`x_pb2` -> `x_validate`), collects their violations and converts them to
error details. Nothing here runs per field except the format checks generated code calls.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
import string
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import re2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from protoc_gen_pyservice.runtime.bounds import MAX_LISTED_VIOLATIONS
from protoc_gen_pyservice.runtime.errors import NO_ERROR_MAP, ErrorMap, InvalidArgument


class Violation(NamedTuple):
    """One broken rule: where (`users[2].email`), which rule (`string.email`) and why."""

    field_path: str
    rule_id: str
    message: str
    for_key: bool = False  # the violation is about a map key, not its value
    # protovalidate's rule path, relative to buf.validate.FieldRules (`string.min_len`,
    # `repeated.items.cel[0]`) or MessageRules (`cel[0]`); empty for protoc-gen-validate rules.
    rule: str = ""


class ValidationError(ValueError):
    """Raised by validate(): every violation of the message, in field order."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.field_path}: {v.message}" for v in violations))
        self.violations = violations


class MissingValidatorError(LookupError):
    """A message type has validation rules but its generated module cannot be imported."""


Validator = Callable[[Any, str, list[Violation]], None]

# Generated modules register here by message full name: {full_name: validator}.
REGISTRY_NAME = "VALIDATORS"
_by_class: dict[type[Message], Validator | None] = {}


def collect_violations(message: Message) -> list[Violation]:
    """Every violation of `message` and the messages inside it; empty when it is valid."""
    found: list[Violation] = []
    # validator_for(), inlined: this is the per-call path, and a call costs a tenth of it.
    try:
        validator = _by_class[type(message)]
    except KeyError:
        validator = _find_validator(type(message))
    if validator is not None:
        validator(message, "", found)
    return found


def validate(message: Message) -> None:
    """Raise ValidationError listing every violation unless `message` is valid."""
    found = collect_violations(message)
    if found:
        raise ValidationError(found)


def validator_for(message_class: type[Message]) -> Validator | None:
    """The generated validator of a message type, or None when the type has no rules."""
    try:
        return _by_class[message_class]
    except KeyError:
        return _find_validator(message_class)


def validate_into(message: Message, prefix: str, found: list[Violation]) -> None:
    """Validate an embedded message of a type whose module is not known at generation time."""
    validator = validator_for(type(message))
    if validator is not None:
        validator(message, prefix, found)


def _find_validator(message_class: type[Message]) -> Validator | None:
    descriptor = message_class.DESCRIPTOR
    module_name = message_class.__module__
    validator: Validator | None = None
    if module_name.endswith("_pb2"):
        validate_module = module_name[: -len("_pb2")] + "_validate"
        try:
            module = importlib.import_module(validate_module)
        except ModuleNotFoundError as error:
            if error.name != validate_module or has_rules(descriptor):
                raise MissingValidatorError(
                    f"{descriptor.full_name} has validation rules, but {validate_module} cannot "
                    f"be imported: generate it with protoc-gen-pyservice ({error})"
                ) from error
        else:
            validator = getattr(module, REGISTRY_NAME, {}).get(descriptor.full_name)
    elif has_rules(descriptor):
        raise MissingValidatorError(
            f"{descriptor.full_name} has validation rules, but its module {module_name} is "
            "not a protoc _pb2 module, so no generated validator can be found"
        )
    _by_class[message_class] = validator
    return validator


# Option field numbers of protoc-gen-validate's extensions (validate.proto).
_VALIDATE_EXTENSION = 1071
_has_rules_cache: dict[str, bool] = {}


def has_rules(descriptor: Any) -> bool:
    """Whether validate rules appear anywhere in a message type (its fields, oneofs, nested
    message fields), read from the raw options so validate_pb2 need not be importable."""
    cached = _has_rules_cache.get(descriptor.full_name)
    if cached is not None:
        return cached
    _has_rules_cache[descriptor.full_name] = False  # breaks cycles: recursion adds nothing new
    found = any(_has_extension(oneof) for oneof in descriptor.oneofs) or any(
        _has_extension(field)
        or (
            field.type == FieldDescriptor.TYPE_MESSAGE
            and field.message_type is not None
            and has_rules(field.message_type)
        )
        for field in descriptor.fields
    )
    _has_rules_cache[descriptor.full_name] = found
    return found


def _has_extension(element: Any) -> bool:
    if not element.has_options:
        return False
    return _VALIDATE_EXTENSION in _field_numbers(element.GetOptions().SerializeToString())


def _field_numbers(data: bytes) -> set[int]:
    """The top-level field numbers present in serialized protobuf bytes."""
    numbers: set[int] = set()
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        numbers.add(key >> 3)
        wire_type = key & 7
        if wire_type == 0:
            _, position = _varint(data, position)
        elif wire_type == 1:
            position += 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            position += length
        elif wire_type == 5:
            position += 4
        else:  # groups: options never use them
            break
    return numbers


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


# Formats. Each follows protoc-gen-validate's reference (Go) implementation.

_HOST_LABEL = re.compile(r"[a-z0-9-]{1,63}")
# Accepts exactly the ASCII addresses the full check below accepts: a local part of at most 64
# characters with none of `@ <>()[],;:"`, then host-name labels. Anything else takes the long way.
# A label: 1 to 63 of [A-Za-z0-9-], not starting or ending with a hyphen. Possessive repeats:
# a label or a local part never gives characters back, so the match cannot backtrack.
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}+(?<!-)"
plain_email = re.compile(
    rf"(?=.{{1,254}}\Z)[!#-\'*-+\--9=?A-Z^-~]{{1,64}}+@{_LABEL}(?:\.{_LABEL})*+\.?", re.DOTALL
).fullmatch
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEADER_NAME = re.compile(r":?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+")
_HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
_HEADER_LOOSE = re.compile(r"[^\x00\x0a\x0d]*")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_URI_FORBIDDEN = re.compile(r"[\x00-\x20\x7f<>\"{}|\\^`]")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f][0-9A-Fa-f])")  # spelled out: {2} runs slower
_IP_FUTURE = re.compile(r"v[0-9A-Fa-f]++\..+")
# The characters whose NFKC form holds one of `/?#@:` (the same in Unicode 14 to 15.1):
# urlsplit() refuses an authority with any of them, as they would move its delimiters.
_NFKC_DELIMITERS = re.compile(
    "[\u2047-\u2049\u2100\u2101\u2105\u2106\u2a74\ufe13\ufe16\ufe55\ufe56\ufe5f\ufe6b"
    "\uff03\uff0f\uff1a\uff1f\uff20]"
)

# Standard limits, checked before anything that reads the whole value. Lengths in characters
# bound octets from below, so a value too long in characters is too long in octets.
_MAX_ADDRESS = 254  # octets of an email address: RFC 5321's 256 for a path, less its <>
_MAX_MAILBOX = 998  # characters of a `Name <address>` form: RFC 5322's longest header line
_MAX_HOSTNAME = 253  # characters of a host name (RFC 1035's 255 octets on the wire)
_MAX_IPV4 = len("255.255.255.255")
_MAX_IPV6 = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")  # before any %zone
# RFC 5322 atext, and `.` for the obsolete phrase syntax names like `John Q. Public` use.
_ATOM = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~.")
# Control characters (tab aside): never in a mailbox, whether quoted, commented or not.
_MAILBOX_CONTROLS = frozenset(map(chr, [*range(0x09), *range(0x0A, 0x20), 0x7F]))


class PatternError(ValueError):
    """A `pattern` rule that RE2 does not accept. The plugin rejects such patterns, so only
    code not generated from a checked proto meets this."""


_PATTERN_OPTIONS = re2.Options()
# The error is raised; RE2 would also log it to stderr through absl.
_PATTERN_OPTIONS.log_errors = False


def pattern(expression: str | bytes) -> Callable[[Any], bool]:
    """A `found_in(text)` test for a validate `pattern` rule: RE2 (linear time, whatever the
    pattern or input), searched anywhere in the text as protoc-gen-validate specifies."""
    try:
        compiled: Any = re2.compile(expression, options=_PATTERN_OPTIONS)
    except re2.error as error:
        reason = error.args[0] if error.args else ""
        if isinstance(reason, bytes):  # google-re2 passes RE2's own message on as bytes
            reason = reason.decode("utf-8", "backslashreplace")
        raise PatternError(f"pattern {expression!r} is not valid RE2: {reason}") from None
    regexp = getattr(compiled, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if regexp is None or anchor is None:  # another google-re2 layout: the slower public API
        return lambda text: compiled.search(text) is not None
    match: Callable[[Any, bytes, int, int], list[tuple[int, int]]] = regexp.Match

    # google-re2's search() wraps this call in a generator and a match object; one test per
    # field and call only needs whether the first span exists.
    if isinstance(expression, bytes):

        def found_in_bytes(data: bytes) -> bool:
            return match(anchor, data, 0, len(data))[0][0] != -1

        return found_in_bytes

    def found_in(text: str) -> bool:
        data = text.encode()
        return match(anchor, data, 0, len(data))[0][0] != -1

    return found_in


def is_hostname(value: str) -> bool:
    """RFC 1034 host name: dot-separated labels of letters, digits and inner hyphens."""
    if len(value) > _MAX_HOSTNAME:
        return False
    host = value.lower().removesuffix(".")
    for label in host.split("."):
        if not _HOST_LABEL.fullmatch(label) or label[0] == "-" or label[-1] == "-":
            return False
    return True


def is_email(value: str) -> bool:
    """RFC 5322 address (a `Name <addr>` form is reduced to its address), local part at most
    64 octets, whole address at most 254, domain a valid host name."""
    return plain_email(value) is not None or is_unusual_email(value)


def is_unusual_email(value: str) -> bool:
    """is_email() for what plain_email() does not accept outright: display names, non-ASCII
    local parts, rejects. Generated code calls plain_email() first, then this."""
    if len(value) > _MAX_MAILBOX or "@" not in value:
        return False
    address = _angle_address(value) if "<" in value else value
    if address is None or len(address.encode()) > _MAX_ADDRESS:
        return False
    local, at, domain = address.partition("@")
    if not at or not local or len(local.encode()) > 64 or any(c in local for c in ' <>()[],;:"'):
        return False
    return is_hostname(domain)


def _angle_address(value: str) -> str | None:
    """The address of a `display name <address>` mailbox (RFC 5322 name-addr), or None.

    The display name is words (atoms, which may hold dots and non-ASCII text, and quoted
    strings) and comments; after `>` only spaces and comments may follow. Comments nest, so
    this counts their depth instead of recursing, over at most _MAX_MAILBOX characters.
    """
    opening = _phrase_end(value, 0, words=True)
    if opening < 0 or opening == len(value):
        return None
    closing = value.find(">", opening + 1)
    if closing < 0 or _phrase_end(value, closing + 1, words=False) != len(value):
        return None
    return value[opening + 1 : closing].strip(" \t")


def _phrase_end(text: str, start: int, *, words: bool) -> int:
    """The index of the first `<` outside quotes and comments from `start` on (len(text) if
    there is none), or -1 where a character is out of place or a quote or comment is open.
    Outside them only spaces, tabs and, where `words`, atom characters may appear."""
    depth = 0  # of comment nesting
    quoted = escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if char in _MAILBOX_CONTROLS:
            return -1
        if escaped:  # a quoted pair: the character stands for itself
            escaped = False
        elif quoted or depth:
            if char == "\\":
                escaped = True
            elif quoted:
                quoted = char != '"'
            elif char in "()":
                depth += 1 if char == "(" else -1
        elif char == "(":
            depth = 1
        elif char == '"' and words:
            quoted = True
        elif char == "<":
            return index
        elif char not in " \t" and not (words and (char in _ATOM or not char.isascii())):
            return -1
    return -1 if quoted or depth or escaped else len(text)


def is_ip(value: str) -> bool:
    return is_ipv4(value) or is_ipv6(value)


def is_ipv4(value: str) -> bool:
    if len(value) > _MAX_IPV4:
        return False
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def is_ipv6(value: str) -> bool:
    """An IPv6 address, optionally with a `%zone` (RFC 4007): any text but `%` and `/`."""
    address, percent, zone = value.partition("%")
    if len(address) > _MAX_IPV6 or (percent and (not zone or "%" in zone or "/" in zone)):
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def is_address(value: str) -> bool:
    return is_ip(value) or is_hostname(value)


def is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None


def is_uri(value: str) -> bool:
    """An absolute URI (RFC 3986): a scheme, then no characters URIs cannot carry."""
    if not is_uri_ref(value):
        return False
    scheme, colon, _ = value.partition(":")
    return bool(colon) and _URI_SCHEME.fullmatch(scheme) is not None


def is_uri_ref(value: str) -> bool:
    """A URI or relative reference (RFC 3986).

    Beyond the characters, this checks the authority as urllib.parse.urlsplit() and its
    `port` would (brackets hold an IP literal, the port is a number to 65535, no character
    turns into a delimiter under NFKC), without calling it: it keeps its last 128 inputs,
    hostile ones included, and walks a scheme in Python.
    """
    if _URI_FORBIDDEN.search(value) or _PERCENT.search(value):
        return False
    scheme, colon, rest = value.partition(":")
    has_scheme = bool(colon) and _URI_SCHEME.fullmatch(scheme) is not None
    # A colon in the first path segment must end a scheme (RFC 3986 path-noscheme).
    if colon and not has_scheme and _delimiter(value, 0) > len(scheme):
        return False
    return _is_authority(rest if has_scheme else value)


def _delimiter(text: str, start: int) -> int:
    """Where the first of `/?#` is from `start` on, or len(text): three memchr scans, several
    times faster than a character class."""
    ends = [text.find(delimiter, start) for delimiter in "/?#"]
    return min((end for end in ends if end >= 0), default=len(text))


def _is_authority(hierarchy: str) -> bool:
    """Whether the `//authority` a URI's hierarchical part starts with, if any, is sound."""
    if not hierarchy.startswith("//"):
        return True
    authority = hierarchy[2 : _delimiter(hierarchy, 2)]
    if ("[" in authority) != ("]" in authority):
        return False
    if "[" in authority:
        literal = authority.partition("[")[2].partition("]")[0]
        if not (_IP_FUTURE.fullmatch(literal) if literal[:1] == "v" else is_ipv6(literal)):
            return False
    if not authority.isascii() and _NFKC_DELIMITERS.search(authority):
        return False
    host = authority.rpartition("@")[2]
    if "[" in host:
        port = host.partition("[")[2].partition("]")[2].partition(":")[2]
    else:
        port = host.partition(":")[2]
    # Leading zeros are allowed, so strip them before the length bound and int().
    digits = port.lstrip("0")
    return not port or (
        port.isascii()
        and len(digits) <= 5
        and (digits.isdigit() or not digits)
        and int(digits or "0") <= 65535
    )


def is_header_name(value: str, strict: bool = True) -> bool:
    pattern = _HEADER_NAME if strict else _HEADER_LOOSE
    return pattern.fullmatch(value) is not None


def is_header_value(value: str, strict: bool = True) -> bool:
    pattern = _HEADER_VALUE if strict else _HEADER_LOOSE
    return pattern.fullmatch(value) is not None


def is_ip_bytes(value: bytes) -> bool:
    return len(value) in (4, 16)


def key_text(key: object) -> str:
    """A map key as it appears in a field path: `labels["k"]`, `by_id[7]`, `flags[true]`."""
    if isinstance(key, str):
        return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def prefix_paths(found: list[Violation], start: int, prefix: str, field: str, key: object) -> None:
    """Complete the paths of the violations an item of `field` (at index or map key `key`)
    reported from `start` on: `users[2].` + `email`."""
    item = f"{prefix}{field}[{key_text(key)}]"
    for index in range(start, len(found)):
        violation = found[index]
        # A message's own rules (protovalidate) name the message itself: no trailing dot.
        path = f"{item}.{violation.field_path}" if violation.field_path else item
        found[index] = violation._replace(field_path=path)


def duration_nanos(value: Any) -> int:
    """A Duration's or Timestamp's value in nanoseconds (since the epoch, for Timestamps)."""
    return int(value.seconds) * 1_000_000_000 + int(value.nanos)


def now_nanos() -> int:
    """The clock, read at call time by lt_now, gt_now and within."""
    return time.time_ns()


# Conversions to error details.


_NOT_REASON = re.compile(r"[^A-Z0-9]+")


def violation_reason(rule_id: str) -> str:
    """A rule id as a BadRequest field violation's `reason`, which google.rpc specifies as
    `[A-Z][A-Z0-9_]+[A-Z0-9]` of at most 63 characters: `string.email` -> `STRING_EMAIL`,
    `int32.gte_lte` -> `INT32_GTE_LTE`. protovalidate's custom rules may use any id (the
    expression itself, for `cel_expression`): other characters become `_`, an id not
    starting with a letter gets `RULE_` before it, one too short `_RULE` after it."""
    reason = _NOT_REASON.sub("_", rule_id.upper()).strip("_")
    if not reason[:1].isalpha():
        reason = "RULE_" + reason
    if len(reason) < 3:
        reason += "_RULE"
    return reason[:63].rstrip("_")


def to_bad_request(violations: Iterable[Violation]) -> Message:
    """A google.rpc.BadRequest listing every violation: the field path, the message and, as
    the reason, the rule id (see violation_reason)."""
    from google.rpc import error_details_pb2

    bad_request: Message = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=violation.field_path,
                description=violation.message,
                reason=violation_reason(violation.rule_id),
            )
            for violation in violations
        ]
    )
    return bad_request


_PATH_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[("(?:[^"\\]|\\.)*"|[^\]]*)\]')


def to_protovalidate_violations(descriptor: Any, violations: Iterable[Violation]) -> Message:
    """A buf.validate.Violations (the detail protovalidate users send) for violations of a
    message of type `descriptor`: each path becomes FieldPath elements with numbers and
    types, read back from the descriptors."""
    from buf.validate import validate_pb2

    result: Any = validate_pb2.Violations()
    rules_descriptor = validate_pb2.FieldRules.DESCRIPTOR
    for violation in violations:
        item = result.violations.add(
            rule_id=violation.rule_id, message=violation.message, for_key=violation.for_key
        )
        _fill_path(item.field, descriptor, violation.field_path)
        if violation.rule:  # message-level rules have none, as in protovalidate
            _fill_path(item.rule, rules_descriptor, violation.rule)
    return result  # type: ignore[no-any-return]


def _fill_path(target: Any, descriptor: Any, path: str) -> None:
    """Append to `target.elements` the elements of a field path like `a.b[2].c["k"]`."""
    current = descriptor
    field: Any = None
    for match in _PATH_PART.finditer(path):
        name, subscript = match.group(1), match.group(2)
        if name is None and "." in subscript and not subscript.startswith('"'):
            name = f"[{subscript}]"  # an extension: `[pkg.name]`
        if name is not None:
            if current is None:
                return
            if name.startswith("["):
                try:
                    field = current.file.pool.FindExtensionByName(name[1:-1])
                except KeyError:  # an extension this process never imported: path ends here
                    return
            else:
                field = current.fields_by_name.get(name)
            if field is None and name in current.oneofs_by_name:
                target.elements.add(field_name=name)  # a oneof: protovalidate names it alone
                return
            if field is None:
                return
            element = target.elements.add(
                field_number=field.number, field_name=field.name, field_type=field.type
            )
            entry = field.message_type if field.message_type is not None else None
            if entry is not None and entry.GetOptions().map_entry:
                element.key_type = entry.fields_by_name["key"].type
                element.value_type = entry.fields_by_name["value"].type
            current = entry
            continue
        if field is None or not target.elements:
            return
        element = target.elements[-1]
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key_field = entry.fields_by_name["key"]
            value_field = entry.fields_by_name["value"]
            if subscript.startswith('"'):
                element.string_key = subscript[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            elif subscript in ("true", "false"):
                element.bool_key = subscript == "true"
            elif key_field.type in (
                FieldDescriptor.TYPE_UINT32,
                FieldDescriptor.TYPE_UINT64,
                FieldDescriptor.TYPE_FIXED32,
                FieldDescriptor.TYPE_FIXED64,
            ):
                element.uint_key = int(subscript)
            else:
                element.int_key = int(subscript)
            current = value_field.message_type
        else:
            element.index = int(subscript)
            current = field.message_type


def fill_field_violations(violations: Iterable[Violation], target: Any) -> Any:
    """Fill a message shaped like common.v1.ValidationError (repeated `field_violations` with
    `field` and `description`) and return it."""
    for violation in violations:
        target.field_violations.add(field=violation.field_path, description=violation.message)
    return target


def invalid_request(
    request: Message, violations: list[Violation], errors: ErrorMap = NO_ERROR_MAP
) -> InvalidArgument:
    """INVALID_ARGUMENT naming every violation, with a google.rpc.BadRequest detail (and the
    ErrorMap's validation detail, such as common.v1.ValidationError, when it names one): what
    a server answers for an invalid request, and what a validating client raises for one."""
    summary = "; ".join(f"{v.field_path}: {v.message}" for v in violations[:5])
    if len(violations) > 5:
        summary += f"; and {len(violations) - 5} more"
    # Thousands of violations must not outgrow the trailers: list the first ones, count the rest.
    listed = violations[:MAX_LISTED_VIOLATIONS]
    bad_request: Any = to_bad_request(listed)
    omitted = len(violations) - len(listed)
    if omitted:
        bad_request.field_violations.add(description=f"and {omitted} more violations")
    details = [bad_request]
    if any(violation.rule for violation in listed):
        details.append(to_protovalidate_violations(request.DESCRIPTOR, listed))
    if errors.validation_detail is not None:
        details.append(fill_field_violations(listed, errors.validation_detail()))
    return InvalidArgument(f"invalid {request.DESCRIPTOR.full_name}: {summary}", details)
