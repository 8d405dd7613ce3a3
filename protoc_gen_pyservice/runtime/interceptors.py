"""Server interceptors for grpc.aio: request ids, access logs, auth, rate limits, metrics,
tracing and default deadlines. Each wraps unary and streaming handlers alike, once per method.

Order them outermost first: tracing, metrics, request id, access log, auth, rate limit,
deadline (the server builder does), and run them as one InterceptorChain. Status mapping and
validation live in the handlers themselves (runtime.server), so every RPC answers with a
proper status whatever runs here.

Whatever the peer does, the chain finishes every call exactly once, in the call's own task:
it drives response streams itself (so a vanished or stalled reader cancels the handler where
it stands, and the handler's generator is closed there, not later by the garbage collector),
and reads what the hooks need from the context when the call starts.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import grpc.aio
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc._cython import cygrpc  # type: ignore[attr-defined]
from protoc_gen_pyservice.runtime import bounds, timeouts
from protoc_gen_pyservice.runtime import context as call_context
from protoc_gen_pyservice.runtime.errors import (
    DeadlineExceeded,
    PermissionDenied,
    ResourceExhausted,
    ServiceError,
    Unauthenticated,
    Unavailable,
    internal_error,
)
from protoc_gen_pyservice.runtime.server import abort, close_responses

Context = grpc.aio.ServicerContext[Any, Any]
# Never behind auth or rate limits: probes and tooling must always get through.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

access_log = logging.getLogger("protoc_gen_pyservice.access")
auth_log = logging.getLogger("protoc_gen_pyservice.auth")
logger = logging.getLogger("protoc_gen_pyservice.interceptors")


def status_of(error: BaseException | None, context: Context) -> grpc.StatusCode:
    """The status an RPC ended with, from what its handler raised. Reads only what the
    context keeps in Python, so it is safe after the call ended."""
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, (asyncio.CancelledError, *_CALL_ENDED)):
        # grpc cancels the call's task when the client goes away or its deadline passes.
        if context.time_remaining() == 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.CANCELLED
    code = context.code() if isinstance(error, grpc.aio.AbortError) else None
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN


class HandlerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Runs enter() before and exit() after every RPC.

    enter() refuses a call by raising a ServiceError (auth, rate limits: the chain answers
    with it); its return value reaches exit(). It may be a coroutine function when it must
    wait for something; the built-in ones are plain functions, which cost less per call.
    exit() runs exactly once per entered call, with the exception the call ended with (None when it
    succeeded), and must not call into the context beyond what status_of() reads: the call may
    be over. Used alone, an interceptor runs as a chain of one.
    """

    def enter(self, method: str, context: Context) -> Any:
        return None

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        return None

    def prepare(self, method: str, streaming: bool) -> None:
        """Called once per method before its first call (labels, tables)."""

    # Called for every message a server stream sends; None when the interceptor has no use.
    on_message: Callable[[Any], None] | None = None

    _alone: InterceptorChain | None = None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        if self._alone is None:
            self._alone = InterceptorChain([self])
        return await self._alone.intercept_service(continuation, handler_call_details)


def _header(context: Context, name: str) -> str | bytes | None:
    """One request header; a scan of the few pairs a call carries beats building a dict."""
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value
    return None


class RequestIdInterceptor(HandlerInterceptor):
    """Takes `x-request-id` from the call (or makes one), for handlers, logs and the reply."""

    def enter(self, method: str, context: Context) -> Any:
        given = _header(context, call_context.REQUEST_ID_HEADER)
        request_id = bounds.request_id_or_none(given) or call_context.new_request_id()
        trailers = ((call_context.REQUEST_ID_HEADER, request_id),)
        context.set_trailing_metadata(trailers)
        return call_context.set_request_id(request_id), trailers

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        token, trailers = state
        call_context.reset_request_id(token)
        if error is None:
            # A handler that set trailers of its own replaced ours: add the id back.
            current = context.trailing_metadata()
            if current is not trailers:
                kept = [pair for pair in current if pair[0] != call_context.REQUEST_ID_HEADER]
                context.set_trailing_metadata((*kept, *trailers))


class AccessLogInterceptor(HandlerInterceptor):
    """One structured line per call: method, status, duration, request id, peer. Never the
    request, its metadata or tokens."""

    def __init__(self, logger: logging.Logger = access_log) -> None:
        super().__init__()
        self._logger = logger

    def enter(self, method: str, context: Context) -> Any:
        # The peer is read now: after the call ends its address is gone with it.
        if not self._logger.isEnabledFor(logging.INFO):
            return None
        return time.perf_counter(), context.peer()

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        if state is None:
            return
        started, peer = state
        code = status_of(error, context)
        duration_ms = (time.perf_counter() - started) * 1000
        request_id = call_context.request_id()
        peer = bounds.log_text(peer)
        self._logger.info(
            "rpc %s %s %.1fms request_id=%s peer=%s",
            method,
            code.name,
            duration_ms,
            request_id,
            peer,
            extra={
                "grpc_method": method,
                "grpc_code": code.name,
                "duration_ms": duration_ms,
                "request_id": request_id,
                "peer": peer,
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

    def _remember(self, token: str, claims: Mapping[str, Any], expires: float) -> None:
        self._cache[token] = (claims, expires)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _decode(self, token: str) -> tuple[Mapping[str, Any], float] | None:
        """The claims of a token and its expiry, or None (the reason logged here, never told
        to the caller: PyJWT's text describes the parser, not the caller's mistake)."""
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
            expires = float(claims["exp"])
            if not math.isfinite(expires):
                raise ValueError("exp is not a finite number")
        except Exception as error:  # whatever a crafted token makes the parser raise
            auth_log.info(
                "rejected bearer token: %s: %s request_id=%s",
                type(error).__name__,
                bounds.log_text(str(error)[:200]),
                call_context.request_id(),
            )
            return None
        return claims, expires

    def add_public(self, methods: Iterable[str]) -> None:
        """Methods callable without a token (`(pyservice.method).public = true`)."""
        self._public.update(methods)

    def add_roles(self, roles: Mapping[str, Iterable[str]]) -> None:
        """Roles a method requires (`(pyservice.method).roles`), by method path."""
        for method, names in roles.items():
            self._roles[method] = self._roles.get(method, frozenset()) | frozenset(names)

    def enter(self, method: str, context: Context) -> Any:
        if method in self._public or method.startswith(OPEN_SERVICES):
            return call_context.set_claims(None)
        header = _header(context, "authorization")
        if not isinstance(header, str) or not header.lower().startswith("bearer "):
            raise Unauthenticated("missing bearer token")
        token = header[7:].strip()
        claims = self._verified(token)
        if claims is None:
            decoded = self._decode(token)
            if decoded is None:
                raise Unauthenticated("invalid bearer token")
            claims, expires = decoded
            self._remember(token, claims, expires)
        needed = self._roles.get(method)
        if needed:
            missing = needed - _roles_of(claims.get(self._roles_claim))
            if missing:
                raise PermissionDenied(f"missing role {sorted(missing)[0]!r}")
        return call_context.set_claims(claims)

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        call_context.reset_claims(state)


def _roles_of(claim: object) -> frozenset[str]:
    """The roles a token's claim grants: a string or a list of strings; any other shape
    grants none (so the call is refused for the role it lacks, not failed)."""
    if isinstance(claim, str):
        return frozenset((claim,))
    if isinstance(claim, list) and all(isinstance(role, str) for role in claim):
        return frozenset(claim)
    return frozenset()


# Above a billion calls a minute (16 million a second) a limit is a typo, not a limit; below
# one call a day it is a way of switching a method off, which is not what limits are for.
MAX_RATE_PER_MINUTE = 1e9
MIN_RATE_PER_MINUTE = 1 / 1440


@dataclass(frozen=True)
class RateLimit:
    """`per_minute` calls on average (fractions allowed: 0.5 is one call every two minutes),
    bursts of up to `burst` calls (default: per_minute, and at least one call).

    Checked when built: a rate that is not a number from MIN_RATE_PER_MINUTE (one a day) to
    MAX_RATE_PER_MINUTE, or a burst below one call, is a ValueError.
    """

    per_minute: float
    burst: float | None = None

    def __post_init__(self) -> None:
        if not (
            isinstance(self.per_minute, int | float)
            and MIN_RATE_PER_MINUTE <= self.per_minute <= MAX_RATE_PER_MINUTE
        ):
            raise ValueError(
                f"rate limit per_minute must be a number from {MIN_RATE_PER_MINUTE:.6g} "
                f"(one a day) to {MAX_RATE_PER_MINUTE:g}, got {self.per_minute!r}"
            )
        if self.burst is not None and not (
            isinstance(self.burst, int | float) and 1 <= self.burst <= MAX_RATE_PER_MINUTE
        ):
            raise ValueError(
                f"rate limit burst must be a number in [1, {MAX_RATE_PER_MINUTE:g}], "
                f"got {self.burst!r}"
            )

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else max(1.0, self.per_minute)

    def as_unit(self) -> tuple[int, str]:
        """The limit as a whole number of calls per unit, for common.v1.RateLimitInfo: the
        smallest unit in which it is at least one call (0.5/minute is 30/hour)."""
        for unit, minutes in (("minute", 1), ("hour", 60)):
            count = self.per_minute * minutes
            if count >= 1:
                return int(count), unit
        return int(self.per_minute * 1440 + 1e-9), "day"  # one a day at least, when built


class TokenBuckets:
    """Token buckets keyed by principal, at most `max_keys` of them: the least recently used
    key is evicted first, so a flood of distinct callers cannot grow the table."""

    def __init__(self, max_keys: int = 10_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
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
    """Token buckets per principal: the JWT subject when auth ran, else the peer's address.

    One bucket per principal covers every method under `default`; a method listed in
    `per_method` has its own limit and its own bucket per principal. Over the limit:
    RESOURCE_EXHAUSTED with google.rpc.RetryInfo (when a token will be there), and
    `detail_type` (a message shaped like common.v1.RateLimitInfo) when given.
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
        for limit in (default, *(per_method or {}).values()):
            if limit is not None and not isinstance(limit, RateLimit):
                raise TypeError(f"rate limits must be RateLimit objects, got {limit!r}")
        self._default = default
        self._per_method = dict(per_method or {})
        self.buckets = TokenBuckets(max_keys)
        self._detail_type = detail_type
        self._clock = clock

    def enter(self, method: str, context: Context) -> Any:
        if method.startswith(OPEN_SERVICES):
            return None
        limit = self._per_method.get(method)
        scope = method
        if limit is None:
            limit, scope = self._default, ""
            if limit is None:
                return None
        claims = call_context.claims()
        subject = claims.get("sub") if claims else None
        principal = f"sub:{subject}" if subject else f"peer:{_peer_host(context.peer())}"
        wait = self.buckets.take((principal, scope), limit, self._clock())
        if wait:
            seconds = math.ceil(wait)
            details: list[Message] = [
                error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds))
            ]
            if self._detail_type is not None:
                count, unit = limit.as_unit()
                details.append(
                    self._detail_type(
                        requests_per_unit=count, unit=unit, retry_after_seconds=seconds
                    )
                )
            raise ResourceExhausted("rate limit exceeded", details)
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


class InterceptorChain(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Several interceptors run as one: one handler lookup and one wrapper per call instead
    of a layer each. enter() runs in order, exit() in reverse, and the handler runs under the
    deadline interceptor's limit, if there is one.

    The chain also owns what no single hook can do: it finishes every call exactly once in
    the call's own task (see the module docstring), answers INTERNAL (never UNKNOWN) when a
    hook itself fails, tells handlers when the server begins to shut down
    (runtime.shutting_down()), and ends the server streams still open then (end_streams()).
    """

    def __init__(self, interceptors: Iterable[HandlerInterceptor]) -> None:
        self.interceptors = list(interceptors)
        self._hooks = [i for i in self.interceptors if not isinstance(i, DeadlineInterceptor)]
        self._deadline = next(
            (i for i in self.interceptors if isinstance(i, DeadlineInterceptor)), None
        )
        # Bound once here: a call pays for its hooks, not for finding them.
        self._enters = [
            (hook.enter, inspect.iscoroutinefunction(hook.enter)) for hook in self._hooks
        ]
        self._enter = self._enter_all if any(w for _, w in self._enters) else self._enter_now
        # (position, exit, hook), last hook first, of the hooks whose exit() does something.
        self._exits = tuple(
            (index, hook.exit, hook)
            for index, hook in reversed(list(enumerate(self._hooks)))
            if getattr(hook.exit, "__func__", None) is not HandlerInterceptor.exit
        )
        # (position in the hooks, callback) of the interceptors that count stream messages
        self._message_hooks = [
            (index, hook.on_message)
            for index, hook in enumerate(self._hooks)
            if hook.on_message is not None
        ]
        self._wrapped: dict[str, tuple[Any, Any]] = {}
        self.stopping = asyncio.Event()
        # Tasks of the response streams in flight, and those end_streams() cancelled.
        self._streams: set[asyncio.Task[Any]] = set()
        self._ended: set[asyncio.Task[Any]] = set()

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
        for interceptor in self.interceptors:
            interceptor.prepare(method, handler.response_streaming)
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self.wrap_unary(handler.unary_unary, method))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=self.wrap_unary(handler.stream_unary, method))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self.wrap_stream(handler.unary_stream, method))
        return handler._replace(stream_stream=self.wrap_stream(handler.stream_stream, method))

    def _enter_now(
        self, method: str, context: Context, states: list[Any]
    ) -> Awaitable[NoReturn] | None:
        """Enter every hook of a chain in which none waits, adding each one's state to
        `states`; None when all entered, else what answers the refusal (to await)."""
        call_context.set_stopping(self.stopping)
        try:
            for enter, _ in self._enters:
                states.append(enter(method, context))
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            return self._refuse(method, context, error)
        return None

    async def _enter_all(self, method: str, context: Context, states: list[Any]) -> None:
        """_enter_now() for a chain with hooks that wait."""
        call_context.set_stopping(self.stopping)
        try:
            for enter, waits in self._enters:
                state = enter(method, context)
                states.append(await state if waits else state)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await self._refuse(method, context, error)

    async def _refuse(self, method: str, context: Context, error: Exception) -> NoReturn:
        """Answer the error an enter() raised: a ServiceError as it is, anything else INTERNAL."""
        if isinstance(error, ServiceError):
            await abort(context, error)
        request_id = call_context.request_id() or call_context.new_request_id()
        await abort(context, internal_error(error, method, request_id))

    def _exit_all(
        self, method: str, context: Context, states: list[Any], error: BaseException | None
    ) -> None:
        entered = len(states)
        for index, exit, hook in self._exits:
            if index >= entered:
                continue
            try:
                exit(method, context, states[index], error)
            except Exception as failure:  # one broken hook must not skip the others
                logger.error(
                    "%s.exit failed in %s: %s: %s",
                    type(hook).__name__,
                    method,
                    type(failure).__name__,
                    bounds.log_text(str(failure)[:200]),
                )

    def _ending(
        self,
        context: Context,
        task: asyncio.Task[Any],
        method: str,
        limit: timeouts.Limit | None,
        seconds: float | None,
    ) -> ServiceError | None:
        """The status for a cancellation the server caused itself (a server default deadline,
        or streams ended at shutdown); None when the peer cancelled or the call is over."""
        if context.done():
            return None
        if limit is not None and timeouts.expired(limit):
            return DeadlineExceeded(f"{method} took over {seconds}s")
        if task in self._ended:
            return Unavailable("server is shutting down")
        return None

    def wrap_unary(
        self, behavior: Callable[[Any, Context], Awaitable[Any]], method: str
    ) -> Callable[[Any, Context], Awaitable[Any]]:
        deadline = self._deadline
        enter = self._enter

        async def unary(request: Any, context: Context) -> Any:
            states: list[Any] = []
            try:
                entering = enter(method, context, states)
                if entering is not None:
                    await entering
                seconds = deadline.limit(method, context) if deadline is not None else None
                limit = timeouts.start(seconds) if seconds is not None else None
                try:
                    response = await behavior(request, context)
                except asyncio.CancelledError:
                    task = asyncio.current_task()  # looked up only on this rare path
                    assert task is not None
                    ending = self._ending(context, task, method, limit, seconds)
                    if ending is None:
                        raise
                    task.uncancel()
                    await abort(context, ending)
                except grpc.aio.AbortError:
                    raise
                except Exception as failure:
                    await _answer_failure(context, failure, method)
                finally:
                    if limit is not None:
                        timeouts.finish(limit)
            except BaseException as error:
                self._exit_all(method, context, states, error)
                raise
            self._exit_all(method, context, states, None)
            return response

        return unary

    def wrap_stream(
        self, behavior: Callable[[Any, Context], Any], method: str
    ) -> Callable[[Any, Context], Awaitable[None]]:
        """A reader/writer-API coroutine around any stream handler: an async generator (the
        chain writes what it yields) or a coroutine that writes itself (like Health.Watch)."""
        deadline = self._deadline
        message_hooks = self._message_hooks
        streams = self._streams
        enter = self._enter

        async def stream(request: Any, context: Context) -> None:
            states: list[Any] = []
            task = asyncio.current_task()
            assert task is not None
            streams.add(task)
            try:
                entering = enter(method, context, states)
                if entering is not None:
                    await entering
                seconds = deadline.limit(method, context) if deadline is not None else None
                limit = timeouts.start(seconds) if seconds is not None else None
                try:
                    await _send_all(behavior(request, context), context, states, message_hooks)
                except asyncio.CancelledError:
                    ending = self._ending(context, task, method, limit, seconds)
                    if ending is None:
                        raise
                    task.uncancel()
                    await abort(context, ending)
                except grpc.aio.AbortError:
                    raise
                except Exception as failure:
                    await _answer_failure(context, failure, method)
                finally:
                    if limit is not None:
                        timeouts.finish(limit)
            except BaseException as error:
                self._exit_all(method, context, states, error)
                raise
            finally:
                streams.discard(task)
                self._ended.discard(task)
            self._exit_all(method, context, states, None)

        return stream

    def begin_shutdown(self) -> None:
        """Tell handlers the server is stopping: runtime.shutting_down() is set."""
        self.stopping.set()

    async def end_streams(self, grace: float) -> None:
        """Give the response streams in flight `grace` seconds to end by themselves, then
        end the rest with UNAVAILABLE ("server is shutting down")."""
        if self._streams and grace > 0:
            await asyncio.wait(set(self._streams), timeout=grace)
        remaining = set(self._streams)
        for task in remaining:
            self._ended.add(task)
            task.cancel()
        if remaining:
            await asyncio.wait(remaining, timeout=1.0)


async def _send_all(
    responses: Any,
    context: Context,
    states: list[Any],
    message_hooks: list[tuple[int, Callable[[Any], None]]],
) -> None:
    """Write every response of a stream handler, in this task, and close its generator here
    whatever ends the loop."""
    if not hasattr(responses, "__anext__"):
        await responses  # a coroutine handler writes its own messages
        return
    try:
        async for response in responses:
            for index, on_message in message_hooks:
                on_message(states[index])
            await context.write(response)
    finally:
        await close_responses(responses)


# What grpc raises when a call already ended (the client went away, the status was sent, the
# server stopped): the call is over, not failed by its handler.
_CALL_ENDED: tuple[type[BaseException], ...] = tuple(
    error
    for error in (
        getattr(cygrpc, "ExecuteBatchError", None),
        getattr(cygrpc, "_ServerStoppedError", None),
        grpc.aio.UsageError,
    )
    if isinstance(error, type)
)


async def _answer_failure(context: Context, failure: Exception, method: str) -> NoReturn:
    """A handler or hook raised something no adapter mapped: INTERNAL with a request id
    (never grpc's UNKNOWN), or, when the call had already ended, the end of it."""
    if isinstance(failure, _CALL_ENDED) or context.done():
        raise asyncio.CancelledError from None
    request_id = call_context.request_id() or call_context.new_request_id()
    await abort(context, internal_error(failure, method, request_id))


@dataclass
class _MethodMetrics:
    started: Any
    in_flight: Any
    handling: Any
    sent: Any
    handled: dict[grpc.StatusCode, Any]
    handled_ok: Any  # handled[OK], the one nearly every call counts in


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
        handled = {code: metrics.handled.labels(*labels, code.name) for code in grpc.StatusCode}
        self._children[method] = _MethodMetrics(
            started=metrics.started.labels(*labels),
            in_flight=metrics.in_flight.labels(*labels),
            handling=metrics.handling.labels(*labels),
            sent=metrics.sent.labels(*labels),
            handled=handled,
            handled_ok=handled[grpc.StatusCode.OK],
        )

    def enter(self, method: str, context: Context) -> Any:
        children = self._children[method]
        children.started.inc()
        children.in_flight.inc()
        return time.perf_counter(), children

    def exit(self, method: str, context: Context, state: Any, error: BaseException | None) -> None:
        started, children = state
        children.in_flight.dec()
        if error is None:
            children.handled_ok.inc()
        else:
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
        from opentelemetry.environment_variables import OTEL_PYTHON_TRACER_PROVIDER

        super().__init__()
        self._trace = trace
        self._context = otel_context
        self._propagate = propagate
        self._explicit_provider = tracer_provider is not None
        self._tracer = trace.get_tracer("protoc_gen_pyservice", tracer_provider=tracer_provider)
        # The API keeps the global provider in this attribute until an SDK sets it (once):
        # reading it spares every call get_tracer_provider()'s look into os.environ. With
        # the provider named in the environment, or an API without the attribute, ask the API.
        self._unset: Any = (
            trace
            if getattr(trace, "_TRACER_PROVIDER", False) is None
            and OTEL_PYTHON_TRACER_PROVIDER not in os.environ
            else None
        )

    def _enabled(self) -> bool:
        # Until an SDK installs a tracer provider the global one is a proxy that records
        # nothing: skip the whole span then, rather than build one per call for nothing.
        if self._explicit_provider:
            return True
        unset = self._unset
        if unset is not None:
            if unset._TRACER_PROVIDER is None:
                return False
            self._unset = None  # set now, and for good
        return not isinstance(self._trace.get_tracer_provider(), self._trace.ProxyTracerProvider)

    def enter(self, method: str, context: Context) -> Any:
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
