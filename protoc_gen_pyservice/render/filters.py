"""The small filters templates may call; registered once in environment.py."""

import math
import textwrap

from protoc_gen_pyservice.model import naming
from protoc_gen_pyservice.model.nodes import Doc

# Generated code is formatted for this line length (ruff's setting in pyproject.toml).
LINE_LENGTH = 100


def pyrepr(value: object) -> str:
    """A Python literal for a value; rule values reach generated code only through this.

    Written the way ruff-format normalises literals: strings and bytes take double quotes
    unless single quotes need fewer escapes; exponents carry no `+`.
    """
    if isinstance(value, str):
        return _quoted([_escape_char(char) for char in value], "")
    if isinstance(value, bytes):
        return _quoted([_escape_byte(byte) for byte in value], "b")
    if isinstance(value, tuple):
        items = [pyrepr(item) for item in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, float):
        if not math.isfinite(value):
            return f'float("{value}")'
        return repr(value).replace("e+", "e")
    return repr(value)


def _quoted(pieces: list[str], prefix: str) -> str:
    quote = "'" if pieces.count('"') > pieces.count("'") else '"'
    body = "".join("\\" + piece if piece == quote else piece for piece in pieces)
    return f"{prefix}{quote}{body}{quote}"


_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if char.isprintable():
        return char
    return char.encode("unicode_escape").decode("ascii")


def _escape_byte(byte: int) -> str:
    char = chr(byte)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if 0x20 <= byte < 0x7F:
        return char
    return f"\\x{byte:02x}"


def docstring(doc: Doc, indent: int, fallback: str = "") -> str:
    """A triple-quoted docstring for a proto comment, safe whatever the comment contains.

    Output is already in ruff-format's canonical shape: stripped, dedented, closing quotes on
    their own line when multi-line, long lines wrapped to fit the line length.
    """
    lines = list(doc.lines) if doc else [fallback]
    lines = [_escape(line) for line in _dedent_body(lines)]
    width = LINE_LENGTH - indent
    wrapped: list[str] = []
    for number, line in enumerate(lines):
        limit = width - (3 if number == 0 else 0) - (3 if len(lines) == 1 else 0)
        wrapped.extend(_wrap(line, limit))
    if len(wrapped) == 1:
        return f'"""{_guard_edges(wrapped[0])}"""'
    pad = " " * indent
    body = "\n".join(f"{pad}{line}" if line else "" for line in wrapped[1:])
    return f'"""{_guard_start(wrapped[0])}\n{body}\n{pad}"""'


def _dedent_body(lines: list[str]) -> list[str]:
    first, rest = lines[0].strip(), textwrap.dedent("\n".join(lines[1:])).split("\n")
    return [first, *rest] if len(lines) > 1 else [first]


def _escape(line: str) -> str:
    line = line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in line
    )


def _guard_start(text: str) -> str:
    # A leading quote would merge with the opening quotes.
    return "\\" + text if text.startswith('"') else text


def _guard_edges(text: str) -> str:
    text = _guard_start(text)
    # A trailing quote (or escaping backslash) would merge with the closing quotes.
    return text[:-1] + '\\"' if text.endswith('"') and not text.endswith('\\"') else text


def _wrap(line: str, width: int) -> list[str]:
    if len(line) <= width:
        return [line]
    leading = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(
        line,
        width=width,
        initial_indent="",
        subsequent_indent=leading,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [line]


def subscript(head: str, items: list[str], indent: int, lead: str = "", trailer: str = "") -> str:
    """`lead + head[a, b] + trailer` laid out as ruff-format would at this indent."""
    flat = f"{lead}{head}[{', '.join(items)}]{trailer}"
    if indent + len(flat) <= LINE_LENGTH:
        return flat
    pad = " " * (indent + 4)
    inner = ", ".join(items)
    if indent + 4 + len(inner) <= LINE_LENGTH:
        return f"{lead}{head}[\n{pad}{inner}\n{' ' * indent}]{trailer}"
    lines = "".join(f"{pad}{item},\n" for item in items)
    return f"{lead}{head}[\n{lines}{' ' * indent}]{trailer}"


def call(function: str, arguments: list[str], indent: int, lead: str = "") -> str:
    """`lead + function(arguments)`, exploded with a magic trailing comma when too long."""
    flat = f"{lead}{function}({', '.join(arguments)})"
    if indent + len(flat) <= LINE_LENGTH:
        return flat
    pad = " " * (indent + 4)
    lines = "".join(f"{pad}{argument},\n" for argument in arguments)
    return f"{lead}{function}(\n{lines}{' ' * indent})"


def pyset(values: tuple[object, ...], indent: int, lead: str = "") -> str:
    """`lead + frozenset({...})` of literals, exploded as ruff-format would when too long."""
    items = [pyrepr(value) for value in values]
    flat = f"{lead}frozenset({{{', '.join(items)}}})"
    if indent + len(flat) <= LINE_LENGTH:
        return flat
    pad = " " * (indent + 8)
    lines = "".join(f"{pad}{item},\n" for item in items)
    inner = " " * (indent + 4)
    return f"{lead}frozenset(\n{inner}{{\n{lines}{inner}}}\n{' ' * indent})"


def field_access(owner: str, name: str) -> str:
    """`owner.name`, or getattr() where the field name is a Python keyword (`class`)."""
    if naming.is_keyword(name):
        return f'getattr({owner}, "{name}")'
    return f"{owner}.{name}"


def fit(statement: str, indent: int) -> str:
    """A one-line statement laid out as ruff-format would at column `indent` if too long.

    The shapes generated code uses: `if A and B:` splits at `and`; `if not (A or B):` splits at
    `or`; `if not (X):` puts X on a line of its own; a statement ending in a call puts the
    call's arguments on their own line (one per line, with a trailing comma, when even that is
    too long). Anything else stays on one line, as ruff-format leaves it.
    """
    if indent + len(statement) <= LINE_LENGTH:
        return statement
    # Continuation lines are relative to the statement: templates indent whole blocks.
    pad, end = " " * 4, ""
    trailer = ":" if statement.endswith(":") else ""
    body = statement.removesuffix(":") if trailer else statement
    if trailer and body.startswith("if "):
        conditions = _split_top_level(body.removeprefix("if "), " and ")
        if len(conditions) > 1:
            lines = [conditions[0], *(f"and {condition}" for condition in conditions[1:])]
            return "if (\n" + "".join(f"{pad}{line}\n" for line in lines) + f"{end}){trailer}"
    negated = "if not ("
    if body.startswith(negated) and body.endswith(")"):
        inner = body[len(negated) : -1]
        if _closing_paren(body, len(negated) - 1) == len(body) - 1:
            parts = _split_top_level(inner, " or ")
            lines = [parts[0], *(f"or {part}" for part in parts[1:])]
            return negated + "\n" + "".join(f"{pad}{line}\n" for line in lines) + f"{end}){trailer}"
    if body.endswith(")"):
        opening = _opening_paren(body)
        arguments = body[opening + 1 : -1]
        if opening > 0 and arguments:
            head = body[: opening + 1]
            if indent + 4 + len(arguments) <= LINE_LENGTH:
                return f"{head}\n{pad}{arguments}\n{end}){trailer}"
            parts = _split_top_level(arguments, ", ")
            if len(parts) == 1 and " for " in arguments:
                # A lone generator argument takes no trailing comma (it would not parse).
                return f"{head}\n{pad}{arguments}\n{end}){trailer}"
            exploded = "".join(f"{pad}{part},\n" for part in parts)
            return f"{head}\n{exploded}{end}){trailer}"
    return statement


def _opening_paren(text: str) -> int:
    """The index of the `(` that the final `)` of `text` closes."""
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        char = text[index]
        if char == ")":
            depth += 1
        elif char == "(":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _closing_paren(text: str, opening: int) -> int:
    depth = 0
    for index in range(opening, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _split_top_level(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside brackets and string literals."""
    parts: list[str] = []
    depth, start, quote = 0, 0, ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, index):
            parts.append(text[start:index])
            start = index + len(separator)
            index = start
            continue
        index += 1
    parts.append(text[start:])
    return parts
