"""Example strings for the simple shapes of `pattern` rules, never a general RE2 inverter.

Understood: literals and escaped characters, `.`, classes (`[a-z0-9_]`, `[^,]`, `\\d`, `\\w`,
`\\s` and their negations), groups (plain, `(?:...)`, named), alternation (the first branch),
the quantifiers `* + ? {m} {m,} {m,n}` (greedy or lazy) and the anchors `^ $ \\A \\z` at the
ends. Anything else (Unicode classes, flags, word boundaries, backreferences) is refused:
`PatternShape.parse` returns None and the field needs an example from the user. Callers still
test every example against RE2, so an example that does not match is never used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, TypeAlias

# Characters tried, in order, where a class or `.` leaves the choice open.
_PREFERRED = "a0bxA_-. "
_CLASS_ESCAPES = {
    "d": "0123456789",
    "w": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    "s": " \t\n\r\f\v",
}
_CHARACTER_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_UNBOUNDED = -1


class _Literal(NamedTuple):
    text: str


class _Class(NamedTuple):
    """A set of characters: (first, last) ranges, possibly negated."""

    ranges: tuple[tuple[str, str], ...]
    negated: bool


class _Repeat(NamedTuple):
    node: Node
    low: int
    high: int  # _UNBOUNDED for no upper limit
    number: int  # in pattern order: which repeats a stretch applies to


class _Sequence(NamedTuple):
    nodes: tuple[Node, ...]


class _Choice(NamedTuple):
    branches: tuple[Node, ...]


Node: TypeAlias = "_Literal | _Class | _Repeat | _Sequence | _Choice"


class _Refused(Exception):
    """Syntax outside the simple shapes."""


class PatternShape:
    """A parsed simple pattern, able to spell strings it matches at several lengths."""

    def __init__(self, root: Node, repeats: int) -> None:
        self._root = root
        self.repeats = repeats

    @classmethod
    def parse(cls, pattern: str) -> PatternShape | None:
        parser = _Parser(pattern)
        try:
            root = parser.parse()
        except _Refused:
            return None
        return cls(root, parser.repeats)

    def example(self, stretch: dict[int, int] | None = None) -> str | None:
        """The shortest matching string, with repeat number i taken stretch[i] more times
        (within its bounds); None where a class has no character to offer."""
        try:
            return _spell(self._root, stretch or {})
        except _Refused:
            return None

    def examples(self, lengths: tuple[int, ...]) -> Iterator[str]:
        """Examples of the shortest length, then stretched towards each of `lengths`."""
        base = self.example()
        if base is None:
            return
        yield base
        for index in range(min(self.repeats, 4)):
            longer = self.example({index: 1})
            if longer is None or len(longer) == len(base):
                continue
            unit = len(longer) - len(base)
            for length in lengths:
                if length > len(base):
                    stretched = self.example({index: -(-(length - len(base)) // unit)})
                    if stretched is not None:
                        yield stretched


def _spell(node: Node, stretch: dict[int, int]) -> str:
    if isinstance(node, _Literal):
        return node.text
    if isinstance(node, _Class):
        return _pick(node)
    if isinstance(node, _Repeat):
        count = node.low + stretch.get(node.number, 0)
        if node.high != _UNBOUNDED:
            count = min(count, node.high)
        return "".join(_spell(node.node, stretch) for _ in range(count))
    if isinstance(node, _Sequence):
        return "".join(_spell(part, stretch) for part in node.nodes)
    return _spell(node.branches[0], stretch)


def _pick(node: _Class) -> str:
    def inside(char: str) -> bool:
        return any(first <= char <= last for first, last in node.ranges)

    if not node.negated:
        for char in _PREFERRED:
            if inside(char):
                return char
        if node.ranges:
            return node.ranges[0][0]
        raise _Refused
    for char in _PREFERRED:
        if not inside(char):
            return char
    raise _Refused


class _Parser:
    def __init__(self, pattern: str) -> None:
        self._text = pattern
        self._at = 0
        self.repeats = 0

    def parse(self) -> Node:
        node = self._alternation()
        if self._at != len(self._text):
            raise _Refused  # an unbalanced `)`
        return node

    def _peek(self) -> str:
        return self._text[self._at] if self._at < len(self._text) else ""

    def _next(self) -> str:
        char = self._peek()
        if not char:
            raise _Refused
        self._at += 1
        return char

    def _alternation(self) -> Node:
        branches = [self._sequence()]
        while self._peek() == "|":
            self._at += 1
            branches.append(self._sequence())
        return branches[0] if len(branches) == 1 else _Choice(tuple(branches))

    def _sequence(self) -> Node:
        nodes: list[Node] = []
        while self._peek() not in ("", "|", ")"):
            start = self._at
            atom = self._atom()
            if atom is None:  # an anchor
                if not (start == 0 or self._at == len(self._text) or self._peek() in "|)"):
                    raise _Refused  # an anchor inside the text cannot be spelled
                continue
            nodes.append(self._quantified(atom))
        return nodes[0] if len(nodes) == 1 else _Sequence(tuple(nodes))

    def _atom(self) -> Node | None:
        char = self._next()
        if char in "^$":
            return None
        if char == ".":
            return _Class((("\n", "\n"),), negated=True)
        if char == "[":
            return self._class()
        if char == "(":
            if self._peek() == "?":
                self._at += 1
                if self._text.startswith(":", self._at):
                    self._at += 1
                elif self._text.startswith("P<", self._at) or self._peek() == "<":
                    end = self._text.find(">", self._at)
                    if end < 0:
                        raise _Refused
                    self._at = end + 1
                else:
                    raise _Refused  # flags and lookarounds
            node = self._alternation()
            if self._next() != ")":
                raise _Refused
            return node
        if char == "\\":
            escaped = self._next()
            if escaped in "Az":
                return None
            found = self._escape_class(escaped)
            if found is not None:
                return found
            return _Literal(self._escaped_character(escaped))
        if char in "*+?{)":
            raise _Refused
        return _Literal(char)

    def _escape_class(self, escaped: str) -> _Class | None:
        members = _CLASS_ESCAPES.get(escaped.lower())
        if members is None:
            return None
        return _Class(tuple((char, char) for char in members), negated=escaped.isupper())

    def _escaped_character(self, escaped: str) -> str:
        if escaped in _CHARACTER_ESCAPES:
            return _CHARACTER_ESCAPES[escaped]
        if escaped == "x":
            digits = self._text[self._at : self._at + 2]
            if len(digits) != 2 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise _Refused
            self._at += 2
            return chr(int(digits, 16))
        if escaped.isalnum():
            raise _Refused  # \b, \p{...}, \1, \Q...: not simple shapes
        return escaped

    def _class(self) -> _Class:
        negated = self._peek() == "^"
        if negated:
            self._at += 1
        ranges: list[tuple[str, str]] = []
        first = True
        while True:
            char = self._next()
            if char == "]" and not first:
                break
            first = False
            if char == "[":
                raise _Refused  # [[:alpha:]] and friends
            if char == "\\":
                escaped = self._next()
                found = self._escape_class(escaped)
                if found is not None:
                    if found.negated:
                        raise _Refused
                    ranges.extend(found.ranges)
                    continue
                char = self._escaped_character(escaped)
            if self._peek() == "-" and self._text[self._at + 1 : self._at + 2] not in ("]", ""):
                self._at += 1
                last = self._next()
                if last == "\\":
                    last = self._escaped_character(self._next())
                if last < char:
                    raise _Refused
                ranges.append((char, last))
            else:
                ranges.append((char, char))
        return _Class(tuple(ranges), negated)

    def _quantified(self, atom: Node) -> Node:
        char = self._peek()
        if char not in ("*", "+", "?", "{"):
            return atom
        if char == "{":
            end = self._text.find("}", self._at)
            bounds = self._text[self._at + 1 : end] if end > 0 else ""
            low_text, comma, high_text = bounds.partition(",")
            if not low_text.isdigit() or not (high_text.isdigit() or not high_text):
                raise _Refused  # a `{` that starts no repeat count, which RE2 reads as itself
            low = int(low_text)
            high = int(high_text) if high_text else (_UNBOUNDED if comma else low)
            self._at = end + 1
        else:
            self._at += 1
            low, high = {"*": (0, _UNBOUNDED), "+": (1, _UNBOUNDED), "?": (0, 1)}[char]
        if self._peek() == "?":
            self._at += 1  # lazy: matches the same strings
        if self._peek() in ("*", "+", "?", "{"):
            raise _Refused
        node = _Repeat(atom, low, high, self.repeats)
        self.repeats += 1
        return node
