"""One call builds a production grpc.aio server: services, interceptors, health, reflection,
keepalive, message limits, TLS, and a graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from protoc_gen_pyservice.runtime.errors import NO_ERROR_MAP, ErrorMap
from protoc_gen_pyservice.runtime.interceptors import (
    DeadlineInterceptor,
    HandlerInterceptor,
    InterceptorChain,
    InterceptorSettings,
    JwtAuthInterceptor,
    interceptors_from,
)
from protoc_gen_pyservice.runtime.server import registered_methods, registered_services

logger = logging.getLogger("protoc_gen_pyservice.serve")

MiB = 1024 * 1024

# Keepalive the source document's clients can live with: they ping every 10 s (Go) or 30 s
# (Node) even without calls, so the server must accept pings 5 s apart without calls rather
# than answer them with GOAWAY (too_many_pings); it pings idle clients itself every 30 s.
# The C-core name of that minimum is "grpc.http2.min_ping_interval_without_data_ms"
# (GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS): grpc ignores names it does not
# know, and under its 5 min default an idle stream pinged every 30 s got GOAWAY after minutes.
# Pings closer than 5 s still count as strikes (GOAWAY after the third, grpc's default).
# grpc 1.85 waits ping_timeout_ms (default 1 min) for a keepalive ping's ack, not
# keepalive_timeout_ms: both are 10 s, so a dead client is let go 40 s after it went quiet.
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.ping_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.max_connection_idle_ms", 5 * 60_000),
)

KiB = 1024
# Transport limits, each chosen so a peer cannot hold more than its share:
# - 100 streams at once per connection (the usual HTTP/2 default): a connection cannot park
#   thousands of calls; generated clients resend unary and server-streaming calls the limit
#   refused unseen, so a burst from one client still succeeds. A call waits at most
#   runtime.server.REQUEST_TIMEOUT_SECONDS for its request message.
# - 32 KiB of request metadata, soft and hard limit alike: bearer tokens up to 16 KiB always
#   pass (between gRPC's default 8 KiB soft and 16 KiB hard limits, calls fail at random).
MAX_CONCURRENT_STREAMS = 100
MAX_METADATA_BYTES = 32 * KiB
TRANSPORT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
    ("grpc.max_metadata_size", MAX_METADATA_BYTES),
    ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
)

Registration = tuple[Callable[..., None], Any]  # (add_foo_to_server, servicer)


@dataclass
class TlsFiles:
    """PEM files; `client_ca` turns on mutual TLS (clients must present a certificate)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        root = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=root,
            require_client_auth=root is not None,
        )


@dataclass
class ServerSettings:
    address: str = "127.0.0.1:50051"
    reflection: bool = False  # on in development, off by default in production
    tls: TlsFiles | None = None
    max_message_bytes: int = 4 * MiB
    # On shutdown: unary calls in flight get this long to finish.
    grace_seconds: float = 10.0
    # On shutdown: response streams get this long (at most the grace) to end by themselves,
    # seeing runtime.shutting_down() set; the rest end with UNAVAILABLE.
    stream_grace_seconds: float = 1.0
    # Prometheus /metrics over HTTP on this port (with interceptors.metrics set); off when None.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    errors: ErrorMap = NO_ERROR_MAP
    interceptors: InterceptorSettings = field(default_factory=InterceptorSettings)
    # More grpc server options; one the builder also sets takes the value given here.
    extra_options: Sequence[tuple[str, Any]] = ()


@dataclass
class Service:
    """A built server, its bound port, and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: Any
    settings: ServerSettings
    service_names: list[str]
    interceptors: list[HandlerInterceptor]
    chain: InterceptorChain

    async def start(self) -> None:
        if self.settings.metrics_port is not None:
            from prometheus_client import start_http_server

            registry = getattr(self.settings.interceptors.metrics, "registry", None)
            start_http_server(
                self.settings.metrics_port,
                addr=self.settings.metrics_host,
                **({"registry": registry} if registry is not None else {}),
            )
        await self.server.start()
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        logger.info("serving %s on port %d", ", ".join(self.service_names), self.port)

    async def stop(self, grace: float | None = None) -> None:
        """Flip health to NOT_SERVING (watchers see it at once), refuse new calls, tell
        handlers through runtime.shutting_down(), give response streams
        `stream_grace_seconds` to end by themselves and end the rest with UNAVAILABLE, let
        unary calls in flight finish within the grace period, then stop."""
        grace = self.settings.grace_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()
        self.chain.begin_shutdown()
        stopped = asyncio.ensure_future(self.server.stop(grace))
        await self.chain.end_streams(min(grace, self.settings.stream_grace_seconds))
        await stopped

    async def serve_until_signal(self) -> None:
        """Start, then stop gracefully on SIGTERM or SIGINT."""
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stopping.set)
        await self.start()
        try:
            await stopping.wait()
            logger.info(
                "shutting down: %.1fs grace for calls in flight", self.settings.grace_seconds
            )
            await self.stop()
        finally:
            for signal_number in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signal_number)


def build_server(registrations: Iterable[Registration], settings: ServerSettings) -> Service:
    """A grpc.aio server with the generated services, interceptors, health and reflection."""
    _check(settings)
    interceptors = interceptors_from(settings.interceptors)
    # Always a chain, even of no hooks: it is what finishes every call and ends streams.
    chain = InterceptorChain(interceptors)
    # grpc takes the first of options given twice: the caller's extra options come first.
    options: list[tuple[str, Any]] = [
        *settings.extra_options,
        *KEEPALIVE_OPTIONS,
        *TRANSPORT_OPTIONS,
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    server = grpc.aio.server(interceptors=[chain], options=options)
    for register, servicer in registrations:
        register(servicer, server, errors=settings.errors)
    service_names = list(registered_services(server))
    _configure_policies(server, interceptors)
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        from grpc_reflection.v1alpha import reflection

        # No pool of our own: the default one holds every type this process imported, so
        # reflection also serves the error details servers send (google.rpc.Status and
        # error_details, which runtime.errors imports, and the application's own types) for
        # clients that decode details through it. buf curl 1.75 never asks: it decodes only
        # the types built into it and prints the others as base64.
        reflection.enable_server_reflection(
            [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
    if settings.tls is not None:
        port = server.add_secure_port(settings.address, settings.tls.credentials())
    else:
        port = server.add_insecure_port(settings.address)
    return Service(server, port, health_servicer, settings, service_names, interceptors, chain)


def _check(settings: ServerSettings) -> None:
    """Settings a server cannot run with are an error now, not a failure on every call."""
    if not 0 < settings.max_message_bytes <= 2**31 - 1:
        raise ValueError(f"max_message_bytes must be in 1..2**31-1: {settings.max_message_bytes}")
    for name in ("grace_seconds", "stream_grace_seconds"):
        value = getattr(settings, name)
        if not (isinstance(value, int | float) and 0 <= value < float("inf")):
            raise ValueError(f"{name} must be a finite number of seconds >= 0: {value!r}")


def _configure_policies(server: grpc.aio.Server, interceptors: Sequence[Any]) -> None:
    """What the protos declared per method: public RPCs, roles, default server deadlines."""
    methods = registered_methods(server)
    for interceptor in interceptors:
        if isinstance(interceptor, JwtAuthInterceptor):
            interceptor.add_public(path for path, spec in methods.items() if spec.public)
            interceptor.add_roles({p: spec.roles for p, spec in methods.items() if spec.roles})
        elif isinstance(interceptor, DeadlineInterceptor):
            interceptor.set_timeouts(
                {p: spec.timeout for p, spec in methods.items() if spec.timeout}
            )
