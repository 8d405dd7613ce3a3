"""Every rule that turns a proto name into a Python name lives here.

The reserved words are fixed lists, not questions to the running interpreter: the plugin's
output must be byte-identical whichever Python 3.11-3.14 runs it, and `keyword.softkwlist`
gained `type` in 3.12, while `dir(builtins)` gained names in 3.13, lacks `exit`, `help` and
friends under `python -S`, has `WindowsError` only on Windows and grows with what extension
modules leave there (pybind11's `__pybind11_internals_...__`).

Only hard keywords are escaped. Soft keywords (`match`, `case`, `type`, `_`) are keywords only
at the start of their own statements; as method, parameter, attribute or variable names they
are ordinary identifiers (`def match(self)`, `self.case`, `type = 1`), so renaming them would
only make the generated API differ from the proto for nothing.

The runtime needs none of these rules: it never turns a proto name into a Python name (it
reads protoc's own attributes and the names generated code registers), so nothing is shared.
"""

import re

# keyword.kwlist, the same in Python 3.11, 3.12, 3.13 and 3.14.
HARD_KEYWORDS = frozenset(
    [
        "False",
        "None",
        "True",
        "and",
        "as",
        "assert",
        "async",
        "await",
        "break",
        "class",
        "continue",
        "def",
        "del",
        "elif",
        "else",
        "except",
        "finally",
        "for",
        "from",
        "global",
        "if",
        "import",
        "in",
        "is",
        "lambda",
        "nonlocal",
        "not",
        "or",
        "pass",
        "raise",
        "return",
        "try",
        "while",
        "with",
        "yield",
    ]
)
# keyword.softkwlist of Python 3.14 (3.11 lacks `type`): legal names, never escaped.
SOFT_KEYWORDS = frozenset(["_", "case", "match", "type"])
# dir(builtins) of Python 3.11 to 3.14 on any platform, with the names `site` adds.
BUILTIN_NAMES = frozenset(
    [
        "ArithmeticError",
        "AssertionError",
        "AttributeError",
        "BaseException",
        "BaseExceptionGroup",
        "BlockingIOError",
        "BrokenPipeError",
        "BufferError",
        "BytesWarning",
        "ChildProcessError",
        "ConnectionAbortedError",
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "DeprecationWarning",
        "EOFError",
        "Ellipsis",
        "EncodingWarning",
        "EnvironmentError",
        "Exception",
        "ExceptionGroup",
        "False",
        "FileExistsError",
        "FileNotFoundError",
        "FloatingPointError",
        "FutureWarning",
        "GeneratorExit",
        "IOError",
        "ImportError",
        "ImportWarning",
        "IndentationError",
        "IndexError",
        "InterruptedError",
        "IsADirectoryError",
        "KeyError",
        "KeyboardInterrupt",
        "LookupError",
        "MemoryError",
        "ModuleNotFoundError",
        "NameError",
        "None",
        "NotADirectoryError",
        "NotImplemented",
        "NotImplementedError",
        "OSError",
        "OverflowError",
        "PendingDeprecationWarning",
        "PermissionError",
        "ProcessLookupError",
        "PythonFinalizationError",
        "RecursionError",
        "ReferenceError",
        "ResourceWarning",
        "RuntimeError",
        "RuntimeWarning",
        "StopAsyncIteration",
        "StopIteration",
        "SyntaxError",
        "SyntaxWarning",
        "SystemError",
        "SystemExit",
        "TabError",
        "TimeoutError",
        "True",
        "TypeError",
        "UnboundLocalError",
        "UnicodeDecodeError",
        "UnicodeEncodeError",
        "UnicodeError",
        "UnicodeTranslateError",
        "UnicodeWarning",
        "UserWarning",
        "ValueError",
        "Warning",
        "WindowsError",
        "ZeroDivisionError",
        "_IncompleteInputError",
        "__build_class__",
        "__debug__",
        "__doc__",
        "__import__",
        "__loader__",
        "__name__",
        "__package__",
        "__spec__",
        "abs",
        "aiter",
        "all",
        "anext",
        "any",
        "ascii",
        "bin",
        "bool",
        "breakpoint",
        "bytearray",
        "bytes",
        "callable",
        "chr",
        "classmethod",
        "compile",
        "complex",
        "copyright",
        "credits",
        "delattr",
        "dict",
        "dir",
        "divmod",
        "enumerate",
        "eval",
        "exec",
        "exit",
        "filter",
        "float",
        "format",
        "frozenset",
        "getattr",
        "globals",
        "hasattr",
        "hash",
        "help",
        "hex",
        "id",
        "input",
        "int",
        "isinstance",
        "issubclass",
        "iter",
        "len",
        "license",
        "list",
        "locals",
        "map",
        "max",
        "memoryview",
        "min",
        "next",
        "object",
        "oct",
        "open",
        "ord",
        "pow",
        "print",
        "property",
        "quit",
        "range",
        "repr",
        "reversed",
        "round",
        "set",
        "setattr",
        "slice",
        "sorted",
        "staticmethod",
        "str",
        "sum",
        "super",
        "tuple",
        "type",
        "vars",
        "zip",
    ]
)
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


def is_keyword(name: str) -> bool:
    """Whether `name` cannot be a Python identifier at all: reach it with getattr()."""
    return name in HARD_KEYWORDS


def attribute(name: str) -> str:
    """A name safe as a method, parameter or attribute: keywords get a trailing underscore.

    Builtins (`self.type`) and soft keywords (`def match(self)`) are fine as attributes.
    """
    if name in HARD_KEYWORDS:
        return f"{name}_"
    return name


def variable(name: str) -> str:
    """A name safe as a module-level or local variable: keywords and builtins are escaped."""
    if name in BUILTIN_NAMES:
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
