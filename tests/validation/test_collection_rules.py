"""RepeatedRules and MapRules: sizes, unique, items / keys / values rules reported at the
element's path (`tags[0]`, `labels["k"]`, `by_id[7]`, `flags[true]`, for_key for keys), and
recursive validation of message elements."""

from typing import Any

import pytest

from .conftest import check

RED, UNDEFINED = 1, 99
REPEATEDS_OK = {"min2": ["a", "b"], "one_to_three": [1]}
MAPS_OK = {"min_pairs": {"a": 1}}


@pytest.fixture(scope="module")
def pb(load: Any) -> Any:
    return load("collections")


@pytest.fixture(scope="module")
def other(load: Any) -> Any:
    return load("cross/other")


def repeateds(pb: Any, **fields: Any) -> Any:
    return pb.Repeateds(**{**REPEATEDS_OK, **fields})


def maps(pb: Any, **fields: Any) -> Any:
    return pb.Maps(**{**MAPS_OK, **fields})


def test_valid(pb: Any) -> None:
    assert check(repeateds(pb)) == []
    assert check(maps(pb)) == []


def test_empty_message(pb: Any) -> None:
    assert check(pb.Repeateds()) == [
        ("min2", "repeated.min_items", False),
        ("one_to_three", "repeated.min_items", False),
    ]
    assert check(pb.Maps()) == [("min_pairs", "map.min_pairs", False)]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("min2", [], "repeated.min_items"),
        ("min2", ["a"], "repeated.min_items"),
        ("min2", ["a", "b", "c"], None),
        ("max2", [], None),
        ("max2", ["a", "b"], None),
        ("max2", ["a", "b", "c"], "repeated.max_items"),
        ("one_to_three", [], "repeated.min_items"),
        ("one_to_three", [1, 2, 3], None),
        ("one_to_three", [1, 2, 3, 4], "repeated.max_items"),
        ("unique_tags", [], None),
        ("unique_tags", ["a", "b"], None),
        ("unique_tags", ["a", "A"], None),
        ("unique_tags", ["é", "e\u0301"], None),
        ("unique_tags", ["a", "a"], "repeated.unique"),
        ("unique_tags", ["a", "b", "a", "b", "a"], "repeated.unique"),
        ("unique_tags", ["", ""], "repeated.unique"),
        ("unique_ints", [1, 2, 3], None),
        ("unique_ints", [1, 2, 1], "repeated.unique"),
        ("unique_ints", [0, 0], "repeated.unique"),
        ("unique_blobs", [b"a", b"b"], None),
        ("unique_blobs", [b"\x00", b"\x00"], "repeated.unique"),
        ("unique_colors", [RED, UNDEFINED], None),
        ("unique_colors", [UNDEFINED, UNDEFINED], "repeated.unique"),
        ("opt_tags", [], None),
        ("opt_tags", ["a"], "repeated.min_items"),
        ("opt_tags", ["a", "b"], None),
    ],
)
def test_repeated_rule(pb: Any, field: str, value: list[Any], rule: str | None) -> None:
    expected = [] if rule is None else [(field, rule, False)]
    assert check(repeateds(pb, **{field: value})) == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("emails", ["a@example.com", "b@example.com"], []),
        ("emails", ["a@example.com", "bad"], [("emails[1]", "string.email")]),
        ("emails", ["x", "y"], [("emails[0]", "string.email"), ("emails[1]", "string.email")]),
        ("positives", [1, 0, -1], [("positives[1]", "int64.gt"), ("positives[2]", "int64.gt")]),
        ("opt_tags", ["a", ""], [("opt_tags[1]", "string.min_len")]),
        ("opt_tags", [""], [("opt_tags", "repeated.min_items"), ("opt_tags[0]", "string.min_len")]),
        ("colors", [RED, 2], []),
        ("colors", [RED, RED], [("colors", "repeated.unique")]),
        ("colors", [RED, UNDEFINED], [("colors[1]", "enum.defined_only")]),
        (
            "colors",
            [UNDEFINED, UNDEFINED],
            [
                ("colors", "repeated.unique"),
                ("colors[0]", "enum.defined_only"),
                ("colors[1]", "enum.defined_only"),
            ],
        ),
        ("ratios", [0.0, -0.0, 1.0], []),
        ("ratios", [0.5, float("nan")], [("ratios[1]", "double.gte_lte")]),
        ("ratios", [float("inf")], [("ratios[0]", "double.gte_lte")]),
        ("addrs", [b"\x01\x02\x03\x04"], []),
        ("addrs", [b"\x01\x02\x03\x04", b"\x01"], [("addrs[1]", "bytes.len")]),
    ],
)
def test_items_rules(pb: Any, field: str, value: list[Any], expected: list[Any]) -> None:
    assert check(repeateds(pb, **{field: value})) == [(p, r, False) for p, r in expected]


@pytest.mark.parametrize(
    ("emails", "expected"),
    [
        ([], []),
        (["a@example.com"], []),
        (["a@example.com", "bad", "c@example.com", ""], ["items[1].email", "items[3].email"]),
    ],
)
def test_repeated_messages_validated_recursively(
    pb: Any, emails: list[str], expected: list[str]
) -> None:
    items = [pb.Item(email=email) for email in emails]
    assert check(repeateds(pb, items=items)) == [(p, "string.email", False) for p in expected]


def test_items_message_skip(pb: Any) -> None:
    assert check(repeateds(pb, skipped_items=[pb.Item(email="bad")])) == []


def test_repeated_cross_package_messages(pb: Any, other: Any) -> None:
    remotes = [other.Remote(code="ABC"), other.Remote(code="abc")]
    assert check(repeateds(pb, remotes=remotes)) == [("remotes[1].code", "string.pattern", False)]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, []),
        ({"kk": "v"}, []),
        ({"kk": "abc", "ééé": ""}, []),
        ({"k": "v"}, [('labels["k"]', "string.min_len", True)]),
        ({"kk": "long"}, [('labels["kk"]', "string.max_len", False)]),
        (
            {"k": "long"},
            [('labels["k"]', "string.max_len", False), ('labels["k"]', "string.min_len", True)],
        ),
        ({"": "v"}, [('labels[""]', "string.min_len", True)]),
        ({"é": "😀😀😀"}, [('labels["é"]', "string.min_len", True)]),
    ],
)
def test_map_string_keys_and_values(pb: Any, labels: dict[str, str], expected: list[Any]) -> None:
    assert check(maps(pb, labels=labels)) == expected


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ('a"b', 'escaped["a\\"b"]'),
        ("a\\b", 'escaped["a\\\\b"]'),
        ('\\"', 'escaped["\\\\\\""]'),
        ("a b", 'escaped["a b"]'),
        ("]", 'escaped["]"]'),
    ],
)
def test_map_string_key_quoting(pb: Any, key: str, path: str) -> None:
    assert check(maps(pb, escaped={key: ""})) == [(path, "string.min_len", False)]


@pytest.mark.parametrize(
    ("by_id", "expected"),
    [
        ({7: "a@example.com"}, []),
        ({7: "bad"}, [("by_id[7].email", "string.email", False)]),
        ({-1: "a@example.com"}, [("by_id[-1]", "int64.gt", True)]),
        ({0: "bad"}, [("by_id[0]", "int64.gt", True), ("by_id[0].email", "string.email", False)]),
        ({2**63 - 1: "bad"}, [(f"by_id[{2**63 - 1}].email", "string.email", False)]),
    ],
)
def test_map_int_keys_and_message_values(
    pb: Any, by_id: dict[int, str], expected: list[Any]
) -> None:
    entries = {key: pb.Item(email=email) for key, email in by_id.items()}
    assert check(maps(pb, by_id=entries)) == expected


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({True: "x"}, []),
        ({True: ""}, [("flags[true]", "string.min_len", False)]),
        ({False: "x"}, [("flags[false]", "bool.const", True)]),
        (
            {False: "", True: ""},
            [
                ("flags[false]", "bool.const", True),
                ("flags[false]", "string.min_len", False),
                ("flags[true]", "string.min_len", False),
            ],
        ),
    ],
)
def test_map_bool_keys(pb: Any, flags: dict[bool, str], expected: list[Any]) -> None:
    assert check(maps(pb, flags=flags)) == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("codes", {99: "x"}, []),
        ("codes", {100: "x", 0: "y"}, [("codes[100]", "uint32.lt", True)]),
        ("sints", {0: "x"}, []),
        ("sints", {-5: "x"}, [("sints[-5]", "sint32.gte", True)]),
        ("colors", {"a": RED}, []),
        ("colors", {"a": UNDEFINED}, [('colors["a"]', "enum.defined_only", False)]),
        ("ranged", {"a": 5}, []),
        (
            "ranged",
            {"a": 0, "b": 10},
            [('ranged["a"]', "int32.gt_lt", False), ('ranged["b"]', "int32.gt_lt", False)],
        ),
    ],
)
def test_map_keys_and_values_rules(
    pb: Any, field: str, value: dict[Any, Any], expected: list[Any]
) -> None:
    assert check(maps(pb, **{field: value})) == expected


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("min_pairs", {}, "map.min_pairs"),
        ("min_pairs", {"a": 1, "b": 2}, None),
        ("max_pairs", {}, None),
        ("max_pairs", {"a": 1, "b": 2}, None),
        ("max_pairs", {"a": 1, "b": 2, "c": 3}, "map.max_pairs"),
        ("opt", {}, None),
        ("opt", {"a": "x"}, "map.min_pairs"),
        ("opt", {"a": "x", "b": "y"}, None),
    ],
)
def test_map_pairs(pb: Any, field: str, value: dict[str, Any], rule: str | None) -> None:
    expected = [] if rule is None else [(field, rule, False)]
    assert check(maps(pb, **{field: value})) == expected


def test_no_sparse_map_with_present_values_passes_and_values_are_validated(pb: Any) -> None:
    good = {"a": pb.Item(email="a@example.com")}
    assert check(maps(pb, no_sparse=good)) == []
    bad = {"a": pb.Item(email="a@example.com"), "b": pb.Item()}
    assert check(maps(pb, no_sparse=bad)) == [('no_sparse["b"].email', "string.email", False)]


def test_map_values_message_skip(pb: Any) -> None:
    assert check(maps(pb, skipped={"a": pb.Item(email="bad")})) == []


def test_map_cross_package_values(pb: Any, other: Any) -> None:
    remotes = {"x": other.Remote(code="bad"), "y": other.Remote(code="XYZ")}
    assert check(maps(pb, remotes=remotes)) == [('remotes["x"].code', "string.pattern", False)]


def test_deep_paths_through_repeated_and_maps(pb: Any) -> None:
    good = pb.Member(email="a@example.com")
    bad = pb.Member(email="a@example.com", extras={"x": pb.Item(email="bad")}, tags=["a", "b", ""])
    team = pb.Team(members=[good, bad], subteams={"s": pb.Team(members=[good, good, bad])})
    assert check(team) == [
        ('members[1].extras["x"].email', "string.email", False),
        ("members[1].tags[2]", "string.min_len", False),
        ('subteams["s"].members[2].extras["x"].email', "string.email", False),
        ('subteams["s"].members[2].tags[2]', "string.min_len", False),
    ]
