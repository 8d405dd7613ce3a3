"""Bringing a module the user owns up to date with a fresh scaffold, in place, with libcst.

What the fresh module has and the user's lacks is added: a stub method or the tests of each RPC
that has none, annotations naming a request or response type the proto no longer uses, and the
imports those need. Nothing else changes: libcst reproduces every untouched byte, so the user's
bodies, comments and layout survive. What cannot be decided safely (a method whose RPC went
away, an RPC whose streaming kind changed) is left as it is and reported.
"""

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import libcst as cst
from protoc_gen_pyservice.cli import import_edits
from protoc_gen_pyservice.cli.import_edits import assigned_names
from protoc_gen_pyservice.render.scaffold import UNIMPLEMENTED_ATTRIBUTE, Group

# The parameter a handler takes its request(s) in, by whether the client streams.
_REQUEST_PARAMETERS = frozenset({"request", "request_iterator"})
# Containers UNIMPLEMENTED_RPCS may be written with; anything else in it is not read.
_LITERAL_CONTAINERS = frozenset({"frozenset", "set", "tuple", "list"})
_ITERATOR_ANNOTATIONS = frozenset({"AsyncIterator", "AsyncGenerator", "AsyncIterable"})


class MergeError(Exception):
    """A module that cannot be updated: it does not parse."""


class Merged(NamedTuple):
    text: str
    changes: tuple[str, ...]  # what was done, one phrase each: "added stub get_user"
    warnings: tuple[str, ...]  # what the user should look at


class Implementation(NamedTuple):
    """The class of a module that derives from the generated base class."""

    name: str
    methods: frozenset[str]  # names defined in the class body
    unimplemented: frozenset[str]  # proto names in UNIMPLEMENTED_RPCS


def parse(source: str) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise MergeError(
            f"cannot be parsed (line {error.raw_line}, column {error.raw_column}): {error.message}"
        ) from None


def find_implementation(module: cst.Module, base_class: str) -> Implementation | None:
    """The first top-level class deriving from `base_class` (by its last name, however the
    module imports it), or None."""
    found = _find_class(module, base_class)
    if found is None:
        return None
    listed, _ = _listed_unimplemented(found)
    return Implementation(
        name=found.name.value,
        methods=frozenset(_defined_names(_class_body(found))),
        unimplemented=listed,
    )


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
    body: list[cst.BaseStatement] = list(target.body.body)
    for index, node in enumerate(body):
        if not isinstance(node, cst.FunctionDef) or node.name.value not in fresh_methods:
            continue
        retyped = _retype_handler(node, fresh_methods[node.name.value])
        if retyped.kind_changed:
            warnings.append(
                f"{class_name}.{node.name.value}: the RPC's streaming kind changed; change the "
                f"method to match {base_class}.{node.name.value} by hand"
            )
        elif retyped.node is not node:
            body[index] = retyped.node
            replaced_names |= retyped.replaced_names
            changes.append(f"retyped {node.name.value}")
    wanted = [group for group in groups if group.rpc not in listed]
    for name in _insert_missing(body, wanted, fresh_methods):
        changes.append(f"added stub {name}")
    warnings.extend(_leftovers(class_name, body, groups, listed))
    updated_class = target.with_changes(body=target.body.with_changes(body=tuple(body)))
    updated = module.deep_replace(target, updated_class)
    assert isinstance(updated, cst.Module)
    updated, import_changes = import_edits.update_imports(updated, fresh_module, replaced_names, ())
    return Merged(updated.code, (*changes, *import_changes), tuple(warnings))


def update_tests(
    source: str, fresh: str, groups: Sequence[Group], first_party: Iterable[str]
) -> Merged:
    """The user's test module `source` with the tests of every RPC that has none of its tests
    (by function name) added from `fresh`. `first_party`: top-level package names isort puts
    in the first-party section (the implementation's)."""
    module, fresh_module = parse(source), parse(fresh)
    body: list[cst.BaseStatement] = list(module.body)
    added = _insert_missing(body, groups, _functions(fresh_module.body))
    changes = [f"added {name}" for name in added]
    updated = module.with_changes(body=tuple(body))
    updated, import_changes = import_edits.update_imports(
        updated, fresh_module, set(), tuple(first_party)
    )
    return Merged(updated.code, (*changes, *import_changes), ())


# The class and its body


def _find_class(module: cst.Module, base_class: str) -> cst.ClassDef | None:
    for node in module.body:
        if isinstance(node, cst.ClassDef) and any(
            _last_name(base.value) == base_class for base in node.bases
        ):
            return node
    return None


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
    return re.sub(r"\s+", "", cst.Module(body=()).code_for_node(node))


def _names(node: cst.CSTNode) -> set[str]:
    return {child.value for child in _walk(node) if isinstance(child, cst.Name)}
