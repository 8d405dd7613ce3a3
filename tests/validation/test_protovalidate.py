"""protovalidate (buf.validate) rules compiled ahead of time, against protovalidate itself.

Every input is validated twice: by the generated validator and by the `protovalidate` package
(the reference implementation, pinned). Both must give the same violations: field path, rule
id, rule path and for_key. Inputs are random (hypothesis) around each rule's boundaries, plus
hand-picked ones.
"""

import time
from collections.abc import Callable
from typing import Any

import protovalidate
import pytest
from google.protobuf import duration_pb2, timestamp_pb2, wrappers_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protoc_gen_pyservice.runtime import cel, validation

Found = list[tuple[str, str, str, bool]]


def _path(path: Any) -> str:
    """protovalidate's FieldPath as the text our violations carry: `a.b[2]`, `m["k"]`."""
    if path is None:
        return ""
    text = ""
    for element in path.elements:
        name = element.field_name
        text += ("." if text else "") + name
        subscript = element.subscript
        if subscript is None:
            continue
        kind, value = subscript.field, subscript.value
        if kind == "string_key":
            text += "[" + validation.key_text(value) + "]"
        elif kind == "bool_key":
            text += "[true]" if value else "[false]"
        else:
            text += f"[{value}]"
    return text


def theirs(message: Any) -> Found:
    found = protovalidate.collect_violations(message)
    return sorted(
        (_path(v.proto.field), v.proto.rule_id, _path(v.proto.rule), bool(v.proto.for_key))
        for v in found
    )


def ours(message: Any) -> Found:
    found = validation.collect_violations(message)
    return sorted((v.field_path, v.rule_id, v.rule, v.for_key) for v in found)


@pytest.fixture(scope="module")
def pv(load: Callable[[str], Any]) -> Any:
    return load("protovalidate")


def agree(message: Any) -> None:
    assert ours(message) == theirs(message), message


_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "abc",
            "a@b.co",
            "a@b",
            "@b.co",
            "example.com",
            "-bad.com",
            "1.2.3.4",
            "01.2.3.4",
            "::1",
            "fe80::1%eth0",
            "10.0.0.0/8",
            "10.0.0.1/8",
            "2001:db8::/32",
            "host:80",
            "[::1]:443",
            "host:080",
            "host:65536",
            "123e4567-e89b-12d3-a456-426614174000",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "amz",
            "aqmz",
            "x-header",
            ":authority",
        ]
    ),
)
_INT32 = st.integers(-(2**31), 2**31 - 1)
_INT64 = st.integers(-(2**63), 2**63 - 1)


@_SETTINGS
@given(
    small=_INT32,
    outside=st.one_of(st.integers(-20, 20), _INT64),
    counted=st.integers(0, 5),
    not_listed=st.integers(5, 10),
    ratio=st.floats(allow_nan=True, allow_infinity=True),
    finite=st.floats(width=32, allow_nan=True, allow_infinity=True),
    exact=st.integers(-2, 2),
    flag=st.booleans(),
    name=_TEXT,
    email=_TEXT,
    host=_TEXT,
    address=_TEXT,
    prefix=_TEXT,
    endpoint=_TEXT,
    id_=_TEXT,
    text=_TEXT,
    blob=st.binary(max_size=6),
    ip_bytes=st.binary(max_size=5),
    color=st.integers(-1, 4),
    nick=st.none() | _TEXT,
    header=_TEXT,
    ulid=_TEXT,
)
def test_scalars_agree(pv: Any, nick: str | None, id_: str, **fields: Any) -> None:
    message = pv.PvScalars(id=id_, **fields)
    if nick is not None:
        message.nick = nick
    agree(message)


@_SETTINGS
@given(
    numbers=st.lists(st.integers(-3, 5), max_size=6),
    scores=st.dictionaries(st.text(max_size=2), st.integers(-2, 2), max_size=3),
    items=st.lists(st.text(max_size=3), max_size=3),
    by_id=st.dictionaries(st.integers(-2, 2), st.text(max_size=3), max_size=3),
    single=st.none() | st.text(max_size=3),
    ttl=st.none() | st.tuples(st.integers(-2, 70), st.integers(0, 999_999_999)),
    at=st.none() | st.integers(-5, 5),
    wrapped=st.none() | st.integers(0, 20),
    must=st.text(max_size=2),
    tags=st.lists(st.text(max_size=2), max_size=2),
    choice=st.sampled_from(["none", "left", "right"]),
    right=st.integers(-2, 2),
    never=st.integers(-2, 2),
)
def test_shapes_agree(
    pv: Any,
    items: list[str],
    by_id: dict[int, str],
    single: str | None,
    ttl: tuple[int, int] | None,
    at: int | None,
    wrapped: int | None,
    choice: str,
    right: int,
    **fields: Any,
) -> None:
    message = pv.PvShapes(**fields)
    message.items.extend(pv.PvItem(key=key) for key in items)
    for number, key in by_id.items():
        message.by_id[number].key = key
    if single is not None:
        message.single.key = single
    if ttl is not None:
        message.ttl.CopyFrom(duration_pb2.Duration(seconds=ttl[0], nanos=ttl[1]))
    if at is not None:
        message.at.CopyFrom(timestamp_pb2.Timestamp(seconds=at))
    if wrapped is not None:
        message.wrapped.CopyFrom(wrappers_pb2.Int32Value(value=wrapped))
    if choice == "left":
        message.left = "x"
    elif choice == "right":
        message.right = right
    agree(message)


@_SETTINGS
@given(
    low=st.one_of(st.integers(-4, 4), st.sampled_from([2**63 - 1, -(2**63)])),
    high=st.one_of(st.integers(-4, 4), st.sampled_from([2**63 - 1, -(2**63)])),
    words=st.lists(st.sampled_from(["x", "xa", "a", ""]), max_size=3),
    labels=st.dictionaries(st.text(max_size=5), st.text(max_size=2), max_size=3),
    code=st.sampled_from(["", "AB", "aB", "A1"]),
)
def test_custom_cel_agrees(pv: Any, **fields: Any) -> None:
    message = pv.PvCustom(**fields)
    try:
        expected = theirs(message)
    except protovalidate.EvaluationError:
        # `this + 1` overflows int64 on the largest `high`: an evaluation error in both.
        with pytest.raises(cel.EvaluationError):
            ours(message)
        return
    assert ours(message) == expected


def test_overflow_is_an_evaluation_error_not_a_violation(pv: Any) -> None:
    message = pv.PvCustom(low=0, high=2**63 - 1)
    with pytest.raises(protovalidate.EvaluationError):
        protovalidate.collect_violations(message)
    with pytest.raises(cel.EvaluationError, match="int64 overflow"):
        validation.collect_violations(message)


def test_violations_convert_to_the_protovalidate_detail(pv: Any) -> None:
    """buf.validate.Violations built from our violations equals protovalidate's own, byte for
    byte in each field path and rule path (field numbers, names, types, subscripts)."""
    from buf.validate import validate_pb2

    message = pv.PvShapes(numbers=[0, 0], scores={"": -1}, must="")
    message.by_id[-1].key = "x"
    message.items.add(key="")
    detail: Any = validation.to_protovalidate_violations(
        message.DESCRIPTOR, validation.collect_violations(message)
    )
    reference = validate_pb2.Violations.FromString(
        protovalidate.ValidationError("", protovalidate.collect_violations(message))
        .to_proto()
        .to_binary()
    )

    def key(violation: Any) -> tuple[str, bytes, bytes, bool]:
        return (
            violation.rule_id,
            violation.field.SerializeToString(),
            violation.rule.SerializeToString(),
            violation.for_key,
        )

    assert sorted(map(key, detail.violations)) == sorted(map(key, reference.violations))
    assert len(detail.violations) >= 6


@pytest.fixture(scope="module")
def more(load: Callable[[str], Any]) -> Any:
    return load("protovalidate_more")


def _node(more: Any, depth: int, names: list[str]) -> Any:
    node = more.PvNode(name=names[depth % len(names)] if names else "")
    if depth > 0:
        node.children.add().CopyFrom(_node(more, depth - 1, names))
        node.named[names[0] if names else ""].CopyFrom(_node(more, depth - 1, names[1:]))
        node.parent.CopyFrom(_node(more, depth - 1, names[::-1]))
    return node


@_SETTINGS
@given(
    depth=st.integers(0, 3),
    names=st.lists(st.sampled_from(["", "n", "node"]), max_size=4),
    extra_children=st.integers(0, 4),
)
def test_recursive_messages_agree(
    more: Any, depth: int, names: list[str], extra_children: int
) -> None:
    node = _node(more, depth, names)
    for _ in range(extra_children):
        node.children.add(name="")
    agree(node)


@_SETTINGS
@given(
    a=st.sampled_from(["", "x"]),
    b=st.integers(-1, 1),
    c=st.sampled_from(["", "y"]),
    d=st.lists(st.just("z"), max_size=2),
    step=st.integers(-11, 11),
    mask=st.lists(st.sampled_from(["a", "b", "b.c", "b.c.d", "a.x", "e"]), max_size=3),
    any_url=st.none() | st.sampled_from(["type.googleapis.com/vt.PvNode", "type.googleapis.com/x"]),
    maybe=st.none() | st.integers(-1, 12),
    spoken=st.none() | st.sampled_from(["", "a", "ab"]),
    nodes=st.lists(st.none() | st.sampled_from(["", "n"]), max_size=3),
    by_name=st.dictionaries(st.sampled_from(["", "k"]), st.sampled_from(["", "n"]), max_size=2),
    root=st.none() | st.sampled_from(["", "n"]),
    zero_ok=st.integers(-1, 7),
    empty_ok=st.lists(st.integers(0, 3), max_size=3),
    seen=st.none() | st.sampled_from([-7200, -60, 600, 7200]),
    soon=st.none() | st.sampled_from([-7200, -60, 600, 7200]),
    later=st.none() | st.sampled_from([-7200, -60, 600, 7200]),
)
def test_presence_oneof_predefined_and_well_known_agree(
    more: Any,
    mask: list[str],
    any_url: str | None,
    maybe: int | None,
    spoken: str | None,
    nodes: list[str | None],
    by_name: dict[str, str],
    root: str | None,
    seen: int | None,
    soon: int | None,
    later: int | None,
    **fields: Any,
) -> None:
    message = more.PvMore(**fields)
    now = int(time.time())
    for name, offset in (("seen", seen), ("soon", soon), ("later", later)):
        if offset is not None:  # far from the boundary: both validators read their own clock
            getattr(message, name).seconds = now + offset
    if mask:
        message.mask.paths.extend(mask)
    if any_url is not None:
        message.any.type_url = any_url
    if maybe is not None:
        message.maybe = maybe
    if spoken is not None:
        message.spoken = spoken
    for node_name in nodes:
        item = message.nodes.add()
        if node_name is not None:
            item.name = node_name
    for key, name in by_name.items():
        message.by_name[key].name = name
    if root is not None:
        message.root.name = root
    agree(message)


@_SETTINGS
@given(
    count=st.none() | st.integers(-1, 1),
    label=st.none() | st.sampled_from(["", "ab", "abc"]),
    needed=st.none() | st.sampled_from(["", "x"]),
    defaulted=st.none() | st.integers(3, 8),
    zero_ignored=st.none() | st.integers(-1, 1),
    values=st.lists(st.integers(-1, 1), max_size=2),
    inner=st.none() | st.sampled_from(["", "a", "ab"]),
)
def test_proto2_presence_agrees(
    load: Callable[[str], Any], values: list[int], inner: str | None, **fields: int | str | None
) -> None:
    message = load("protovalidate_proto2").PvProto2(values=values)
    if inner is not None:
        message.inner.label = inner
    for name, value in fields.items():
        if value is not None:
            setattr(message, name, value)
    agree(message)


@_SETTINGS
@given(
    explicit_count=st.none() | st.integers(-1, 1),
    implicit_count=st.integers(-1, 1),
    implicit_name=st.sampled_from(["", "x"]),
    explicit_name=st.none() | st.sampled_from(["", "x"]),
    zero_ignored=st.integers(-1, 1),
)
def test_editions_presence_agrees(load: Callable[[str], Any], **fields: int | str | None) -> None:
    message = load("protovalidate_editions").PvEditions()
    for name, value in fields.items():
        if value is not None:
            setattr(message, name, value)
    agree(message)


_SUBS = st.none() | st.tuples(st.sampled_from(["", "x"]), st.integers(0, 5))


@_SETTINGS
@given(
    rd=st.lists(st.integers(0, 200), max_size=2),
    ws=st.lists(st.integers(0, 200), max_size=2),
    wm=st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["", "v"]), max_size=2),
    ds=st.lists(st.integers(0, 3), max_size=2),
    wm2=st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["", "v"]), max_size=2),
    keys_only=st.dictionaries(st.sampled_from(["", "k", "kk"]), st.integers(0, 1), max_size=2),
    kid=st.none() | st.integers(0, 200),
    a=st.sampled_from(["", "ab", "abc"]),
    b=st.integers(0, 5),
    sub=_SUBS,
    items=st.lists(st.integers(0, 1), max_size=3),
    pairs=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 1), max_size=3),
    zero_items=st.lists(_SUBS, max_size=2),
    zero_values=st.dictionaries(st.sampled_from(["a", "b"]), _SUBS, max_size=2),
)
def test_collections_of_well_known_types_and_oneof_members_agree(
    load: Callable[[str], Any],
    rd: list[int],
    ws: list[int],
    wm: dict[str, str],
    ds: list[int],
    wm2: dict[str, str],
    kid: int | None,
    sub: tuple[str, int] | None,
    zero_items: list[tuple[str, int] | None],
    zero_values: dict[str, tuple[str, int] | None],
    **fields: Any,
) -> None:
    module = load("protovalidate_review")
    message = module.PvReview(**fields)
    message.rd.extend(duration_pb2.Duration(seconds=s) for s in rd)
    message.ws.extend(wrappers_pb2.Int32Value(value=v) for v in ws)
    for key, text in wm.items():
        message.wm[key].value = text
    message.ds.extend(duration_pb2.Duration(seconds=s) for s in ds)
    for key, text in wm2.items():
        message.wm2[key].value = text
    if kid is not None:
        message.kids.add().rd.add(seconds=kid)
        message.named["n"].ws.add(value=kid)
    if sub is not None:
        message.sub.t, message.sub.n = sub
    for item in zero_items:
        added = message.zero_items.add()
        if item is not None:
            added.t, added.n = item
    for key, value in zero_values.items():
        entry = message.zero_values[key]
        if value is not None:
            entry.t, entry.n = value
    agree(message)
