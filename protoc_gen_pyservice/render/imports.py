"""Import resolution for one output file: every module gets one local alias, fixed in advance."""

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from protoc_gen_pyservice.model import naming
from protoc_gen_pyservice.model.nodes import TypeRef


class ImportBlock(NamedTuple):
    """The sorted import lines of one generated module, by isort section."""

    stdlib: tuple[str, ...]
    third_party: tuple[str, ...]


class ModuleScope:
    """Local names of the `_pb2` modules one output file uses.

    Each module is imported as `import pkg.mod_pb2 as mod_pb2`. When two modules share a last
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

    def annotation(self, ref: TypeRef) -> str:
        """The type annotation for a message or enum; `Any` where no annotation can name it."""
        if any(naming.is_keyword(part) for part in ref.qualname.split(".")):
            return "Any"
        return self.local(ref)

    def needs_any(self, refs: Iterable[TypeRef]) -> bool:
        return any(self.annotation(ref) == "Any" for ref in refs)

    def import_lines(self) -> list[str]:
        lines = []
        for module, alias in self._aliases.items():
            if module == alias:
                lines.append(f"import {module}")
            else:
                lines.append(f"import {module} as {alias}")
        return lines


def import_block(
    stdlib: Iterable[str], third_party: Iterable[str], scope: ModuleScope
) -> ImportBlock:
    """Sort like isort's default profile: plain `import x` before `from x import y`."""
    return ImportBlock(
        stdlib=_sorted_section(stdlib),
        third_party=_sorted_section([*third_party, *scope.import_lines()]),
    )


def _sorted_section(lines: Iterable[str]) -> tuple[str, ...]:
    unique = set(lines)
    plain = sorted((line for line in unique if line.startswith("import ")), key=_module_key)
    from_ = sorted((line for line in unique if line.startswith("from ")), key=_module_key)
    return (*plain, *from_)


def _module_key(line: str) -> tuple[str, str]:
    module = line.split()[1]
    return (module.lower(), module)
