"""The plugin parameter: one frozen dataclass, parsed strictly in one function."""

import math
from typing import NamedTuple

from protoc_gen_pyservice.errors import GenerationError

_BOOLEANS = {"true": True, "false": False}


class Options(NamedTuple):
    """What `--pyservice_opt` / buf's `opt:` asked for."""

    # Client deadline, in seconds, for unary and client-streaming methods that set none in the
    # proto; None leaves them without one. Server- and bidi-streaming methods only get a
    # deadline from the proto, since they are often meant to stay open.
    default_timeout: float | None = 30.0
    # Which outputs to write.
    service: bool = True
    client: bool = True
    validate: bool = True
    # x_testing.py beside x_service.py: it imports the service and client modules, so files
    # get one only when both are written.
    testing: bool = True


_ALLOWED = {
    "default_timeout": "a number of seconds > 0, or 'none'",
    "service": "true or false",
    "client": "true or false",
    "validate": "true or false",
    "testing": "true or false",
}


def parse_options(parameter: str) -> Options:
    """Parse protoc's `key=value,key=value` parameter; any unknown key or bad value is an error."""
    raw_values: dict[str, str] = {}
    for item in parameter.split(","):
        key, sep, raw = (part.strip() for part in item.partition("="))
        if not key and not sep:
            continue
        if key not in _ALLOWED:
            known = ", ".join(sorted(_ALLOWED))
            raise GenerationError(
                f"plugin option {key!r}", f"unknown option; the options are: {known}"
            )
        if not sep:
            raise GenerationError(f"plugin option {key!r}", f"needs a value: {_ALLOWED[key]}")
        if key in raw_values:
            raise GenerationError(f"plugin option {key!r}", "given more than once")
        raw_values[key] = raw
    defaults = Options()
    return Options(
        default_timeout=(
            _seconds("default_timeout", raw_values["default_timeout"])
            if "default_timeout" in raw_values
            else defaults.default_timeout
        ),
        service=_boolean("service", raw_values.get("service"), defaults.service),
        client=_boolean("client", raw_values.get("client"), defaults.client),
        validate=_boolean("validate", raw_values.get("validate"), defaults.validate),
        testing=_boolean("testing", raw_values.get("testing"), defaults.testing),
    )


def _bad_value(key: str, raw: str) -> GenerationError:
    return GenerationError(f"plugin option {key!r}", f"bad value {raw!r}; expected {_ALLOWED[key]}")


def _seconds(key: str, raw: str) -> float | None:
    if raw.lower() == "none":
        return None
    try:
        seconds = float(raw)
    except ValueError:
        raise _bad_value(key, raw) from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise _bad_value(key, raw)
    return seconds


def _boolean(key: str, raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    if raw.lower() not in _BOOLEANS:
        raise _bad_value(key, raw)
    return _BOOLEANS[raw.lower()]
