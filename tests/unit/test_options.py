import pytest
from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.options import Options, parse_options


def test_empty_parameter_gives_defaults() -> None:
    assert parse_options("") == Options()


def test_all_options_parse() -> None:
    options = parse_options("default_timeout=2.5, service=false,client=TRUE")
    assert options == Options(default_timeout=2.5, service=False, client=True)


def test_testing_is_on_by_default_and_can_be_turned_off() -> None:
    assert Options().testing is True
    assert parse_options("testing=False").testing is False
    assert parse_options("testing=true") == Options()


def test_timeout_none_disables_default_deadline() -> None:
    assert parse_options("default_timeout=none").default_timeout is None


@pytest.mark.parametrize(
    ("parameter", "fragment"),
    [
        (
            "colour=blue",
            "unknown option; the options are: client, default_timeout, service, testing",
        ),
        ("testing=yes", "bad value 'yes'; expected true or false"),
        ("service", "needs a value: true or false"),
        ("service=maybe", "bad value 'maybe'; expected true or false"),
        ("default_timeout=-1", "bad value '-1'"),
        ("default_timeout=0", "bad value '0'"),
        ("default_timeout=nan", "bad value 'nan'"),
        ("default_timeout=inf", "bad value 'inf'"),
        ("default_timeout=soon", "a number of seconds > 0, or 'none'"),
        ("client=true,client=false", "given more than once"),
    ],
)
def test_bad_parameters_name_the_option(parameter: str, fragment: str) -> None:
    with pytest.raises(GenerationError) as caught:
        parse_options(parameter)
    assert caught.value.element.startswith("plugin option ")
    assert fragment in str(caught.value)
