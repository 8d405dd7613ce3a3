"""Settings from the environment: the server's (`PYSERVICE_*` as for any generated service) and
the UserService's own. Every variable is optional; `make serve` sets only PYSERVICE_REFLECTION.

    PYSERVICE_PORT                   port on 127.0.0.1 (default 50051; 0: any free one, logged)
    PYSERVICE_REFLECTION             1 to enable server reflection (make serve sets it)
    PYSERVICE_JWT_SECRET             require HS256 bearer tokens signed with this secret;
                                     the `sub` claim is the caller (principal)
    PYSERVICE_RATE_LIMIT_PER_MINUTE  calls per minute per principal (off when unset)
    PYSERVICE_METRICS_PORT           serve Prometheus /metrics over HTTP on this port
    PYSERVICE_TLS_CERT, PYSERVICE_TLS_KEY
                                     PEM files for TLS (plaintext when unset)
    PYSERVICE_DATABASE_URL           sqlite:///relative.db, sqlite:////absolute.db or
                                     postgresql://user:password@host:port/database
                                     (default: a SQLite file, store.default_database_url())
    PYSERVICE_REDIS_URL              redis://host:port/db: update streams across instances and
                                     the GetUser cache (both off when unset)
    PYSERVICE_PAGE_TOKEN_SECRET      64 or more hex digits signing page tokens; every
                                     instance behind one address needs the same (default:
                                     random per process, so tokens end with the process)
    PYSERVICE_PAGE_TOKEN_TTL_SECONDS how long a page token stays valid (default 3600)
    PYSERVICE_CACHE_TTL_SECONDS      how long Redis keeps a cached user (default 300, at
                                     least 30: longer than any read or write takes)
    PYSERVICE_LOCAL_CACHE            0 to turn off GetUser's in-memory cache, which the
                                     embedded store without Redis uses: turn it off when
                                     several processes share one SQLite file (default 1)
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from common.v1 import errors_pb2
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import interceptors, serve

from examples.userservice import page_tokens, passwords, store

DEFAULT_PORT = 50051
DEFAULT_CACHE_TTL_SECONDS = 300.0
MIN_CACHE_TTL_SECONDS = 30.0


@dataclass(frozen=True)
class ServiceConfig:
    """What the UserService itself needs, beside the server settings."""

    # URLs may hold passwords: kept out of repr() like the secret.
    database_url: str = field(repr=False)
    redis_url: str | None = field(default=None, repr=False)
    page_token_secret: bytes | None = field(default=None, repr=False)  # None: per process
    page_token_ttl_seconds: float = 3600.0
    cache_ttl_seconds: float = DEFAULT_CACHE_TTL_SECONDS
    local_cache: bool = True
    password_parameters: passwords.Parameters = field(
        default_factory=lambda: passwords.OWASP_PARAMETERS
    )
    # Only tests turn this on, to hash with cheap parameters.
    allow_weak_passwords_for_tests: bool = False


def service_config_from(environment: Mapping[str, str]) -> ServiceConfig:
    """ServiceConfig from the PYSERVICE_* variables (see the module docstring)."""
    secret_text = environment.get("PYSERVICE_PAGE_TOKEN_SECRET")
    database_url = environment.get("PYSERVICE_DATABASE_URL") or store.default_database_url()
    store.is_embedded(database_url)  # a ValueError naming what is wrong with the URL, now
    cache_ttl = _positive(environment, "PYSERVICE_CACHE_TTL_SECONDS", DEFAULT_CACHE_TTL_SECONDS)
    if cache_ttl < MIN_CACHE_TTL_SECONDS:
        raise ValueError(
            f"PYSERVICE_CACHE_TTL_SECONDS must be at least {MIN_CACHE_TTL_SECONDS:g}, longer "
            f"than any read or write takes, got {cache_ttl:g}"
        )
    local_cache = environment.get("PYSERVICE_LOCAL_CACHE", "1")
    if local_cache not in ("0", "1"):
        raise ValueError(f"PYSERVICE_LOCAL_CACHE must be 0 or 1, got {local_cache!r}")
    return ServiceConfig(
        database_url=database_url,
        redis_url=environment.get("PYSERVICE_REDIS_URL") or None,
        page_token_secret=_secret(secret_text) if secret_text else None,
        page_token_ttl_seconds=_positive(
            environment, "PYSERVICE_PAGE_TOKEN_TTL_SECONDS", page_tokens.DEFAULT_TTL_SECONDS
        ),
        cache_ttl_seconds=cache_ttl,
        local_cache=local_cache == "1",
    )


def server_settings_from(environment: Mapping[str, str]) -> serve.ServerSettings:
    """ServerSettings from the PYSERVICE_* variables (see the module docstring)."""
    chosen = interceptors.InterceptorSettings(tracing=interceptors.TracingInterceptor())
    secret = environment.get("PYSERVICE_JWT_SECRET")
    if secret:
        chosen.auth = interceptors.JwtAuthInterceptor(secret, algorithms=["HS256"])
    per_minute = _number(environment, "PYSERVICE_RATE_LIMIT_PER_MINUTE", float)
    if per_minute is not None:
        chosen.rate_limit = interceptors.RateLimitInterceptor(
            interceptors.RateLimit(per_minute=per_minute),
            detail_type=errors_pb2.RateLimitInfo,
        )
    metrics_port = _port(environment, "PYSERVICE_METRICS_PORT")
    if metrics_port is not None:
        chosen.metrics = interceptors.MetricsInterceptor()
    cert, key = environment.get("PYSERVICE_TLS_CERT"), environment.get("PYSERVICE_TLS_KEY")
    if bool(cert) != bool(key):  # never plaintext because half of TLS was given
        raise ValueError("PYSERVICE_TLS_CERT and PYSERVICE_TLS_KEY must be set together")
    port = _port(environment, "PYSERVICE_PORT")
    return serve.ServerSettings(
        address=f"127.0.0.1:{DEFAULT_PORT if port is None else port}",
        reflection=environment.get("PYSERVICE_REFLECTION") == "1",
        tls=serve.TlsFiles(Path(cert), Path(key)) if cert and key else None,
        errors=runtime.ErrorMap(
            validation_detail=errors_pb2.ValidationError,
            rate_limit_detail=errors_pb2.RateLimitInfo,
        ),
        interceptors=chosen,
        metrics_port=metrics_port,
    )


N = TypeVar("N", int, float)


def _number(environment: Mapping[str, str], name: str, kind: type[N]) -> N | None:
    """A numeric variable, None when unset; a ValueError naming it when it is not a number
    (the rest of the checking is the settings' own)."""
    text = environment.get(name)
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None


def _port(environment: Mapping[str, str], name: str) -> int | None:
    port = _number(environment, name, int)
    if port is not None and not 0 <= port <= 65535:
        raise ValueError(f"{name} must be a port number, 0 to 65535, got {port}")
    return port


def _positive(environment: Mapping[str, str], name: str, default: float) -> float:
    value = _number(environment, name, float)
    if value is None:
        return default
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return value


def _secret(text: str) -> bytes:
    try:
        secret = binascii.unhexlify(text.strip())
    except (binascii.Error, ValueError):
        raise ValueError("PYSERVICE_PAGE_TOKEN_SECRET must be hex digits") from None
    if len(secret) < page_tokens.MIN_SECRET_BYTES:
        raise ValueError(
            f"PYSERVICE_PAGE_TOKEN_SECRET must be at least {page_tokens.MIN_SECRET_BYTES} bytes"
            f" ({2 * page_tokens.MIN_SECRET_BYTES} hex digits)"
        )
    return secret
