"""Server interceptors for grpc.aio: request ids, access logs, auth, rate limits, metrics,
tracing and default deadlines. Each wraps unary and streaming handlers alike, once per method.

Order them outermost first: tracing, metrics, request id, access log, auth, rate limit,
deadline (the server builder does). Status mapping and validation live in the handlers
themselves (runtime.server), so every RPC answers with a proper status whatever runs here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from protoc_gen_pyservice.runtime import context as call_context
from protoc_gen_pyservice.runtime.errors import (
    DeadlineExceeded,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from protoc_gen_pyservice.runtime.server import abort

Context = grpc.aio.ServicerContext[Any, Any]
# Never behind auth or rate limits: probes and tooling must always get through.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

access_log = logging.getLogger("protoc_gen_pyservice.access")


def status_of(error: BaseException | None, context: Context) -> grpc.StatusCode:
    """The status an RPC ended with, from what its handler raised."""
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code() if isinstance(error, grpc.aio.AbortError) else None
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN


class HandlerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Runs enter() before and exit() after every RPC; wrapped handlers are cached per method.

    enter() may abort the call (auth, rate limits); its return value reaches exit().
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def enter(self, method: str, context: Context) -> Any:
        return None

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        return None

    def prepare(self, method: str, streaming: bool) -> None:
        """Called once per method before its first call (labels, tables)."""

    # Called for every message a server stream sends; None when the interceptor has no use.
    on_message: Callable[[Any], None] | None = None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = (handler, self._wrap(handler, method))
            self._wrapped[method] = cached
        return cached[1]

    def _wrap(self, handler: Any, method: str) -> Any:
        self.prepare(method, streaming=handler.response_streaming)
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self.wrap_unary(handler.unary_unary, method))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=self.wrap_unary(handler.stream_unary, method))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self.wrap_stream(handler.unary_stream, method))
        return handler._replace(stream_stream=self.wrap_stream(handler.stream_stream, method))

    def wrap_unary(
        self, behavior: Callable[[Any, Context], Awaitable[Any]], method: str
    ) -> Callable[[Any, Context], Awaitable[Any]]:
        async def unary(request: Any, context: Context) -> Any:
            state = await self.enter(method, context)
            try:
                response = await behavior(request, context)
            except BaseException as error:
                self.exit(method, context, state, error)
                raise
            self.exit(method, context, state, None)
            return response

        return unary

    def wrap_stream(
        self, behavior: Callable[[Any, Context], AsyncIterator[Any]], method: str
    ) -> Callable[[Any, Context], AsyncIterator[Any]]:
        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            state = await self.enter(method, context)
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as error:
                self.exit(method, context, state, error)
                raise
            self.exit(method, context, state, None)

        return stream


def _header(context: Context, name: str) -> str | bytes | None:
    """One request header; a scan of the few pairs a call carries beats building a dict."""
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value
    return None


class RequestIdInterceptor(HandlerInterceptor):
    """Takes `x-request-id` from the call (or makes one), for handlers, logs and the reply."""

    async def enter(self, method: str, context: Context) -> Any:
        given = _header(context, call_context.REQUEST_ID_HEADER)
        request_id = given if isinstance(given, str) and 0 < len(given) <= 128 else None
        request_id = request_id or call_context.new_request_id()
        context.set_trailing_metadata(((call_context.REQUEST_ID_HEADER, request_id),))
        return call_context.set_request_id(request_id)

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        call_context.reset_request_id(state)


class AccessLogInterceptor(HandlerInterceptor):
    """One structured line per call: method, status, duration, request id, peer. Never the
    request, its metadata or tokens."""

    def __init__(self, logger: logging.Logger = access_log) -> None:
        super().__init__()
        self._logger = logger

    async def enter(self, method: str, context: Context) -> Any:
        return time.perf_counter()

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        code = status_of(error, context)
        self._logger.info(
            "rpc %s %s %.1fms request_id=%s peer=%s",
            method,
            code.name,
            (time.perf_counter() - state) * 1000,
            call_context.request_id(),
            context.peer(),
            extra={
                "grpc_method": method,
                "grpc_code": code.name,
                "duration_ms": (time.perf_counter() - state) * 1000,
                "request_id": call_context.request_id(),
                "peer": context.peer(),
            },
        )


class JwtAuthInterceptor(HandlerInterceptor):
    """Bearer JWTs from `authorization`, verified with PyJWT; claims reach handlers through
    runtime.claims(). Health and reflection stay open, as do the methods in `public`.

    Missing or bad token: UNAUTHENTICATED. A role `roles` requires for a method and the
    token's `roles_claim` lacks: PERMISSION_DENIED.
    """

    def __init__(
        self,
        key: Any,
        *,
        algorithms: Iterable[str] = ("HS256",),
        audience: str | None = None,
        issuer: str | None = None,
        leeway_seconds: float = 30.0,
        public: Iterable[str] = (),
        roles: Mapping[str, Iterable[str]] | None = None,
        roles_claim: str = "roles",
        cache_size: int = 10_000,
    ) -> None:
        import jwt  # only servers that use auth need PyJWT

        super().__init__()
        self._jwt = jwt
        self._algorithms = list(algorithms)
        families = {algorithm[:2] for algorithm in self._algorithms}
        if "none" in (a.lower() for a in self._algorithms):
            raise ValueError("the `none` algorithm would accept unsigned tokens")
        if "HS" in families and len(families) > 1:
            # One key serving as an HMAC secret and a public key invites algorithm confusion.
            raise ValueError("do not mix HMAC (HS*) and public-key algorithms for one key")
        self._key = key
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway_seconds
        self._public = set(public)
        self._roles: dict[str, frozenset[str]] = {}
        self.add_roles(roles or {})
        self._roles_claim = roles_claim
        required = ["exp"] + (["aud"] if audience else []) + (["iss"] if issuer else [])
        self._options: Any = {"require": required}
        self._cache: OrderedDict[str, tuple[Mapping[str, Any], float]] = OrderedDict()
        self._cache_size = cache_size

    def _verified(self, token: str) -> Mapping[str, Any] | None:
        """Claims of a token this server verified before and that has not expired since.

        Signature checks dominate the cost of a call; a client reuses its token for many
        calls, so the verdict is kept (a bounded table) and only the expiry re-checked.
        """
        cached = self._cache.get(token)
        if cached is None:
            return None
        claims, expires = cached
        if time.time() > expires + self._leeway:
            del self._cache[token]
            return None
        self._cache.move_to_end(token)
        return claims

    def _remember(self, token: str, claims: Mapping[str, Any]) -> None:
        self._cache[token] = (claims, float(claims["exp"]))
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def add_public(self, methods: Iterable[str]) -> None:
        """Methods callable without a token (`(pyservice.method).public = true`)."""
        self._public.update(methods)

    def add_roles(self, roles: Mapping[str, Iterable[str]]) -> None:
        """Roles a method requires (`(pyservice.method).roles`), by method path."""
        for method, names in roles.items():
            self._roles[method] = self._roles.get(method, frozenset()) | frozenset(names)

    async def enter(self, method: str, context: Context) -> Any:
        if method in self._public or method.startswith(OPEN_SERVICES):
            return call_context.set_claims(None)
        header = _header(context, "authorization")
        if not isinstance(header, str) or not header.lower().startswith("bearer "):
            await abort(context, Unauthenticated("missing bearer token"))
        token = header[7:].strip()
        claims = self._verified(token)
        if claims is None:
            try:
                claims = self._jwt.decode(
                    token,
                    self._key,
                    algorithms=self._algorithms,
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options=self._options,
                )
            except self._jwt.PyJWTError as error:
                await abort(context, Unauthenticated(f"invalid bearer token: {error}"))
            self._remember(token, claims)
        needed = self._roles.get(method)
        if needed:
            granted = claims.get(self._roles_claim) or ()
            missing = needed - set(granted if isinstance(granted, list) else [granted])
            if missing:
                await abort(context, PermissionDenied(f"missing role {sorted(missing)[0]!r}"))
        return call_context.set_claims(claims)

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        call_context.reset_claims(state)


@dataclass(frozen=True)
class RateLimit:
    """`per_minute` calls on average, bursts of up to `burst` (default: per_minute)."""

    per_minute: float
    burst: float | None = None

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else self.per_minute


class TokenBuckets:
    """Token buckets keyed by principal, at most `max_keys` of them: the least recently used
    key is evicted first, so a flood of distinct callers cannot grow the table."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: tuple[str, str], limit: RateLimit, now: float) -> float:
        """0 when a token was taken, else the seconds until one will be there."""
        rate = limit.per_minute / 60.0
        tokens, last = self._buckets.pop(key, (limit.capacity, now))
        tokens = min(limit.capacity, tokens + (now - last) * rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


class RateLimitInterceptor(HandlerInterceptor):
    """Per-principal token buckets: the JWT subject when auth ran, else the peer address.

    Over the limit: RESOURCE_EXHAUSTED with google.rpc.RetryInfo, and `detail_type` (a message
    shaped like common.v1.RateLimitInfo) when given.
    """

    def __init__(
        self,
        default: RateLimit | None,
        *,
        per_method: Mapping[str, RateLimit] | None = None,
        max_keys: int = 10_000,
        detail_type: type[Message] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._default = default
        self._per_method = dict(per_method or {})
        self.buckets = TokenBuckets(max_keys)
        self._detail_type = detail_type
        self._clock = clock

    async def enter(self, method: str, context: Context) -> Any:
        limit = self._per_method.get(method, self._default)
        if limit is None or method.startswith(OPEN_SERVICES):
            return None
        claims = call_context.claims()
        subject = claims.get("sub") if claims else None
        principal = f"sub:{subject}" if subject else f"peer:{_peer_host(context.peer())}"
        wait = self.buckets.take((principal, method), limit, self._clock())
        if wait:
            seconds = max(1, int(wait + 0.999))
            details: list[Message] = [
                error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds))
            ]
            if self._detail_type is not None:
                details.append(
                    self._detail_type(
                        requests_per_unit=int(limit.per_minute),
                        unit="minute",
                        retry_after_seconds=seconds,
                    )
                )
            await abort(context, ResourceExhausted(f"rate limit exceeded for {method}", details))
        return None


def _peer_host(peer: str) -> str:
    """`ipv4:127.0.0.1:5555` -> `ipv4:127.0.0.1`: one bucket per host, not per connection."""
    host, _, port = peer.rpartition(":")
    return host if port.isdigit() else peer


class DeadlineInterceptor(HandlerInterceptor):
    """A server-side deadline per method for calls that came without one; the handler is
    cancelled when it passes, and the call answers DEADLINE_EXCEEDED."""

    def __init__(
        self, timeouts: Mapping[str, float] | None = None, default: float | None = None
    ) -> None:
        super().__init__()
        self._timeouts = dict(timeouts or {})
        self._default = default

    def set_timeouts(self, timeouts: Mapping[str, float]) -> None:
        self._timeouts.update(timeouts)

    def limit(self, method: str, context: Context) -> float | None:
        if context.time_remaining() is not None:
            return None  # the client's deadline governs, and grpc enforces it
        return self._timeouts.get(method, self._default)


class InterceptorChain(HandlerInterceptor):
    """Several interceptors run as one: one handler lookup and one wrapper per call instead
    of a layer each. enter() runs in order, exit() in reverse, and the handler runs under the
    deadline interceptor's limit, if there is one."""

    def __init__(self, interceptors: Iterable[HandlerInterceptor]) -> None:
        super().__init__()
        self.interceptors = list(interceptors)
        self._hooks = [i for i in self.interceptors if not isinstance(i, DeadlineInterceptor)]
        self._deadline = next(
            (i for i in self.interceptors if isinstance(i, DeadlineInterceptor)), None
        )
        # (position in the hooks, callback) of the interceptors that count stream messages
        self._message_hooks = [
            (index, hook.on_message)
            for index, hook in enumerate(self._hooks)
            if hook.on_message is not None
        ]

    def prepare(self, method: str, streaming: bool) -> None:
        for interceptor in self.interceptors:
            interceptor.prepare(method, streaming)

    async def _enter_all(self, method: str, context: Context, states: list[Any]) -> None:
        for hook in self._hooks:
            states.append(await hook.enter(method, context))

    def _exit_all(
        self, method: str, context: Context, states: list[Any], error: BaseException | None
    ) -> None:
        entered = self._hooks[: len(states)]
        for hook, state in zip(reversed(entered), reversed(states), strict=True):
            hook.exit(method, context, state, error)

    def wrap_unary(
        self, behavior: Callable[[Any, Context], Awaitable[Any]], method: str
    ) -> Callable[[Any, Context], Awaitable[Any]]:
        deadline = self._deadline

        async def unary(request: Any, context: Context) -> Any:
            states: list[Any] = []
            try:
                await self._enter_all(method, context, states)
                limit = deadline.limit(method, context) if deadline is not None else None
                if limit is None:
                    response = await behavior(request, context)
                else:
                    try:
                        async with asyncio.timeout(limit):
                            response = await behavior(request, context)
                    except TimeoutError:
                        await abort(context, DeadlineExceeded(f"{method} took over {limit}s"))
            except BaseException as error:
                self._exit_all(method, context, states, error)
                raise
            self._exit_all(method, context, states, None)
            return response

        return unary

    def wrap_stream(
        self, behavior: Callable[[Any, Context], AsyncIterator[Any]], method: str
    ) -> Callable[[Any, Context], AsyncIterator[Any]]:
        deadline = self._deadline
        message_hooks = self._message_hooks

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            states: list[Any] = []
            try:
                await self._enter_all(method, context, states)
                limit = deadline.limit(method, context) if deadline is not None else None
                try:
                    async with asyncio.timeout(limit):
                        async for response in behavior(request, context):
                            for index, on_message in message_hooks:
                                on_message(states[index])
                            yield response
                except TimeoutError:
                    await abort(context, DeadlineExceeded(f"{method} took over {limit}s"))
            except BaseException as error:
                self._exit_all(method, context, states, error)
                raise
            self._exit_all(method, context, states, None)

        return stream


@dataclass
class _MethodMetrics:
    started: Any
    in_flight: Any
    handling: Any
    sent: Any
    handled: dict[grpc.StatusCode, Any]


@dataclass
class _Metrics:
    started: Any
    handled: Any
    handling: Any
    in_flight: Any
    sent: Any


class MetricsInterceptor(HandlerInterceptor):
    """Prometheus counters and histograms per method and status (grpc_server_started_total,
    grpc_server_handled_total, grpc_server_handling_seconds, in flight, messages sent)."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        super().__init__()
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        registry = registry or REGISTRY
        self.registry = registry
        self.metrics = _Metrics(
            started=Counter(
                "grpc_server_started_total", "RPCs started.", labels, registry=registry
            ),
            handled=Counter(
                "grpc_server_handled_total",
                "RPCs completed, by status code.",
                [*labels, "grpc_code"],
                registry=registry,
            ),
            handling=Histogram(
                "grpc_server_handling_seconds",
                "Time to handle an RPC.",
                labels,
                registry=registry,
            ),
            in_flight=Gauge(
                "grpc_server_in_flight", "RPCs being handled.", labels, registry=registry
            ),
            sent=Counter(
                "grpc_server_msg_sent_total",
                "Stream messages sent.",
                labels,
                registry=registry,
            ),
        )
        self._children: dict[str, _MethodMetrics] = {}

    def prepare(self, method: str, streaming: bool) -> None:
        service, _, name = method.lstrip("/").partition("/")
        labels = ("server_stream" if streaming else "unary", service, name)
        metrics = self.metrics
        # Labelled children looked up once per method, not on every call.
        self._children[method] = _MethodMetrics(
            started=metrics.started.labels(*labels),
            in_flight=metrics.in_flight.labels(*labels),
            handling=metrics.handling.labels(*labels),
            sent=metrics.sent.labels(*labels),
            handled={code: metrics.handled.labels(*labels, code.name) for code in grpc.StatusCode},
        )

    async def enter(self, method: str, context: Context) -> Any:
        children = self._children[method]
        children.started.inc()
        children.in_flight.inc()
        return time.perf_counter(), children

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        started, children = state
        children.in_flight.dec()
        children.handled[status_of(error, context)].inc()
        children.handling.observe(time.perf_counter() - started)

    def _message_sent(self, state: Any) -> None:
        state[1].sent.inc()

    on_message = _message_sent


class TracingInterceptor(HandlerInterceptor):
    """An OpenTelemetry SERVER span per RPC with the rpc.* attributes, continuing the W3C
    trace context the caller sent in metadata. A no-op unless an SDK is configured."""

    def __init__(self, tracer_provider: Any = None) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry import propagate, trace

        super().__init__()
        self._trace = trace
        self._context = otel_context
        self._propagate = propagate
        self._explicit_provider = tracer_provider is not None
        self._tracer = trace.get_tracer("protoc_gen_pyservice", tracer_provider=tracer_provider)

    def _enabled(self) -> bool:
        # Until an SDK installs a tracer provider the global one is a proxy that records
        # nothing: skip the whole span then, rather than build one per call for nothing.
        if self._explicit_provider:
            return True
        return not isinstance(self._trace.get_tracer_provider(), self._trace.ProxyTracerProvider)

    async def enter(self, method: str, context: Context) -> Any:
        if not self._enabled():
            return None
        carrier = {
            key: value
            for key, value in context.invocation_metadata() or ()
            if isinstance(value, str)
        }
        parent = self._propagate.extract(carrier)
        service, _, name = method.lstrip("/").partition("/")
        span = self._tracer.start_span(
            method.lstrip("/"),
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )
        token = self._context.attach(self._trace.set_span_in_context(span, parent))
        return span, token

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        if state is None:
            return
        span, token = state
        code = status_of(error, context)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code is not grpc.StatusCode.OK:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, code.name))
        span.end()
        self._context.detach(token)


@dataclass
class InterceptorSettings:
    """What the server builder turns into interceptors (each optional)."""

    request_ids: bool = True
    access_log: bool = True
    auth: JwtAuthInterceptor | None = None
    rate_limit: RateLimitInterceptor | None = None
    metrics: MetricsInterceptor | None = None
    tracing: TracingInterceptor | None = None
    # Server-side default deadlines, from (pyservice.method).timeout, for calls without one.
    deadlines: bool = True


def interceptors_from(settings: InterceptorSettings) -> list[HandlerInterceptor]:
    """The interceptors in the order they must run, outermost first (run them as one
    InterceptorChain: the server builder does)."""
    chain: list[HandlerInterceptor] = []
    if settings.tracing is not None:
        chain.append(settings.tracing)
    if settings.metrics is not None:
        chain.append(settings.metrics)
    if settings.request_ids:
        chain.append(RequestIdInterceptor())
    if settings.access_log:
        chain.append(AccessLogInterceptor())
    if settings.auth is not None:
        chain.append(settings.auth)
    if settings.rate_limit is not None:
        chain.append(settings.rate_limit)
    if settings.deadlines:
        chain.append(DeadlineInterceptor())
    return chain
