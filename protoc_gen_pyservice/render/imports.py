"""Import resolution for one output file: every module gets one local alias, fixed in advance.

The import block is written the way ruff's isort (default settings) and ruff format would write
it, so generated code passes whatever line length a project sets: plain `import x` before
`from x import y`, natural order, one statement per module, and any statement longer than 88
characters (ruff's default line length) exploded one name a line with a trailing comma, which
both tools keep as it is at any line length.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple, TypeVar

from protoc_gen_pyservice.model import naming
from protoc_gen_pyservice.model.nodes import TypeRef

# The shortest line length a project is likely to set: ruff's and black's default.
_SHORTEST_LINE = 88


class ImportBlock(NamedTuple):
    """The sorted import statements of one generated module, by isort section; a statement
    may span lines."""

    stdlib: tuple[str, ...]
    third_party: tuple[str, ...]


class Import(NamedTuple):
    """One name a module imports: `from module import name`, or `import module` without one."""

    module: str
    name: str = ""  # `name` or `name as alias`


class _Statement(NamedTuple):
    module: str
    names: tuple[str, ...]  # `name` or `name as alias`; empty for a plain `import module`


class ModuleScope:
    """Local names of the `_pb2` modules one output file uses.

    Each module is imported as `from pkg import mod_pb2`. When two modules share a last
    component, both use their whole dotted path joined by underscores instead; a remaining clash
    gets underscores appended. Decided once, before any template runs.
    """

    def __init__(self, modules: Iterable[str], own_module: str = "") -> None:
        self._own_module = own_module
        ordered = sorted(set(modules) - {own_module})
        short_counts: dict[str, int] = {}
        for module in ordered:
            short = module.rsplit(".", 1)[-1]
            short_counts[short] = short_counts.get(short, 0) + 1
        self._aliases: dict[str, str] = {}
        taken: set[str] = set()
        for module in ordered:
            short = module.rsplit(".", 1)[-1]
            alias = short if short_counts[short] == 1 else module.replace(".", "_")
            while alias in taken:
                alias += "_"
            taken.add(alias)
            self._aliases[module] = alias

    @property
    def aliases(self) -> Mapping[str, str]:
        return self._aliases

    def local(self, ref: TypeRef) -> str:
        """How the output file spells a message or enum: `user_pb2.UserUpdate.UpdateType`.

        protoc defines a message named like a keyword (`message lambda`) only through
        `globals()`, so such a part is reached with getattr.
        """
        expression = self._aliases[ref.module]
        for part in ref.qualname.split("."):
            if naming.is_keyword(part):
                expression = f'getattr({expression}, "{part}")'
            else:
                expression = f"{expression}.{part}"
        return expression

    def function(self, module: str, name: str) -> str:
        """A function of `module` as this file calls it: bare when it is this file's own."""
        if module == self._own_module:
            return name
        return f"{self._aliases[module]}.{name}"

    def imports(self) -> list[Import]:
        """`from pkg import mod_pb2 [as alias]` (or `import mod_pb2 [as alias]`) per module."""
        found = []
        for module, alias in self._aliases.items():
            package, _, name = module.rpartition(".")
            imported = name if alias == name else f"{name} as {alias}"
            found.append(Import(package, imported) if package else Import(imported))
        return found


class ImportTracker:
    """Names for one output module, asked for where they are used; its imports are exactly
    what was asked for.

    Aliases of `_pb2` modules depend on every module the file uses, so a view is built twice
    (see `resolved`): once to learn the modules, once with their aliases fixed.
    """

    def __init__(self, own_module: str = "", scope: ModuleScope | None = None) -> None:
        self._own_module = own_module
        self._scope = scope
        self.modules: set[str] = set()
        self._stdlib: set[Import] = set()
        self._third_party: set[Import] = set()

    def type(self, ref: TypeRef) -> str:
        """A message or enum as an expression: `user_pb2.User` (getattr for keyword parts)."""
        self._use_module(ref.module)
        return self._scope.local(ref) if self._scope else ref.qualname

    def annotation(self, ref: TypeRef) -> str:
        """The type annotation for a message or enum; `Any` where no annotation can name it."""
        if any(naming.is_keyword(part) for part in ref.qualname.split(".")):
            return self.stdlib("typing", "Any")
        return self.type(ref)

    def function(self, module: str, name: str) -> str:
        """A function of a generated module: bare when it is this module's own."""
        if module == self._own_module:
            return name
        self._use_module(module)
        return self._scope.function(module, name) if self._scope else name

    def stdlib(self, module: str, name: str) -> str:
        self._stdlib.add(Import(module, name))
        return name

    def third_party(self, module: str, name: str = "") -> str:
        """`import module` (returning `module`), or `from module import name` (`name`)."""
        self._third_party.add(Import(module, name))
        return name or module

    def block(self) -> ImportBlock:
        modules = self._scope.imports() if self._scope else []
        return ImportBlock(
            stdlib=_sorted_section(self._stdlib),
            third_party=_sorted_section([*self._third_party, *modules]),
        )

    def _use_module(self, module: str) -> None:
        if module != self._own_module:
            self.modules.add(module)


V = TypeVar("V")


def resolved(build: Callable[[ImportTracker], V], own_module: str = "") -> tuple[V, ImportBlock]:
    """The view `build` makes, with every name in it final, and the imports it needs."""
    learning = ImportTracker(own_module)
    build(learning)
    tracker = ImportTracker(own_module, ModuleScope(learning.modules, own_module))
    view = build(tracker)
    return view, tracker.block()


def _sorted_section(imports: Iterable[Import]) -> tuple[str, ...]:
    plain: set[_Statement] = set()
    merged: dict[str, set[str]] = {}  # `from m import a, b`: un-aliased names merge
    aliased: set[_Statement] = set()  # `from m import a as b` stays a statement of its own
    for item in imports:
        if not item.name:
            plain.add(_Statement(item.module, ()))
        elif " as " in item.name:
            aliased.add(_Statement(item.module, (item.name,)))
        else:
            merged.setdefault(item.module, set()).add(item.name)
    from_statements = [
        *aliased,
        *(
            _Statement(module, tuple(sorted(names, key=_member_key)))
            for module, names in merged.items()
        ),
    ]
    return tuple(
        f"import {s.module}" if not s.names else _from_text(s)
        for s in sorted([*plain, *from_statements], key=lambda s: statement_key(s.module, s.names))
    )


def _from_text(statement: _Statement) -> str:
    line = f"from {statement.module} import {', '.join(statement.names)}"
    if len(line) <= _SHORTEST_LINE:
        return line
    members = "".join(f"    {name},\n" for name in statement.names)
    return f"from {statement.module} import (\n{members})"


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """isort's natural order: digit runs compare as numbers (`v2` before `v10`)."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part
    )


def _member_key(name: str) -> tuple[object, ...]:
    """ruff's `order-by-type`: CONSTANTS, then Classes, then everything else; case-insensitive
    first, case-sensitive to break ties."""
    bare = name.split(" as ", 1)[0]
    if len(bare) > 1 and bare.isupper():
        kind = 0
    elif bare[:1].isupper():
        kind = 1
    else:
        kind = 2
    return (kind, _natural(bare.lower()), _natural(bare), name)


def statement_key(module: str, names: tuple[str, ...] = ()) -> tuple[object, ...]:
    """Where an import statement goes in its isort section: every `import module` (no names)
    before any `from module import names`, each kind by module, then by its first name."""
    first = _member_key(names[0]) if names else ()
    return (bool(names), _natural(module.lower()), _natural(module), first)
