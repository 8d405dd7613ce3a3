"""Bringing a module the user owns up to date with a fresh scaffold, in place, with libcst.

What the fresh module has and the user's lacks is added: a stub method or the tests of each RPC
that has none, annotations naming a request or response type the proto no longer uses, the
valid-request builder and invalid cases a test of an RPC whose request type changed uses (where
spelled as scaffold writes them), and the imports those need. Nothing else changes: libcst
reproduces every untouched byte, so the user's bodies, comments and layout survive. What cannot
be decided safely is left as it is and reported: a method or test whose RPC went away, an RPC
whose streaming kind changed, an annotation or testing name scaffold cannot rewrite, an RPC
whose method may come from a parent class scaffold cannot read.
"""

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import libcst as cst
from protoc_gen_pyservice.cli import import_edits
from protoc_gen_pyservice.cli.import_edits import assigned_names, code_of, local_name
from protoc_gen_pyservice.model.build import CLIENT_RESERVED
from protoc_gen_pyservice.render.scaffold import (
    UNIMPLEMENTED_ATTRIBUTE,
    Group,
    RpcCall,
    SupportModule,
)

# The parameter a handler takes its request(s) in, by whether the client streams.
_REQUEST_PARAMETERS = frozenset({"request", "request_iterator"})
# Containers UNIMPLEMENTED_RPCS may be written with; anything else in it is not read.
_LITERAL_CONTAINERS = frozenset({"frozenset", "set", "tuple", "list"})
_ITERATOR_ANNOTATIONS = frozenset({"AsyncIterator", "AsyncGenerator", "AsyncIterable"})
# Bases a class may have besides the generated one that define no handler.
_METHODLESS_BASES = frozenset({"object", "Generic", "Protocol"})
# The names a generated testing module defines per request type, by prefix.
_TESTING_PREFIXES = ("valid_", "INVALID_")


class MergeError(Exception):
    """A module that cannot be updated: it does not parse."""


class Merged(NamedTuple):
    text: str
    changes: tuple[str, ...]  # what was done, one phrase each: "added stub get_user"
    warnings: tuple[str, ...]  # what the user should look at


class Implementation(NamedTuple):
    """The class of a module that derives from the generated base class."""

    name: str
    # Names defined in the class body and in the bodies of its parents defined in the module.
    methods: frozenset[str]
    unimplemented: frozenset[str]  # proto names in UNIMPLEMENTED_RPCS
    # Its other parents, defined elsewhere: a handler may come from them, unseen.
    other_bases: tuple[str, ...]


def parse(source: str) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        # libcst's message often has a position of its own, the token's, and the error's
        # line and column may be those of the next line: say one position, the token's.
        position = re.match(r"^.*error at (\d+):(\d+): (.*)$", error.message, re.DOTALL)
        line, column, reason = (
            position.groups()
            if position
            else (error.editor_line, error.editor_column, error.message)
        )
        raise MergeError(f"cannot be parsed: line {line}, column {column}: {reason}") from None


def find_implementation(module: cst.Module, base_class: str) -> Implementation | None:
    """The first top-level class deriving from `base_class` (by its last name, through an
    import alias or a module-level assignment as well), or None."""
    found = _find_class(module, base_class)
    if found is None:
        return None
    listed, _ = _listed_unimplemented(found)
    inherited, other_bases = _parents(module, found, base_class)
    return Implementation(
        name=found.name.value,
        methods=frozenset(_defined_names(_class_body(found)) | inherited),
        unimplemented=listed,
        other_bases=other_bases,
    )


def base_classes(module: cst.Module) -> frozenset[str]:
    """What the module's top-level classes derive from, spelled in full through the module's
    imports and assignments where they tell (`user.v1.user_service.UserServiceBase`), else as
    written."""
    imports = _imported_names(module)
    assigned = _assigned_bases(module)
    found = set()
    for node in module.body:
        if not isinstance(node, cst.ClassDef):
            continue
        for base in node.bases:
            code = code_of(base.value)
            if isinstance(base.value, cst.Name):
                code = assigned.get(code, code)
            root, dot, rest = code.partition(".")
            found.add(imports.get(root, root) + dot + rest)
    return frozenset(found)


def _assigned_bases(module: cst.Module) -> dict[str, str]:
    """Module-level assignments of a dotted name to a name: `Base = m.ShopBase`."""
    assigned = {}
    for line in module.body:
        if not isinstance(line, cst.SimpleStatementLine):
            continue
        for statement in line.body:
            if isinstance(statement, cst.Assign) and _is_dotted(statement.value):
                for name in assigned_names(statement):
                    assigned[name] = code_of(statement.value)
    return assigned


def update_implementation(
    source: str, fresh: str, groups: Sequence[Group], base_class: str
) -> Merged:
    """The user's implementation module `source` with what the fresh scaffold `fresh` adds."""
    module, fresh_module = parse(source), parse(fresh)
    target = _find_class(module, base_class)
    if target is None:
        return Merged(
            source, (), (f"no class derives from {base_class}: nothing added to this module",)
        )
    if not isinstance(target.body, cst.IndentedBlock):
        return Merged(source, (), (f"{target.name.value}'s body is on one line: left as it is",))
    fresh_class = _find_class(fresh_module, base_class)
    assert fresh_class is not None, "a fresh scaffold always has its class"
    fresh_methods = _functions(_class_body(fresh_class))
    listed, listed_warnings = _listed_unimplemented(target)
    class_name = target.name.value
    changes: list[str] = []
    warnings = list(listed_warnings)
    replaced_names: set[str] = set()
    imports, fresh_imports = _imported_names(module), _imported_names(fresh_module)
    body: list[cst.BaseStatement] = list(target.body.body)
    for index, node in enumerate(body):
        if not isinstance(node, cst.FunctionDef) or node.name.value not in fresh_methods:
            continue
        fresh_method = fresh_methods[node.name.value]
        retyped = _retype_handler(node, fresh_method)
        if retyped.kind_changed:
            warnings.append(
                f"{class_name}.{node.name.value}: the RPC's streaming kind changed; change the "
                f"method to match {base_class}.{node.name.value} by hand"
            )
            continue
        if retyped.node is not node:
            body[index] = retyped.node
            replaced_names |= retyped.replaced_names
            changes.append(f"retyped {node.name.value}")
        warnings.extend(
            f"{class_name}.{node.name.value}: the RPC's types changed; change {what} to "
            f"{annotation} by hand"
            for what, annotation in _stale_annotations(
                retyped.node, fresh_method, imports, fresh_imports
            )
        )
    inherited, other_bases = _parents(module, target, base_class)
    wanted = []
    for group in groups:
        if group.rpc in listed or any(name in inherited for name in group.names):
            continue
        missing = [name for name in group.names if name not in _defined_names(body)]
        if other_bases and len(missing) == len(group.names):
            # The method may come from a parent scaffold cannot read: a stub would shadow it.
            warnings.extend(
                f"{class_name} has other base classes ({', '.join(other_bases)}); add {name} "
                f"yourself or list {group.rpc!r} in {UNIMPLEMENTED_ATTRIBUTE}"
                for name in missing
            )
            continue
        wanted.append(group)
    for name in _insert_missing(body, wanted, fresh_methods):
        changes.append(f"added stub {name}")
    warnings.extend(_leftovers(class_name, body, groups, listed))
    updated_class = target.with_changes(body=target.body.with_changes(body=tuple(body)))
    updated = module.deep_replace(target, updated_class)
    assert isinstance(updated, cst.Module)
    updated, import_changes = import_edits.update_imports(updated, fresh_module, replaced_names, ())
    return Merged(updated.code, (*changes, *import_changes), tuple(warnings))


def update_tests(
    source: str,
    fresh: str,
    groups: Sequence[Group],
    first_party: Iterable[str],
    support: SupportModule,
) -> Merged:
    """The user's test module `source` with the tests of every RPC that has none of its tests
    (by function name) added from `fresh`. `first_party`: top-level package names isort puts
    in the first-party section (the implementation's). Tests that no longer fit the proto
    (`support` says what it has) are reported; a builder or cases reference spelled as
    scaffold writes it, of an RPC whose request type changed, is rewritten."""
    module, fresh_module = parse(source), parse(fresh)
    body: list[cst.BaseStatement] = list(module.body)
    fresh_functions = _functions(fresh_module.body)
    checked = _TestCheck(module, fresh_module, groups, support)
    changes: list[str] = []
    for index, node in enumerate(body):
        if isinstance(node, cst.FunctionDef):
            updated = checked.function(node, fresh_functions.get(node.name.value))
            if updated is not node:
                body[index] = updated
                changes.append(f"updated {node.name.value} for the new request type")
    added = _insert_missing(body, groups, fresh_functions)
    changes.extend(f"added {name}" for name in added)
    updated_module = module.with_changes(body=tuple(body))
    updated_module, import_changes = import_edits.update_imports(
        updated_module, fresh_module, checked.replaced_names, tuple(first_party)
    )
    return Merged(
        updated_module.code, (*changes, *import_changes), (*checked.imports(), *checked.warnings)
    )


class _TestCheck:
    """What in a test module's functions no longer fits the proto: calls of client methods
    that are gone or stream differently, and testing-module names that are gone."""

    def __init__(
        self,
        module: cst.Module,
        fresh: cst.Module,
        groups: Sequence[Group],
        support: SupportModule,
    ) -> None:
        self.support = support
        self.rpcs = {rpc.client_name: rpc for rpc in support.rpcs}
        self.by_test = {
            name: rpc
            for group in groups
            for rpc in support.rpcs
            if rpc.rpc == group.rpc
            for name in group.names
        }
        imports = _imported_names(module)
        # Local names the module reaches the testing module by; scaffold's own spelling.
        self.testing = _locals_of(imports, support.testing_module)
        self.own_spelling = _locals_of(_imported_names(fresh), support.testing_module)
        self.direct = {
            local: full.rpartition(".")[2]
            for local, full in imports.items()
            if full.rpartition(".")[0] == support.testing_module
        }
        self.warnings: list[str] = []
        self.replaced_names: set[str] = set()

    def imports(self) -> list[str]:
        return [
            f"imports {name} from {self.support.testing_module}, which no longer defines it "
            "(its request type changed?)"
            for name in sorted(set(self.direct.values()))
            if name.startswith(_TESTING_PREFIXES) and name not in self.support.defined
        ]

    def function(self, node: cst.FunctionDef, fresh: cst.FunctionDef | None) -> cst.FunctionDef:
        """`node`, with the stale references scaffold wrote rewritten; warnings recorded."""
        test = node.name.value
        rpc = self.by_test.get(test)
        replacements: dict[cst.CSTNode, cst.CSTNode] = {}
        walked = list(_walk_with_parents(node, None))
        gone = [
            method
            for child, _ in walked
            if isinstance(child, cst.Call) and (method := self._gone_method(child))
        ]
        if gone:
            # Its RPC went away: what else it uses of that RPC is gone too, which says nothing
            # more.
            self.warnings.extend(
                f"{test} calls client.{method}, which the client no longer has (its RPC "
                "removed or renamed?); change or remove the test by hand"
                for method in dict.fromkeys(gone)
            )
            return node
        for child, parent in walked:
            if isinstance(child, cst.Call):
                self._check_kind(test, child, parent, node)
            if not (
                isinstance(child, cst.Attribute)
                and isinstance(child.value, cst.Name)
                and child.value.value in self.testing
            ):
                continue
            attribute = child.attr.value
            if not attribute.startswith(_TESTING_PREFIXES) or attribute in self.support.defined:
                continue
            wanted = self._replacement(rpc, child, parent, fresh)
            if wanted is None:
                self.warnings.append(
                    f"{test} uses {child.value.value}.{attribute}, which "
                    f"{self.support.testing_module} no longer defines (the RPC's request type "
                    "changed?); change it by hand"
                )
            else:
                replacements[child.attr] = cst.Name(wanted)
        if not replacements:
            return node
        updated = node
        for old, new in replacements.items():
            replaced = updated.deep_replace(old, new)
            assert isinstance(replaced, cst.FunctionDef)
            updated = replaced
        if fresh is not None:
            updated = self._retype_parameters(updated, fresh)
        return updated

    def _replacement(
        self,
        rpc: RpcCall | None,
        reference: cst.Attribute,
        parent: cst.CSTNode | None,
        fresh: cst.FunctionDef | None,
    ) -> str | None:
        """The name scaffold would write for `reference` now, when it is spelled as scaffold
        writes it in a test of an RPC the proto still has: `<testing>.valid_x()` called with
        nothing, or `<testing>.INVALID_X` as it is."""
        if rpc is None or fresh is None:
            return None
        assert isinstance(reference.value, cst.Name)
        if reference.value.value not in self.own_spelling:
            return None
        attribute = reference.attr.value
        if attribute.startswith("valid_"):
            called = isinstance(parent, cst.Call) and parent.func is reference and not parent.args
            wanted = rpc.builder if called else None
        else:
            wanted = rpc.cases
        fresh_names = {
            child.attr.value
            for child in _walk(fresh)
            if isinstance(child, cst.Attribute) and child.attr.value.startswith(_TESTING_PREFIXES)
        }
        return wanted if wanted in fresh_names else None

    def _retype_parameters(self, node: cst.FunctionDef, fresh: cst.FunctionDef) -> cst.FunctionDef:
        """The parameters' message types made the fresh test's (`case: InvalidCase[...]`)."""
        fresh_params = {param.name.value: param for param in fresh.params.params}
        params = []
        for param in node.params.params:
            fresh_param = fresh_params.get(param.name.value)
            if param.annotation is not None and fresh_param and fresh_param.annotation:
                retyped = _retyped(param.annotation.annotation, fresh_param.annotation.annotation)
                if retyped is not None:
                    self.replaced_names |= _names(param.annotation.annotation)
                    param = param.with_changes(
                        annotation=param.annotation.with_changes(annotation=retyped)
                    )
            params.append(param)
        return node.with_changes(params=node.params.with_changes(params=tuple(params)))

    def _gone_method(self, call: cst.Call) -> str:
        """The method of a call `client.<method>(...)` the client no longer has, else ""."""
        method = _client_method(call)
        if not method or method in self.rpcs or method.startswith("_") or method in CLIENT_RESERVED:
            return ""
        return method

    def _check_kind(
        self, test: str, call: cst.Call, parent: cst.CSTNode | None, function: cst.FunctionDef
    ) -> None:
        """A call of `client.<method>(...)` made as the RPC no longer streams."""
        rpc = self.rpcs.get(_client_method(call))
        if rpc is None:
            return
        requests = _streams_requests(call)
        responses = _streams_responses(call, parent, function)
        if (requests is not None and requests != rpc.client_streaming) or (
            responses is not None and responses != rpc.server_streaming
        ):
            self.warnings.append(
                f"{test}: the streaming kind of {rpc.rpc} changed; change its call of "
                f"client.{rpc.client_name} by hand"
            )


def _client_method(call: cst.Call) -> str:
    """`method` of a call `client.method(...)` (the fixture scaffold's tests take), else ""."""
    if (
        isinstance(call.func, cst.Attribute)
        and isinstance(call.func.value, cst.Name)
        and call.func.value.value == "client"
    ):
        return call.func.attr.value
    return ""


def _streams_requests(call: cst.Call) -> bool | None:
    """Whether the call sends a stream (`iter([...])`) or one built request, if it tells."""
    if not call.args:
        return None
    sent = call.args[0].value
    if isinstance(sent, cst.Call) and isinstance(sent.func, cst.Name) and sent.func.value == "iter":
        return True
    if isinstance(sent, cst.Call) and _last_name(sent.func).startswith(("valid_", "build")):
        return False
    return None


def _streams_responses(
    call: cst.Call, parent: cst.CSTNode | None, function: cst.FunctionDef
) -> bool | None:
    """Whether the call's answer is awaited (one response) or iterated (a stream), if it
    tells: `await client.x(...)`, `async for _ in client.x(...)`, or `responses = client.x(...)`
    read with anext() or `async for`."""
    if isinstance(parent, cst.Await):
        return False
    if isinstance(parent, cst.For) and parent.iter is call:
        return True
    if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
        target = parent.targets[0].target
        if isinstance(target, cst.Name):
            for child in _walk(function):
                if isinstance(child, cst.For) and _is_name(child.iter, target.value):
                    return True
                if (
                    isinstance(child, cst.Call)
                    and _is_name(child.func, "anext")
                    and child.args
                    and _is_name(child.args[0].value, target.value)
                ):
                    return True
    return None


def _is_name(node: cst.CSTNode, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def _walk_with_parents(
    node: cst.CSTNode, parent: cst.CSTNode | None
) -> Iterable[tuple[cst.CSTNode, cst.CSTNode | None]]:
    yield node, parent
    for child in node.children:
        yield from _walk_with_parents(child, node)


def _imported_names(module: cst.Module) -> dict[str, str]:
    """What each name the module's top-level imports bind stands for, in full:
    `from a.b import c as d` binds d to `a.b.c`; `import a.b` binds a to `a`."""
    names: dict[str, str] = {}
    for line in module.body:
        if not isinstance(line, cst.SimpleStatementLine):
            continue
        for statement in line.body:
            if isinstance(statement, cst.ImportFrom) and not isinstance(
                statement.names, cst.ImportStar
            ):
                if statement.relative or statement.module is None:
                    continue
                source = code_of(statement.module)
                for alias in statement.names:
                    names[local_name(alias)] = f"{source}.{code_of(alias.name)}"
            elif isinstance(statement, cst.Import):
                for alias in statement.names:
                    full = code_of(alias.name)
                    local = local_name(alias)
                    names[local] = full if alias.asname is not None else local
    return names


def _locals_of(imports: dict[str, str], module: str) -> set[str]:
    return {local for local, full in imports.items() if full == module}


# The class and its body


def _find_class(module: cst.Module, base_class: str) -> cst.ClassDef | None:
    aliases = _base_aliases(module)
    for node in module.body:
        if isinstance(node, cst.ClassDef) and any(
            _base_name(base.value, aliases) == base_class for base in node.bases
        ):
            return node
    return None


def _base_aliases(module: cst.Module) -> dict[str, str]:
    """The last name each import alias and module-level assignment of a name stands for:
    `from m import ShopBase as Base` and `Base = m.ShopBase` both give Base -> ShopBase."""
    aliases = {
        local: full.rpartition(".")[2]
        for local, full in _imported_names(module).items()
        if local != full
    }
    for name, value in _assigned_bases(module).items():
        aliases[name] = value.rpartition(".")[2]
    return aliases


def _base_name(expression: cst.BaseExpression, aliases: dict[str, str]) -> str:
    name = _last_name(expression)
    return aliases.get(name, name) if isinstance(expression, cst.Name) else name


def _parents(
    module: cst.Module, node: cst.ClassDef, base_class: str
) -> tuple[set[str], tuple[str, ...]]:
    """The names the class's parents other than `base_class` define, as far as they are
    classes of this module (and their parents, in turn), and the parents defined elsewhere."""
    aliases = _base_aliases(module)
    classes = {n.name.value: n for n in module.body if isinstance(n, cst.ClassDef)}
    inherited: set[str] = set()
    elsewhere: list[str] = []
    pending = [base.value for base in node.bases]
    seen: set[str] = set()
    while pending:
        expression = pending.pop(0)
        name = _base_name(expression, aliases)
        if isinstance(expression, cst.Subscript):
            name = _last_name(expression.value)
        code = code_of(expression)
        if name == base_class or name in _METHODLESS_BASES or code in seen:
            continue
        seen.add(code)
        local = classes.get(code) if isinstance(expression, cst.Name) else None
        if local is None or local is node:
            elsewhere.append(code)
            continue
        inherited |= _defined_names(_class_body(local))
        pending.extend(base.value for base in local.bases)
    return inherited, tuple(elsewhere)


def _last_name(expression: cst.BaseExpression) -> str:
    if isinstance(expression, cst.Attribute):
        return expression.attr.value
    if isinstance(expression, cst.Name):
        return expression.value
    return ""


def _class_body(node: cst.ClassDef) -> Sequence[cst.BaseStatement | cst.BaseSmallStatement]:
    return node.body.body


def _functions(body: Iterable[cst.CSTNode]) -> dict[str, cst.FunctionDef]:
    return {node.name.value: node for node in body if isinstance(node, cst.FunctionDef)}


def _defined_names(body: Iterable[cst.CSTNode]) -> set[str]:
    """Names a class or module body defines itself: functions, classes and assignments."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, cst.FunctionDef | cst.ClassDef):
            names.add(node.name.value)
        elif isinstance(node, cst.SimpleStatementLine):
            for statement in node.body:
                names.update(assigned_names(statement))
    return names


def _listed_unimplemented(node: cst.ClassDef) -> tuple[frozenset[str], tuple[str, ...]]:
    """The proto names in the class's UNIMPLEMENTED_RPCS, and a warning if it holds more than
    string literals (which are all that is read)."""
    for line in _class_body(node):
        if not isinstance(line, cst.SimpleStatementLine):
            continue
        for statement in line.body:
            if UNIMPLEMENTED_ATTRIBUTE in assigned_names(statement):
                assert isinstance(statement, cst.Assign | cst.AnnAssign)
                return _string_literals(statement.value, node.name.value)
    return frozenset(), ()


def _string_literals(
    value: cst.BaseExpression | None, class_name: str
) -> tuple[frozenset[str], tuple[str, ...]]:
    if value is None:
        return frozenset(), ()
    strings: set[str] = set()
    unread = False
    for child in _walk(value):
        if isinstance(child, cst.SimpleString):
            text = child.evaluated_value
            strings.add(text if isinstance(text, str) else text.decode())
        elif isinstance(child, cst.Name):
            unread = unread or child.value not in _LITERAL_CONTAINERS
        elif isinstance(child, cst.FormattedString | cst.BinaryOperation):
            unread = True
    warnings = (
        (
            f"{class_name}.{UNIMPLEMENTED_ATTRIBUTE}: only its string literals are read "
            "(proto names, such as frozenset({'GetUser'}))",
        )
        if unread
        else ()
    )
    return frozenset(strings), warnings


def _walk(node: cst.CSTNode) -> Iterable[cst.CSTNode]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _insert_missing(
    body: list[cst.BaseStatement],
    groups: Sequence[Group],
    fresh: dict[str, cst.FunctionDef],
) -> list[str]:
    """Insert, in place, the fresh functions of each group none of whose names `body` defines:
    after the functions of the nearest earlier group present, else before those of the nearest
    later one, else at the end. Returns the names added."""
    added: list[str] = []
    for index, group in enumerate(groups):
        defined = _defined_names(body)
        if any(name in defined for name in group.names):
            continue
        position = _insertion_point(body, groups, index)
        body[position:position] = [fresh[name] for name in group.names]
        added.extend(group.names)
    return added


def _insertion_point(body: Sequence[cst.CSTNode], groups: Sequence[Group], index: int) -> int:
    positions = {
        node.name.value: position
        for position, node in enumerate(body)
        if isinstance(node, cst.FunctionDef)
    }
    for earlier in reversed(groups[:index]):
        found = [positions[name] for name in earlier.names if name in positions]
        if found:
            return max(found) + 1
    for later in groups[index + 1 :]:
        found = [positions[name] for name in later.names if name in positions]
        if found:
            return min(found)
    return len(body)


def _leftovers(
    class_name: str,
    body: Sequence[cst.CSTNode],
    groups: Sequence[Group],
    listed: frozenset[str],
) -> list[str]:
    """Warnings for handlers no RPC of the proto is served by, and for listed names that are
    no RPC: removed or renamed in the proto; left in place."""
    rpcs = {group.rpc for group in groups}
    methods = {name for group in groups for name in group.names}
    warnings = [
        f"{class_name}.{node.name.value}: no RPC of the proto has this handler any more "
        "(removed or renamed?); left in place"
        for node in body
        if isinstance(node, cst.FunctionDef)
        and node.name.value not in methods
        and _looks_like_handler(node)
    ]
    warnings.extend(
        f"{class_name}.{UNIMPLEMENTED_ATTRIBUTE} names {name!r}, which is no RPC of the proto"
        for name in sorted(listed - rpcs)
    )
    return warnings


def _looks_like_handler(node: cst.FunctionDef) -> bool:
    names = [param.name.value for param in node.params.params]
    return (
        not node.name.value.startswith("_")
        and len(names) == 3
        and names[1] in _REQUEST_PARAMETERS
        and names[2] == "context"
    )


# Annotations


class _Retyped(NamedTuple):
    node: cst.FunctionDef  # the same object when nothing changed
    replaced_names: frozenset[str]  # names the replaced annotations used
    kind_changed: bool


def _retype_handler(existing: cst.FunctionDef, fresh: cst.FunctionDef) -> _Retyped:
    """`existing` with the request and response types of its annotations made those of
    `fresh`, where they name a message through a `_pb2` module and the shape around them is
    the scaffold's own; annotations the user wrote differently are left alone."""
    params, fresh_params = existing.params.params, fresh.params.params
    if _kind_changed(existing, fresh):
        return _Retyped(existing, frozenset(), kind_changed=True)
    replaced: set[str] = set()
    new_params = list(params)
    for position in (1, 2):
        if position >= len(params) or position >= len(fresh_params):
            continue
        old, new = params[position].annotation, fresh_params[position].annotation
        if old is None or new is None:
            continue
        retyped = _retyped(old.annotation, new.annotation)
        if retyped is not None:
            replaced |= _names(old.annotation)
            new_params[position] = params[position].with_changes(
                annotation=old.with_changes(annotation=retyped)
            )
    changes: dict[str, object] = {}
    if new_params != list(params):
        changes["params"] = existing.params.with_changes(params=tuple(new_params))
    if existing.returns is not None and fresh.returns is not None:
        retyped = _retyped(existing.returns.annotation, fresh.returns.annotation)
        if retyped is not None:
            replaced |= _names(existing.returns.annotation)
            changes["returns"] = existing.returns.with_changes(annotation=retyped)
    if not changes:
        return _Retyped(existing, frozenset(), kind_changed=False)
    return _Retyped(existing.with_changes(**changes), frozenset(replaced), kind_changed=False)


def _stale_annotations(
    existing: cst.FunctionDef,
    fresh: cst.FunctionDef,
    imports: dict[str, str],
    fresh_imports: dict[str, str],
) -> list[tuple[str, str]]:
    """What of `existing`'s annotations still names a message type other than the one
    `fresh` has there (spelled so that scaffold cannot rewrite it: an imported class, a string),
    and the fresh annotation: [("`request`", "shop_pb2.ItemQuery")]."""
    pairs: list[tuple[str, cst.Annotation | None, cst.Annotation | None]] = [
        (f"`{param.name.value}`", param.annotation, fresh_param.annotation)
        for param, fresh_param in zip(
            existing.params.params[1:3], fresh.params.params[1:3], strict=False
        )
    ]
    pairs.append(("the return annotation", existing.returns, fresh.returns))
    stale = []
    for what, old, new in pairs:
        if old is None or new is None:
            continue
        written = _qualified(old.annotation, imports)
        if "_pb2." in written and written != _qualified(new.annotation, fresh_imports):
            stale.append((what, code_of(new.annotation)))
    return stale


def _qualified(annotation: cst.BaseExpression, imports: dict[str, str]) -> str:
    """An annotation with every name spelled in full through the module's imports, without
    layout or quotes: `Item` after `from shop.v1.shop_pb2 import Item` is shop.v1.shop_pb2.Item."""
    if isinstance(annotation, cst.SimpleString):
        text = annotation.evaluated_value
        try:
            annotation = cst.parse_expression(text if isinstance(text, str) else text.decode())
        except cst.ParserSyntaxError:
            return _shape(annotation)
    return re.sub(
        r"(?<![\w.])([A-Za-z_]\w*)",
        lambda match: imports.get(match[1], match[1]),
        _shape(annotation),
    )


def _kind_changed(existing: cst.FunctionDef, fresh: cst.FunctionDef) -> bool:
    """Whether the handler takes or answers a stream where the proto now does not, or the
    other way round, as far as its parameter names and return annotation tell."""
    params, fresh_params = existing.params.params, fresh.params.params
    if len(params) > 1 and len(fresh_params) > 1:
        name, fresh_name = params[1].name.value, fresh_params[1].name.value
        if name in _REQUEST_PARAMETERS and name != fresh_name:
            return True
    if existing.returns is None or fresh.returns is None:
        return False
    return _is_iterator(existing.returns.annotation) != _is_iterator(fresh.returns.annotation)


def _is_iterator(annotation: cst.BaseExpression) -> bool:
    return (
        isinstance(annotation, cst.Subscript)
        and _last_name(annotation.value) in _ITERATOR_ANNOTATIONS
    )


def _retyped(existing: cst.BaseExpression, fresh: cst.BaseExpression) -> cst.BaseExpression | None:
    """`existing` with each message type in it replaced by the one at the same place in
    `fresh`, or None when nothing is to change. When the result is `fresh` but for layout,
    `fresh` itself, laid out as a fresh scaffold is."""
    updated = _replace_types(existing, fresh)
    if updated is None:
        return None
    return fresh if _shape(updated) == _shape(fresh) else updated


def _replace_types(
    existing: cst.BaseExpression, fresh: cst.BaseExpression
) -> cst.BaseExpression | None:
    if _is_dotted(fresh):
        if _is_message_reference(existing) and _shape(existing) != _shape(fresh):
            return fresh
        return None
    if not (
        isinstance(fresh, cst.Subscript)
        and isinstance(existing, cst.Subscript)
        and _shape(existing.value) == _shape(fresh.value)
        and len(existing.slice) == len(fresh.slice)
    ):
        return None
    elements, changed = [], False
    for element, fresh_element in zip(existing.slice, fresh.slice, strict=True):
        if isinstance(element.slice, cst.Index) and isinstance(fresh_element.slice, cst.Index):
            replaced = _replace_types(element.slice.value, fresh_element.slice.value)
            if replaced is not None:
                element = element.with_changes(slice=element.slice.with_changes(value=replaced))
                changed = True
        elements.append(element)
    return existing.with_changes(slice=tuple(elements)) if changed else None


def _is_dotted(expression: cst.BaseExpression) -> bool:
    if isinstance(expression, cst.Name):
        return True
    return isinstance(expression, cst.Attribute) and _is_dotted(expression.value)


def _is_message_reference(expression: cst.BaseExpression) -> bool:
    """`user_pb2.User`, `user_v1_user_pb2.User.Role`, `user_pb2_.User`: a message or enum as
    generated code names it, through its `_pb2` module."""
    if not isinstance(expression, cst.Attribute) or not _is_dotted(expression):
        return False
    root: cst.BaseExpression = expression
    while isinstance(root, cst.Attribute):
        root = root.value
    return isinstance(root, cst.Name) and root.value.rstrip("_").endswith("_pb2")


def _shape(node: cst.CSTNode) -> str:
    """The code of an annotation without its whitespace, which is only layout there."""
    return re.sub(r"\s+", "", code_of(node))


def _names(node: cst.CSTNode) -> set[str]:
    return {child.value for child in _walk(node) if isinstance(child, cst.Name)}
