"""Adding and dropping imports of a module the user owns, in place, with libcst.

An import goes where ruff's isort (default settings) would put it: into the `from module
import` statement of its module when there is one, else as a statement of its own, sorted into
its section (future, standard library, third party, first party, relative), a blank line
setting a new section apart. The rest of the import block stays as the user wrote it.
"""

import sys
from collections.abc import Sequence
from typing import NamedTuple

import libcst as cst
from protoc_gen_pyservice.render.imports import ImportTracker, statement_key


class _Binding(NamedTuple):
    """One name a fresh scaffold imports."""

    local: str
    module: str  # `from module import ...`, or the module of `import module`
    member: str  # `name` or `name as alias`; "" for `import module`


def update_imports(
    module: cst.Module,
    fresh: cst.Module,
    replaced_names: set[str],
    first_party: tuple[str, ...],
) -> tuple[cst.Module, list[str]]:
    """Import what the module now uses and the fresh scaffold imports, and drop imports of
    `replaced_names` nothing uses any more."""
    used = _used_names(module)
    bound = _bound_names(module)
    changes: list[str] = []
    body: list[cst.BaseStatement] = list(module.body)
    for name in sorted(replaced_names - used):
        if _drop_import(body, name):
            changes.append(f"dropped the import of {name}")
    for binding in _bindings(fresh):
        if binding.local in used and binding.local not in bound:
            _add_import(body, binding, first_party)
            bound.add(binding.local)
            changes.append(f"imported {binding.local}")
    return module.with_changes(body=tuple(body)), changes


def _bindings(fresh: cst.Module) -> list[_Binding]:
    found = []
    for line in fresh.body:
        if not isinstance(line, cst.SimpleStatementLine):
            continue
        for statement in line.body:
            if isinstance(statement, cst.Import):
                for alias in statement.names:
                    name = code_of(alias.name)
                    found.append(_Binding(local_name(alias), name, ""))
            elif isinstance(statement, cst.ImportFrom) and statement.module is not None:
                if isinstance(statement.names, cst.ImportStar):
                    continue
                source = code_of(statement.module)
                found.extend(
                    _Binding(local_name(alias), source, _member(alias)) for alias in statement.names
                )
    return found


def _member(alias: cst.ImportAlias) -> str:
    """`name`, or `name as alias`, as it follows `from module import`."""
    if alias.asname is None:
        return code_of(alias.name)
    return f"{code_of(alias.name)} as {local_name(alias)}"


def local_name(alias: cst.ImportAlias) -> str:
    """The name an import alias binds: `c` for `a.b as c`, `a` for `a.b`."""
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return code_of(alias.name).split(".")[0]


def code_of(node: cst.CSTNode) -> str:
    """The source text of one node, as libcst prints it."""
    return cst.Module(body=()).code_for_node(node)


def _bound_names(module: cst.Module) -> set[str]:
    """Names the module binds outside functions and classes, and the names of those."""
    names: set[str] = set()
    pending: list[cst.CSTNode] = list(module.body)
    while pending:
        node = pending.pop()
        if isinstance(node, cst.FunctionDef | cst.ClassDef):
            names.add(node.name.value)
            continue
        if isinstance(node, cst.ImportAlias):
            names.add(local_name(node))
        elif isinstance(node, cst.SimpleStatementLine):
            for statement in node.body:
                names.update(assigned_names(statement))
        pending.extend(node.children)
    return names


def _used_names(module: cst.Module) -> set[str]:
    """Names read anywhere in a module outside its import statements: what imports serve."""
    names: set[str] = set()
    pending: list[cst.CSTNode] = [module]
    while pending:
        node = pending.pop()
        if isinstance(node, cst.Name):
            names.add(node.value)
        else:
            pending.extend(_read_parts(node))
    return names


def _read_parts(node: cst.CSTNode) -> Sequence[cst.CSTNode]:
    """The parts of `node` whose names are read: not the names a statement binds or spells
    out (a def's, a parameter's, a keyword argument's, the attribute after a dot)."""
    if isinstance(node, cst.Import | cst.ImportFrom):
        return ()
    if isinstance(node, cst.Attribute | cst.Arg):
        return (node.value,)
    if isinstance(node, cst.Param):
        return [part for part in (node.annotation, node.default) if part is not None]
    if isinstance(node, cst.FunctionDef | cst.ClassDef):
        return [child for child in node.children if child is not node.name]
    return node.children


def _import_region(body: Sequence[cst.CSTNode]) -> list[int]:
    """Positions of the import statements at the head of the module (after its docstring)."""
    positions = []
    for position, node in enumerate(body):
        if _imports_of(node):
            positions.append(position)
        elif not (position == 0 and _is_docstring(node)):
            break
    return positions


def _imports_of(node: cst.CSTNode) -> list[cst.Import | cst.ImportFrom]:
    if not isinstance(node, cst.SimpleStatementLine):
        return []
    statements = [s for s in node.body if isinstance(s, cst.Import | cst.ImportFrom)]
    return statements if len(statements) == len(node.body) else []


def _is_docstring(node: cst.CSTNode) -> bool:
    return (
        isinstance(node, cst.SimpleStatementLine)
        and len(node.body) == 1
        and isinstance(node.body[0], cst.Expr)
        and isinstance(node.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _section(module: str, first_party: tuple[str, ...]) -> int:
    """isort's sections, in their order: future, standard library, third party, first party,
    then relative imports."""
    top = module.split(".")[0]
    if module.startswith("."):
        return 4
    if top == "__future__":
        return 0
    if top in sys.stdlib_module_names:
        return 1
    return 3 if top in first_party else 2


class _Placed(NamedTuple):
    position: int
    section: int
    key: tuple[object, ...]


def _placed(body: Sequence[cst.CSTNode], first_party: tuple[str, ...]) -> list[_Placed]:
    placed = []
    for position in _import_region(body):
        statement = _imports_of(body[position])[0]
        if isinstance(statement, cst.ImportFrom):
            module = "." * len(statement.relative) + (
                code_of(statement.module) if statement.module is not None else ""
            )
            names: tuple[str, ...] = (
                ("*",)
                if isinstance(statement.names, cst.ImportStar)
                else (_member(statement.names[0]),)
            )
        else:
            module, names = code_of(statement.names[0].name), ()
        key = statement_key(module, names)
        placed.append(_Placed(position, _section(module, first_party), key))
    return placed


def _add_import(
    body: list[cst.BaseStatement],
    binding: _Binding,
    first_party: tuple[str, ...],
) -> None:
    """Add `binding` where ruff's isort would have it: into an existing `from module import`
    statement when there is one without comments, else as a statement of its own, sorted into
    its section."""
    if binding.member and " as " not in binding.member and _merge_into_existing(body, binding):
        return
    tracker = ImportTracker()
    tracker.third_party(binding.module, binding.member)
    (text,) = tracker.block().third_party
    line = cst.parse_statement(text + "\n")
    section = _section(binding.module, first_party)
    key = statement_key(binding.module, (binding.member,) if binding.member else ())
    placed = _placed(body, first_party)
    same = [p for p in placed if p.section == section]
    before = [p for p in same if p.key < key]
    if before:
        body.insert(before[-1].position + 1, line)
        return
    following = same[:1] or [p for p in placed if p.section > section][:1]
    if following:
        position = following[0].position
        current = body[position]
        assert isinstance(current, cst.SimpleStatementLine)
        # The new statement takes over the blank lines (and any comment) above the one it now
        # precedes; a statement that starts a new section gets a blank line of its own.
        body[position] = current.with_changes(leading_lines=() if same else (cst.EmptyLine(),))
        body.insert(position, line.with_changes(leading_lines=current.leading_lines))
        return
    if placed:
        body.insert(placed[-1].position + 1, line.with_changes(leading_lines=(cst.EmptyLine(),)))
        return
    # The module's first import: after the docstring, set apart from what follows as ruff
    # format would (two blank lines before a def or class).
    start = int(bool(body) and _is_docstring(body[0]))
    first = body[start] if start < len(body) else None
    if (
        isinstance(first, cst.SimpleStatementLine | cst.BaseCompoundStatement)
        and not first.leading_lines
    ):
        blank = 2 if isinstance(first, cst.FunctionDef | cst.ClassDef) else 1
        body[start] = first.with_changes(leading_lines=(cst.EmptyLine(),) * blank)
    body.insert(start, line.with_changes(leading_lines=(cst.EmptyLine(),) * start))


def _merge_into_existing(body: list[cst.BaseStatement], binding: _Binding) -> bool:
    for position in _import_region(body):
        line = body[position]
        assert isinstance(line, cst.SimpleStatementLine)
        statement = line.body[0]
        if not (
            len(line.body) == 1
            and isinstance(statement, cst.ImportFrom)
            and statement.module is not None
            and not statement.relative
            and code_of(statement.module) == binding.module
            and not isinstance(statement.names, cst.ImportStar)
            and all(alias.asname is None for alias in statement.names)
            and "#" not in code_of(statement)
        ):
            continue
        tracker = ImportTracker()
        for alias in statement.names:
            tracker.third_party(binding.module, code_of(alias.name))
        tracker.third_party(binding.module, binding.member)
        (text,) = tracker.block().third_party
        merged = cst.parse_statement(text + "\n")
        assert isinstance(merged, cst.SimpleStatementLine)
        body[position] = line.with_changes(body=merged.body)
        return True
    return False


def _drop_import(body: list[cst.BaseStatement], name: str) -> bool:
    """Remove the import binding `name` from the head of the module; False if there is none."""
    for position in _import_region(body):
        line = body[position]
        assert isinstance(line, cst.SimpleStatementLine)
        (statement, *others) = line.body
        if others or not isinstance(statement, cst.Import | cst.ImportFrom):
            continue
        if isinstance(statement.names, cst.ImportStar):
            continue
        aliases = list(statement.names)
        kept = [alias for alias in aliases if local_name(alias) != name]
        if len(kept) == len(aliases):
            continue
        if kept:
            # The new last name takes the comma (or none) the last one had.
            kept[-1] = kept[-1].with_changes(comma=aliases[-1].comma)
            body[position] = line.with_changes(body=(statement.with_changes(names=kept),))
            return True
        del body[position]
        following = body[position] if position < len(body) else None
        if isinstance(following, cst.SimpleStatementLine) and not following.leading_lines:
            body[position] = following.with_changes(leading_lines=line.leading_lines)
        return True
    return False


def assigned_names(statement: cst.BaseSmallStatement) -> list[str]:
    """The plain names an assignment statement binds."""
    if isinstance(statement, cst.Assign):
        return [t.target.value for t in statement.targets if isinstance(t.target, cst.Name)]
    if isinstance(statement, cst.AnnAssign) and isinstance(statement.target, cst.Name):
        return [statement.target.value]
    return []
