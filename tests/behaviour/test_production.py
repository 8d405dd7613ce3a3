"""The production runtime on real servers on 127.0.0.1: auth, rate limits, health, reflection,
metrics, tracing, request ids, server deadlines, graceful shutdown and client retries."""

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import jwt
import pytest
from common.v1 import errors_pb2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import interceptors, serve
from user.v1 import user_client, user_pb2, user_service

from tests.behaviour.in_memory_users import InMemoryUsers

SECRET = "test-secret-with-enough-entropy-0123456789"


def token(**claims: Any) -> str:
    return jwt.encode({"sub": "ada", "exp": int(time.time()) + 60, **claims}, SECRET, "HS256")


async def started(settings: serve.ServerSettings, servicer: Any = None) -> serve.Service:
    settings.address = "127.0.0.1:0"
    service = serve.build_server(
        [(user_service.add_user_service_to_server, servicer or InMemoryUsers())], settings
    )
    await service.start()
    return service


def client(service: serve.Service, **kwargs: Any) -> user_client.UserServiceClient:
    return user_client.UserServiceClient.connect(f"127.0.0.1:{service.port}", **kwargs)


GET = user_pb2.GetUserRequest(id="missing")


def auth_settings(**kwargs: Any) -> serve.ServerSettings:
    options = {"algorithms": ["HS256"], **kwargs}
    return serve.ServerSettings(
        interceptors=interceptors.InterceptorSettings(
            auth=interceptors.JwtAuthInterceptor(options.pop("key", SECRET), **options)
        )
    )


def rsa_keys() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def unsigned_token() -> str:
    unsigned: Any = None  # `alg: none` tokens carry no key
    return jwt.encode({"sub": "ada", "exp": int(time.time()) + 60}, unsigned, algorithm="none")


BAD_TOKENS: list[tuple[str, Callable[[], str | None]]] = [
    ("no token", lambda: None),
    ("malformed", lambda: "not.a.jwt"),
    ("expired", lambda: token(exp=int(time.time()) - 3600)),
    (
        "wrong signature",
        lambda: jwt.encode({"sub": "x", "exp": 2**31}, "other-secret-0123456789-abcdef", "HS256"),
    ),
    ("alg none", unsigned_token),
    ("no exp", lambda: jwt.encode({"sub": "ada"}, SECRET, "HS256")),
]


@pytest.mark.parametrize(("case", "make_token"), BAD_TOKENS, ids=[c for c, _ in BAD_TOKENS])
async def test_bad_tokens_are_unauthenticated(
    case: str, make_token: Callable[[], str | None]
) -> None:
    service = await started(auth_settings())
    try:
        value = make_token()
        metadata = (("authorization", f"Bearer {value}"),) if value else None
        async with client(service) as users:
            with pytest.raises(runtime.Unauthenticated):
                await users.get_user(GET, metadata=metadata)
    finally:
        await service.stop(0)


async def test_valid_token_reaches_the_handler_with_its_claims() -> None:
    seen: list[Any] = []

    class Recording(InMemoryUsers):
        async def get_user(self, request, context):
            seen.append(runtime.claims())
            return user_pb2.GetUserResponse()

    service = await started(auth_settings(audience="users"), Recording())
    try:
        async with client(service, token=lambda: token(aud="users", roles=["reader"])) as users:
            await users.get_user(GET)
        async with client(service, token=lambda: token(aud="elsewhere")) as users:
            with pytest.raises(runtime.Unauthenticated):
                await users.get_user(GET)
    finally:
        await service.stop(0)
    assert seen[0]["sub"] == "ada" and seen[0]["roles"] == ["reader"]


async def test_hs_rs_algorithm_confusion_is_refused() -> None:
    private, public = rsa_keys()
    # The server verifies RS256 with its public key; an attacker signs HS256 with that key.
    service = await started(auth_settings(key=public, algorithms=["RS256"]))
    try:
        async with client(service) as users:
            forged = jwt.api_jws.PyJWS(algorithms=["HS256"])
            header = {"alg": "HS256", "typ": "JWT"}
            payload = jwt.utils.base64url_encode(b'{"sub":"eve","exp":9999999999}')
            signing_input = (
                jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}') + b"." + payload
            )
            import hashlib
            import hmac

            signature = jwt.utils.base64url_encode(
                hmac.new(public, signing_input, hashlib.sha256).digest()
            )
            confused = (signing_input + b"." + signature).decode()
            del forged, header
            with pytest.raises(runtime.Unauthenticated):
                await users.get_user(GET, metadata=(("authorization", f"Bearer {confused}"),))
            good = jwt.encode({"sub": "ada", "exp": 2**31}, private, "RS256")
            with pytest.raises(runtime.NotFound):  # authenticated: the handler answered
                await users.get_user(GET, metadata=(("authorization", f"Bearer {good}"),))
    finally:
        await service.stop(0)
    with pytest.raises(ValueError, match="do not mix"):
        interceptors.JwtAuthInterceptor(SECRET, algorithms=["HS256", "RS256"])
    with pytest.raises(ValueError, match="none"):
        interceptors.JwtAuthInterceptor(SECRET, algorithms=["none"])


async def test_health_is_open_and_roles_are_enforced() -> None:
    settings = auth_settings()
    assert settings.interceptors.auth is not None
    settings.interceptors.auth.add_roles({"/user.v1.UserService/DeleteUser": ["admin"]})
    service = await started(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service="user.v1.UserService"))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        async with client(service, token=lambda: token(roles=["reader"])) as users:
            with pytest.raises(runtime.PermissionDenied):
                await users.delete_user(user_pb2.DeleteUserRequest(id="1"))
        async with client(service, token=lambda: token(roles=["admin"])) as users:
            await users.delete_user(user_pb2.DeleteUserRequest(id="1"))
    finally:
        await service.stop(0)


def rate_limited(per_minute: float) -> serve.ServerSettings:
    return serve.ServerSettings(
        interceptors=interceptors.InterceptorSettings(
            rate_limit=interceptors.RateLimitInterceptor(
                interceptors.RateLimit(per_minute=per_minute, burst=3),
                detail_type=errors_pb2.RateLimitInfo,
            )
        )
    )


async def test_bursts_beyond_the_limit_are_resource_exhausted_with_retry_info() -> None:
    # 6 a minute refills a token every 10 s: a slow machine cannot refill one mid-test.
    service = await started(rate_limited(6))
    try:
        async with client(service) as users:
            for _ in range(3):
                with pytest.raises(runtime.NotFound):
                    await users.get_user(GET)
            with pytest.raises(runtime.ResourceExhausted) as caught:
                await users.get_user(GET)
    finally:
        await service.stop(0)
    assert caught.value.retry_info is not None
    assert 1 <= caught.value.retry_info.retry_delay.seconds <= 10
    info = caught.value.detail(errors_pb2.RateLimitInfo)
    assert info is not None and info.requests_per_unit == 6 and info.unit == "minute"
    assert info.retry_after_seconds == caught.value.retry_info.retry_delay.seconds


def test_bucket_table_stays_bounded_under_100k_distinct_callers() -> None:
    buckets = interceptors.TokenBuckets(max_keys=1000)
    limit = interceptors.RateLimit(per_minute=10)
    for caller in range(100_000):
        assert buckets.take((f"peer:{caller}", "/m"), limit, now=float(caller)) == 0
    assert len(buckets) == 1000
    # The most recent callers kept their buckets: a second call still has tokens left.
    assert buckets.take(("peer:99999", "/m"), limit, now=99_999.0) == 0


async def test_reflection_lists_the_services() -> None:
    service = await started(serve.ServerSettings(reflection=True))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            call = stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            reply = await call.read()
    finally:
        await service.stop(0)
    names = {s.name for s in reply.list_services_response.service}
    assert {"user.v1.UserService", "grpc.health.v1.Health"} <= names


async def test_metrics_count_calls_by_method_and_code() -> None:
    registry = CollectorRegistry()
    settings = serve.ServerSettings(
        interceptors=interceptors.InterceptorSettings(
            metrics=interceptors.MetricsInterceptor(registry)
        )
    )
    service = await started(settings)
    try:
        async with client(service) as users:
            await users.list_users(user_pb2.ListUsersRequest(page_size=5))
            with pytest.raises(runtime.NotFound):
                await users.get_user(GET)
    finally:
        await service.stop(0)
    labels = {"grpc_type": "unary", "grpc_service": "user.v1.UserService"}
    ok = registry.get_sample_value(
        "grpc_server_handled_total", {**labels, "grpc_method": "ListUsers", "grpc_code": "OK"}
    )
    not_found = registry.get_sample_value(
        "grpc_server_handled_total",
        {**labels, "grpc_method": "GetUser", "grpc_code": "NOT_FOUND"},
    )
    assert ok == 1 and not_found == 1
    count = registry.get_sample_value(
        "grpc_server_handling_seconds_count", {**labels, "grpc_method": "ListUsers"}
    )
    assert count == 1


async def test_spans_are_recorded_and_continue_the_callers_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = serve.ServerSettings(
        interceptors=interceptors.InterceptorSettings(
            tracing=interceptors.TracingInterceptor(provider)
        )
    )
    service = await started(settings)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        async with client(service) as users:
            with pytest.raises(runtime.NotFound):
                await users.get_user(
                    GET, metadata=(("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),)
                )
    finally:
        await service.stop(0)
    (span,) = exporter.get_finished_spans()
    assert span.name == "user.v1.UserService/GetUser"
    assert span.attributes is not None
    assert span.attributes["rpc.system"] == "grpc"
    assert span.attributes["rpc.method"] == "GetUser"
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert format(span.context.trace_id, "032x") == trace_id
    assert propagate is not None


async def test_request_ids_are_echoed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    service = await started(serve.ServerSettings())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            users = user_client.UserServiceClient(channel)
            metadata = (("x-request-id", "req-42"), ("authorization", "Bearer s3cr3t"))
            with (
                caplog.at_level(logging.INFO, logger="protoc_gen_pyservice.access"),
                pytest.raises(runtime.NotFound) as caught,
            ):
                await users.get_user(GET, metadata=metadata)
    finally:
        await service.stop(0)
    assert caught.value.rpc_error is not None
    raw_trailers: Any = caught.value.rpc_error.trailing_metadata() or ()
    trailers = dict(raw_trailers)
    assert trailers["x-request-id"] == "req-42"
    (line,) = [r.getMessage() for r in caplog.records if "GetUser" in r.getMessage()]
    assert "NOT_FOUND" in line and "request_id=req-42" in line and "s3cr3t" not in line


async def test_server_default_deadline_cancels_slow_handlers() -> None:
    cancelled: list[bool] = []

    class Slow(InMemoryUsers):
        async def get_user(self, request, context):
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            return user_pb2.GetUserResponse()

    settings = serve.ServerSettings()
    service = serve.build_server([(user_service.add_user_service_to_server, Slow())], settings)
    for interceptor in service.interceptors:
        if isinstance(interceptor, interceptors.DeadlineInterceptor):
            interceptor.set_timeouts({"/user.v1.UserService/GetUser": 0.2})
    await service.start()
    try:
        async with client(service) as users:
            with pytest.raises(runtime.DeadlineExceeded):
                await users.get_user(GET, timeout=None)  # no client deadline at all
    finally:
        await service.stop(0)
    assert cancelled == [True]


async def test_graceful_shutdown_finishes_calls_in_flight_and_refuses_new_ones() -> None:
    release = asyncio.Event()

    class Busy(InMemoryUsers):
        async def list_users(self, request, context):
            await release.wait()
            return user_pb2.ListUsersResponse(total_count=7)

    service = await started(serve.ServerSettings(grace_seconds=5), Busy())
    async with client(service) as users:
        in_flight = [
            asyncio.create_task(users.list_users(user_pb2.ListUsersRequest(page_size=1)))
            for _ in range(5)
        ]
        await asyncio.sleep(0.2)
        stopping = asyncio.create_task(service.stop())
        await asyncio.sleep(0.2)
        with pytest.raises(runtime.ServiceError) as refused:
            await users.list_users(user_pb2.ListUsersRequest(page_size=1), timeout=2)
        release.set()
        replies = await asyncio.gather(*in_flight)
        await stopping
    assert [reply.total_count for reply in replies] == [7] * 5
    assert isinstance(refused.value, runtime.Unavailable | runtime.DeadlineExceeded)


class Flaky(InMemoryUsers):
    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}

    async def get_user(self, request, context):
        self.calls["get"] = self.calls.get("get", 0) + 1
        if self.calls["get"] < 3:
            raise runtime.Unavailable("try again")
        return user_pb2.GetUserResponse(user=user_pb2.User(id=request.id))

    async def create_user(self, request, context):
        self.calls["create"] = self.calls.get("create", 0) + 1
        raise runtime.Unavailable("try again")


async def test_idempotent_calls_are_retried_and_others_are_not() -> None:
    flaky = Flaky()
    service = await started(serve.ServerSettings(), flaky)
    try:
        async with client(service) as users:
            reply = await users.get_user(user_pb2.GetUserRequest(id="7"))
            with pytest.raises(runtime.Unavailable):
                await users.create_user(
                    user_pb2.CreateUserRequest(
                        email="a@b.co", first_name="A", last_name="B", password="12345678"
                    )
                )
    finally:
        await service.stop(0)
    assert reply.user.id == "7" and flaky.calls["get"] == 3
    assert flaky.calls["create"] == 1
    assert "CreateUser" not in user_client.UserServiceClient.RETRYABLE_METHODS


async def test_streams_keep_flowing_updates() -> None:
    users_impl = InMemoryUsers()
    service = await started(serve.ServerSettings(), users_impl)
    try:
        async with client(service) as users:
            updates: AsyncIterator[user_pb2.UserUpdate] = users.stream_user_updates(
                user_pb2.StreamUserUpdatesRequest()
            )
            first = asyncio.ensure_future(updates.__anext__())
            await asyncio.sleep(0.1)
            await users.create_user(
                user_pb2.CreateUserRequest(
                    email="s@b.co", first_name="S", last_name="B", password="12345678"
                )
            )
            update = await asyncio.wait_for(first, 5)
            assert update.type == user_pb2.UserUpdate.UPDATE_TYPE_CREATED
            await updates.aclose()  # type: ignore[attr-defined]
    finally:
        await service.stop(0)
    assert error_details_pb2 is not None


def test_cached_token_verdicts_still_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = interceptors.JwtAuthInterceptor(SECRET, leeway_seconds=0)
    now = time.time()
    claims = {"sub": "ada", "exp": now + 10}
    auth._remember("token", claims, now + 10)
    assert auth._verified("token") == claims
    monkeypatch.setattr(time, "time", lambda: now + 11)
    assert auth._verified("token") is None  # decoded again, and refused, after expiry
    assert auth._verified("never-seen") is None


class Refusing(interceptors.HandlerInterceptor):
    """A custom hook: refuses calls without `x-tenant`, the way the built-in ones refuse."""

    def enter(self, method: str, context: Any) -> Any:
        if not any(key == "x-tenant" for key, _ in context.invocation_metadata()):
            raise runtime.PermissionDenied("x-tenant is required")
        return None


class Waiting(interceptors.HandlerInterceptor):
    """A custom hook whose enter() must wait for something."""

    entered = 0

    async def enter(self, method: str, context: Any) -> Any:
        await asyncio.sleep(0)
        Waiting.entered += 1
        return None


async def test_custom_hooks_refuse_with_a_service_error_and_may_wait() -> None:
    server = grpc.aio.server(interceptors=[interceptors.InterceptorChain([Waiting(), Refusing()])])
    user_service.add_user_service_to_server(InMemoryUsers(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with user_client.UserServiceClient.connect(f"127.0.0.1:{port}") as users:
            with pytest.raises(runtime.PermissionDenied, match="x-tenant"):
                await users.get_user(GET)
            with pytest.raises(runtime.NotFound):
                await users.get_user(GET, metadata=(("x-tenant", "a"),))
    finally:
        await server.stop(0)
    assert Waiting.entered == 2


class Recording(interceptors.HandlerInterceptor):
    """Records its exits; `broken` ones raise from exit(), `failing` ones from enter()."""

    def __init__(self, name: str, seen: list[str], *, broken: bool = False, failing: bool = False):
        self.name, self.seen, self.broken, self.failing = name, seen, broken, failing

    def enter(self, method: str, context: Any) -> Any:
        if self.failing:
            raise RuntimeError("a hook's own bug")
        return self.name

    def exit(self, method: str, context: Any, state: Any, error: BaseException | None) -> None:
        self.seen.append(state)
        if self.broken:
            raise RuntimeError("exit failed")


async def _get_through(chain: interceptors.InterceptorChain) -> runtime.ServiceError:
    server = grpc.aio.server(interceptors=[chain])
    user_service.add_user_service_to_server(InMemoryUsers(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with user_client.UserServiceClient.connect(f"127.0.0.1:{port}") as users:
            with pytest.raises(runtime.ServiceError) as raised:
                await users.get_user(GET)
    finally:
        await server.stop(0)
    return raised.value


async def test_an_exit_that_fails_skips_no_other_exit_and_keeps_the_answer() -> None:
    seen: list[str] = []
    chain = interceptors.InterceptorChain(
        [Recording("a", seen), Recording("b", seen, broken=True), Recording("c", seen)]
    )
    error = await _get_through(chain)
    assert isinstance(error, runtime.NotFound)  # the handler's answer, not the hook's bug
    assert sorted(seen) == ["a", "b", "c"]


async def test_an_enter_that_fails_is_internal_and_only_the_entered_hooks_exit() -> None:
    seen: list[str] = []
    chain = interceptors.InterceptorChain(
        [Recording("a", seen), Recording("b", seen, failing=True), Recording("c", seen)]
    )
    error = await _get_through(chain)
    assert isinstance(error, runtime.Internal)
    assert seen == ["a"]


# In a process of its own: the API lets a process set its global tracer provider once.
GLOBAL_PROVIDER_LATER = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from protoc_gen_pyservice.runtime.interceptors import TracingInterceptor

class Context:
    def invocation_metadata(self):
        return ()

tracing = TracingInterceptor()
assert tracing.enter("/a.B/C", Context()) is None, "a span with no SDK"
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
state = tracing.enter("/a.B/C", Context())
assert state is not None, "no span once an SDK is set"
tracing.exit("/a.B/C", Context(), state, None)
assert [span.name for span in exporter.get_finished_spans()] == ["a.B/C"]
print("ok")
"""


def test_tracing_costs_nothing_without_an_sdk_and_sees_one_set_later() -> None:
    result = subprocess.run(
        [sys.executable, "-c", GLOBAL_PROVIDER_LATER],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stderr
