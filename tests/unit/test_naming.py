import builtins
import keyword
import subprocess
import sys

import pytest
from protoc_gen_pyservice.model import naming


@pytest.mark.parametrize(
    ("proto", "python"),
    [
        ("GetUser", "get_user"),
        ("getUser", "get_user"),
        ("HTTPRequest", "http_request"),
        ("GETUser", "get_user"),
        ("Get_User", "get_user"),
        ("V2Thing", "v2_thing"),
        ("HTTP2Service", "http2_service"),
        ("already_snake", "already_snake"),
    ],
)
def test_snake_case(proto: str, python: str) -> None:
    assert naming.snake_case(proto) == python


def test_keywords_and_builtins_are_escaped() -> None:
    assert naming.attribute("class") == "class_"
    assert naming.attribute("type") == "type"  # builtins are fine as attributes
    assert naming.variable("type") == "type_"
    assert naming.variable("id") == "id_"
    assert naming.variable("class") == "class_"


@pytest.mark.parametrize("name", ["match", "case", "type", "_"])
def test_soft_keywords_are_ordinary_names(name: str) -> None:
    """`def match(self)` and `self.case` are legal: nothing to escape."""
    assert naming.attribute(name) == name
    assert not naming.is_keyword(name)
    compile(f"class C:\n    def {name}(self, {name}): return self.{name}\n", "<test>", "exec")


def test_reserved_words_cover_the_running_interpreter() -> None:
    assert set(keyword.kwlist) == naming.HARD_KEYWORDS
    assert set(keyword.softkwlist) <= naming.SOFT_KEYWORDS
    # A fresh interpreter's builtins: extension modules imported here add their own
    # (pybind11 leaves `__pybind11_internals_...__`), which is why naming never asks.
    fresh = subprocess.run(
        [sys.executable, "-c", "import builtins; print(*dir(builtins))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(fresh.stdout.split()) <= naming.BUILTIN_NAMES


def test_reserved_words_cover_python_3_11_to_3_14() -> None:
    assert "type" in naming.SOFT_KEYWORDS  # a soft keyword from 3.12 on
    assert {"_", "case", "match", "type"} == naming.SOFT_KEYWORDS
    # Names only some interpreters have: 3.13's, and Windows' alias of OSError.
    assert {"PythonFinalizationError", "_IncompleteInputError", "WindowsError"} <= (
        naming.BUILTIN_NAMES
    )
    # `site` adds these; `python -S` runs without them.
    assert {"exit", "quit", "help", "copyright", "credits", "license"} <= naming.BUILTIN_NAMES
    assert not naming.HARD_KEYWORDS & naming.SOFT_KEYWORDS


def test_names_do_not_depend_on_the_running_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Python 3.11 (no `type` soft keyword) or a trimmed builtins module would say."""
    names = ["class", "match", "case", "type", "_", "id", "print", "exit", "get_user"]
    before = [(naming.attribute(n), naming.variable(n), naming.is_keyword(n)) for n in names]
    monkeypatch.setattr(keyword, "softkwlist", ["_", "case", "match"])
    monkeypatch.setattr(keyword, "issoftkeyword", lambda name: name in ("type", "lazy"))
    monkeypatch.setattr(keyword, "iskeyword", lambda name: name == "print")
    monkeypatch.delattr(builtins, "exit", raising=False)
    monkeypatch.setattr(builtins, "lazy", None, raising=False)
    after = [(naming.attribute(n), naming.variable(n), naming.is_keyword(n)) for n in names]
    assert after == before
    assert naming.variable("lazy") == "lazy"


def test_unique_appends_underscores() -> None:
    taken = {"close"}
    assert naming.unique("close", taken) == "close_"
    assert naming.unique("close", taken) == "close__"


def test_module_names_follow_protoc() -> None:
    assert naming.pb2_module("a/b-c.proto") == "a.b_c_pb2"
    assert naming.output_path("a/b-c.proto", "service") == "a/b_c_service.py"
    assert naming.output_module("no_package.proto", "client") == "no_package_client"


@pytest.mark.parametrize(
    ("proto", "python"),
    [
        ("UserService", "UserService"),
        ("userService", "UserService"),
        ("lower_case", "LowerCase"),
        ("return", "Return"),
        ("HTTP2Service", "Http2Service"),
    ],
)
def test_class_names_are_cap_words(proto: str, python: str) -> None:
    assert naming.class_name(proto) == python
