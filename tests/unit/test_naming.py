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
    assert naming.attribute("match") == "match_"  # soft keyword
    assert naming.attribute("type") == "type"  # builtins are fine as attributes
    assert naming.variable("type") == "type_"
    assert naming.variable("id") == "id_"


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
