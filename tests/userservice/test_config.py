"""The PYSERVICE_* settings: each bad value is one ValueError naming the variable, at start."""

from __future__ import annotations

import pytest

from examples.userservice import config


@pytest.mark.parametrize(
    ("environment", "says"),
    [
        ({"PYSERVICE_DATABASE_URL": "mysql://u:secret@h/db"}, "scheme 'mysql'"),
        ({"PYSERVICE_PORT": "70000"}, "PYSERVICE_PORT must be a port number"),
        ({"PYSERVICE_METRICS_PORT": "-1"}, "PYSERVICE_METRICS_PORT must be a port number"),
        ({"PYSERVICE_PORT": "http"}, "PYSERVICE_PORT must be a number"),
        ({"PYSERVICE_TLS_CERT": "cert.pem"}, "must be set together"),
        ({"PYSERVICE_TLS_KEY": "key.pem"}, "must be set together"),
        ({"PYSERVICE_CACHE_TTL_SECONDS": "5"}, "at least 30"),
        ({"PYSERVICE_PAGE_TOKEN_TTL_SECONDS": "0"}, "positive number of seconds"),
        ({"PYSERVICE_PAGE_TOKEN_SECRET": "zz"}, "hex digits"),
        ({"PYSERVICE_PAGE_TOKEN_SECRET": "ab" * 31}, "at least 32 bytes"),
        ({"PYSERVICE_LOCAL_CACHE": "yes"}, "0 or 1"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(
    environment: dict[str, str], says: str
) -> None:
    with pytest.raises(ValueError, match=says) as raised:
        config.server_settings_from(environment)
        config.service_config_from(environment)
    assert "secret" not in str(raised.value)


def test_the_defaults_and_the_settings_that_are_given() -> None:
    chosen = config.service_config_from(
        {
            "PYSERVICE_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1/users",
            "PYSERVICE_REDIS_URL": "redis://:hunter2@127.0.0.1:6379/0",
            "PYSERVICE_PAGE_TOKEN_SECRET": "ab" * 32,
            "PYSERVICE_LOCAL_CACHE": "0",
        }
    )
    assert chosen.page_token_secret == bytes.fromhex("ab" * 32)
    assert chosen.page_token_ttl_seconds == 3600 and chosen.cache_ttl_seconds == 300
    assert not chosen.local_cache
    assert "hunter2" not in repr(chosen) and "abab" not in repr(chosen)
    settings = config.server_settings_from({"PYSERVICE_PORT": "0"})
    assert settings.address == "127.0.0.1:0" and settings.tls is None
