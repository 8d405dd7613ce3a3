"""Every rule that turns a proto name into a Python name lives here."""

import builtins
import keyword
import re

_BUILTIN_NAMES = frozenset(dir(builtins))
_WORD_BOUNDARY = re.compile(
    r"""
    (?<=[a-z0-9])(?=[A-Z])      # getUser -> get|User
    | (?<=[A-Z])(?=[A-Z][a-z])  # HTTPRequest -> HTTP|Request
    """,
    re.VERBOSE,
)


def snake_case(name: str) -> str:
    """`GetUser` -> `get_user`, `HTTPRequest` -> `http_request`, `Get_User` -> `get_user`."""
    words = _WORD_BOUNDARY.sub("_", name).lower()
    return re.sub(r"_+", "_", words).strip("_") or "_"


def class_name(name: str) -> str:
    """CapWords for a generated class: `userService` -> `UserService`."""
    words = [word for word in snake_case(name).split("_") if word]
    return "".join(word[0].upper() + word[1:] for word in words) or "Service"


def attribute(name: str) -> str:
    """A name safe as a method, parameter or attribute: keywords get a trailing underscore.

    Builtins are fine as attributes (`self.type`), but not soft keywords used as statements.
    """
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{name}_"
    return name


def variable(name: str) -> str:
    """A name safe as a module-level or local variable: keywords and builtins are escaped."""
    if name in _BUILTIN_NAMES:
        return f"{name}_"
    return attribute(name)


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name` with underscores appended until it is not in `taken`; records it."""
    while name in taken:
        name = f"{name}_"
    taken.add(name)
    return name


def unique_class(name: str, taken: set[str]) -> str:
    """Like unique(), numbering instead (`FooBase2`) so the name stays CapWords."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}{number}"
    taken.add(candidate)
    return candidate


def pb2_module(proto_path: str) -> str:
    """The module protoc's Python generator writes for a file: `a/b-c.proto` -> `a.b_c_pb2`."""
    return _module_stem(proto_path) + "_pb2"


def output_path(proto_path: str, suffix: str) -> str:
    """The file written beside protoc's `_pb2.py`: `a/b-c.proto` -> `a/b_c_{suffix}.py`."""
    return _module_stem(proto_path).replace(".", "/") + f"_{suffix}.py"


def output_module(proto_path: str, suffix: str) -> str:
    """The module name of an output file: (`a/b-c.proto`, `validate`) -> `a.b_c_validate`."""
    return _module_stem(proto_path) + f"_{suffix}"


def _module_stem(proto_path: str) -> str:
    stem = proto_path.removesuffix(".proto")
    return stem.replace("-", "_").replace("/", ".")
