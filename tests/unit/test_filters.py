import ast

import pytest
from protoc_gen_pyservice.model.nodes import Doc
from protoc_gen_pyservice.render.filters import call, docstring, pyrepr, subscript

HOSTILE = [
    'ends with a quote"',
    '"starts with a quote',
    'contains """ triple quotes',
    "back\\slash at the end\\",
    "{{ jinja }} {% block %} # ; '''",
    "nul \x00 bell \x07 escape \x1b",
    "unicode: caf\u00e9 \u202e rtl \U0001f600",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_docstring_round_trips_single_line(text: str) -> None:
    literal = docstring(Doc((text,)), 4)
    assert ast.literal_eval(literal) == text.strip()


def test_docstring_round_trips_many_lines() -> None:
    lines = ("First line", "", "  indented", 'last \\ line with """', '"')
    literal = docstring(Doc(lines), 8)
    value = ast.literal_eval(literal)
    assert value.splitlines()[0] == "First line"
    assert "  indented" not in value or value.count("indented") == 1
    assert '"""' in value and "\\" in value


def test_long_lines_are_wrapped_to_the_line_length() -> None:
    literal = docstring(Doc(("word " * 60,)), 8)
    assert all(8 + len(line) <= 100 for line in literal.splitlines())
    assert " ".join(ast.literal_eval(literal).split()) == " ".join(("word " * 60).split())


def test_fallback_when_no_comment() -> None:
    assert docstring(Doc(), 4, "GetUser RPC.") == '"""GetUser RPC."""'


@pytest.mark.parametrize("value", ["plain", "it's", 'say "hi"', "a\\b\nc", b"\x00'", 0, -1.5, True])
def test_pyrepr_is_a_literal(value: object) -> None:
    assert ast.literal_eval(pyrepr(value)) == value


def test_pyrepr_prefers_double_quotes() -> None:
    assert pyrepr("it's") == '"it\'s"'


def test_subscript_layouts() -> None:
    assert subscript("X", ["a", "b"], 8, trailer=",") == "X[a, b],"
    head = "grpc.aio.ServicerContext"
    wide = subscript(head, ["a" * 40, "b" * 40], 8, trailer=",")
    assert wide.splitlines() == [f"{head}[", " " * 12 + "a" * 40 + ", " + "b" * 40, " " * 8 + "],"]
    widest = subscript("X", ["a" * 60, "b" * 60], 8, trailer=",")
    assert widest.splitlines()[1:3] == [" " * 12 + "a" * 60 + ",", " " * 12 + "b" * 60 + ","]


def test_call_layouts() -> None:
    assert call("f", ['"x"'], 8, "raise ") == 'raise f("x")'
    long_path = '"/' + "p" * 100 + '"'
    assert call("f", [long_path], 8, "return ").splitlines() == [
        "return f(",
        " " * 12 + long_path + ",",
        " " * 8 + ")",
    ]
