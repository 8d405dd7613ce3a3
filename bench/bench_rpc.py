"""RPC throughput and latency on loopback: a bare grpc.aio server against ours.

One run compiles grpcio-tools stubs for proto/user/v1/user.proto into a temp dir,
starts three servers, each in its own subprocess (`bare`: grpcio-tools servicer;
`pyservice`: our generated servicer on a plain grpc.aio server; `pyservice+all`:
the same through `runtime.serve.build_server` with every interceptor), and drives
them from this process with one and the same grpc.aio client:

- unary `GetUser`, closed loop: N tasks issue calls back-to-back for a fixed time
  (N = 1, 8, 64 calls in flight); throughput and latency percentiles;
- server streaming `StreamUserUpdates`: messages per second through one stream,
  including `context.write()` variants of the handlers.

Cells are interleaved and repeated (rotating order per round); tables show medians.
With 2+ CPUs the servers are pinned to the last CPU and the client to the others.

    .venv/bin/python bench/bench_rpc.py              # Markdown on stdout (~2.5 min)
    .venv/bin/python bench/bench_rpc.py --quick      # 1 round, short cells (~20 s)
    .venv/bin/python bench/bench_rpc.py --quick --profile   # cProfile the servers
    .venv/bin/python bench/bench_rpc.py --write      # also update BENCHMARKS.md

See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import functools
import importlib
import importlib.metadata
import importlib.resources
import logging
import marshal
import math
import os
import platform
import select
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import google.protobuf
import grpc
import grpc.aio
from google.protobuf.internal import api_implementation

if TYPE_CHECKING:  # only the server processes import the runtime
    from protoc_gen_pyservice.runtime.interceptors import InterceptorSettings

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
GENERATED_DIR = REPO_ROOT / "generated"
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
START_MARKER = "<!-- bench:rpc:start -->"
END_MARKER = "<!-- bench:rpc:end -->"
BENCHMARKS_HEADER = (
    "# Benchmarks\n\n"
    "Numbers recorded by the scripts in `bench/`. Sections between `bench:*` markers\n"
    "are rewritten by those scripts; edit outside them.\n"
)

PROTO_INCLUDES = (
    REPO_ROOT / "proto",
    REPO_ROOT / "protoc_gen_pyservice" / "proto",
    REPO_ROOT / ".pyservice" / "include",
)
SERVICE_FILE = "user/v1/user.proto"  # --python_out and --grpc_python_out
IMPORTED_FILES = ("validate/validate.proto", "pyservice/options.proto")  # --python_out only

BARE = "bare"
OURS = "pyservice"
OURS_ALL = "pyservice+all"
SERVERS = (BARE, OURS, OURS_ALL)
# Streaming contenders: (name, server process, method path).
BARE_YIELD = "bare/yield"
BARE_WRITE = "bare/write"
OURS_WRITE = "pyservice/write"
GET_USER = "/user.v1.UserService/GetUser"
STREAM_UPDATES = "/user.v1.UserService/StreamUserUpdates"
# The bare and pyservice servers also serve a `context.write()` variant of the stream here.
WRITE_SERVICE = "bench.v1.UserServiceWrite"
STREAM_UPDATES_WRITE = f"/{WRITE_SERVICE}/StreamUserUpdates"
STREAMS: tuple[tuple[str, str, str], ...] = (
    (BARE_YIELD, BARE, STREAM_UPDATES),
    (BARE_WRITE, BARE, STREAM_UPDATES_WRITE),
    (OURS, OURS, STREAM_UPDATES),
    (OURS_WRITE, OURS, STREAM_UPDATES_WRITE),
    (OURS_ALL, OURS_ALL, STREAM_UPDATES),
)
STREAM_REFERENCE = BARE_YIELD
MESSAGES_HEADER = "bench-messages"  # how many UserUpdate messages the stream should send

# HS256 secret shared by the client (signs) and the pyservice+all server (verifies).
# At least 32 bytes, or PyJWT warns about the key length.
JWT_SECRET = "bench-rpc-secret-0123456789abcdef0123456789"
ACCESS_LOGGER = "protoc_gen_pyservice.access"

DEFAULT_CONCURRENCY = (1, 8, 64)
DEFAULT_SECONDS = 3.0
DEFAULT_WARMUP = 1.0
DEFAULT_ROUNDS = 3
DEFAULT_STREAM_MESSAGES = 50_000
QUICK = {"seconds": 1.0, "warmup": 0.3, "rounds": 1, "stream_messages": 10_000}
STREAM_WARMUP_MESSAGES = 2_000
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 10.0
STREAM_TIMEOUT_S = 120.0
PROFILE_TOP = 25

# Targets: unary RPS ratio floor and p99 ratio ceiling against bare, per server;
# streaming msgs/s ratio floor against bare/yield.
UNARY_TARGETS: dict[str, tuple[float, float | None]] = {OURS: (0.9, 1.15), OURS_ALL: (0.75, None)}
STREAM_TARGETS: dict[str, float] = {OURS: 0.9}

SERVER_TITLES = {
    BARE: "plain `grpc.aio.server()`, grpcio-tools `UserServiceServicer` subclass",
    OURS: "our generated `UserServiceBase` subclass, `add_user_service_to_server` on a plain "
    "`grpc.aio.server()` (request validation, error mapping)",
    OURS_ALL: "our generated servicer through `runtime.serve.build_server`: request ids, access "
    "log (logger at WARNING), JWT auth, rate limit, Prometheus metrics, OpenTelemetry tracing "
    "(no SDK: no-op), server deadlines, health",
}
STREAM_TITLES = {
    BARE_YIELD: "bare server, handler is an async generator (`yield`)",
    BARE_WRITE: "bare server, handler is a coroutine calling `await context.write(msg)`",
    OURS: "our generated servicer (async generator behind the generated adapter)",
    OURS_WRITE: "info: the same servicer's async generator driven by a coroutine adapter "
    "written here, `async for m in behavior(...): await context.write(m)` (what the generated "
    "adapter could do instead of re-yielding)",
    OURS_ALL: "`pyservice+all` server (info: no target)",
}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


T = TypeVar("T")


def rotated(items: Sequence[T], shift: int) -> list[T]:
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


# --------------------------------------------------------------------------- stubs


def grpc_tools_include() -> Path:
    path = Path(str(importlib.resources.files("grpc_tools").joinpath("_proto")))
    if not path.is_dir():
        raise SystemExit(f"grpc_tools _proto dir not found at {path}")
    return path


def run_protoc(args: Sequence[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(f"protoc {shlex.join(args)} failed:\n{result.stderr}")


def compile_stubs(out: Path) -> None:
    """grpcio-tools' user_pb2 / user_pb2_grpc, and the _pb2 modules they import."""
    out.mkdir(parents=True, exist_ok=True)
    includes = [f"--proto_path={path}" for path in (*PROTO_INCLUDES, grpc_tools_include())]
    run_protoc([*includes, f"--python_out={out}", f"--grpc_python_out={out}", SERVICE_FILE])
    run_protoc([*includes, f"--python_out={out}", *IMPORTED_FILES])


def import_from(directory: Path, *names: str) -> list[ModuleType]:
    """Import modules that must come from ``directory`` (checked), which goes first on sys.path."""
    sys.path.insert(0, str(directory))
    modules = [importlib.import_module(name) for name in names]
    for module in modules:
        origin = Path(module.__file__ or "")
        if not origin.is_relative_to(directory):
            raise SystemExit(f"{module.__name__} was imported from {origin}, not {directory}")
    return modules


# --------------------------------------------------------------------------- servers


def fixed_messages(pb2: Any) -> tuple[Any, Any]:
    """The GetUserResponse every GetUser returns, and the UserUpdate every stream sends."""
    user = pb2.User(
        id="u1", email="ada.lovelace@example.com", first_name="Ada", last_name="Lovelace"
    )
    response = pb2.GetUserResponse(user=user)
    update = pb2.UserUpdate(type=pb2.UserUpdate.UPDATE_TYPE_UPDATED, user=user)
    update.timestamp.seconds = 1_700_000_000
    return response, update


def stream_length(context: grpc.aio.ServicerContext[Any, Any]) -> int:
    for key, value in context.invocation_metadata() or ():
        if key == MESSAGES_HEADER and isinstance(value, str):
            return int(value)
    return 0


Stop = Callable[[], Any]


async def start_bare(stubs: Path) -> tuple[int, Stop]:
    pb2, pb2_grpc = import_from(stubs, "user.v1.user_pb2", "user.v1.user_pb2_grpc")
    response, update = fixed_messages(pb2)

    base: Any = pb2_grpc.UserServiceServicer

    class BareServicer(base):  # type: ignore[misc]
        async def GetUser(  # noqa: N802 - grpcio-tools method name
            self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> Any:
            return response

        async def StreamUserUpdates(  # noqa: N802 - grpcio-tools method name
            self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            for _ in range(stream_length(context)):
                yield update

    async def stream_by_write(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        for _ in range(stream_length(context)):
            await context.write(update)

    server = grpc.aio.server()
    pb2_grpc.add_UserServiceServicer_to_server(BareServicer(), server)
    write_handler = grpc.unary_stream_rpc_method_handler(
        stream_by_write,
        request_deserializer=pb2.StreamUserUpdatesRequest.FromString,
        response_serializer=pb2.UserUpdate.SerializeToString,
    )
    # Registered like grpcio-tools registers UserService, so both paths are looked up alike.
    server.add_registered_method_handlers(  # type: ignore[attr-defined]
        WRITE_SERVICE, {"StreamUserUpdates": write_handler}
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return port, lambda: server.stop(0)


async def start_ours(everything: bool) -> tuple[int, Stop]:
    import_from(GENERATED_DIR, "user.v1.user_pb2", "user.v1.user_service")
    from protoc_gen_pyservice.runtime import serve
    from user.v1 import user_pb2, user_service

    response, update = fixed_messages(user_pb2)

    class Servicer(user_service.UserServiceBase):
        async def get_user(
            self,
            request: user_pb2.GetUserRequest,
            context: grpc.aio.ServicerContext[user_pb2.GetUserRequest, user_pb2.GetUserResponse],
        ) -> user_pb2.GetUserResponse:
            return response  # type: ignore[no-any-return]

        async def stream_user_updates(
            self,
            request: user_pb2.StreamUserUpdatesRequest,
            context: grpc.aio.ServicerContext[
                user_pb2.StreamUserUpdatesRequest, user_pb2.UserUpdate
            ],
        ) -> AsyncIterator[user_pb2.UserUpdate]:
            for _ in range(stream_length(context)):
                yield update

    servicer = Servicer()
    if not everything:
        server = grpc.aio.server()
        user_service.add_user_service_to_server(servicer, server)
        add_write_adapter(server, servicer.stream_user_updates, user_pb2)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return port, lambda: server.stop(0)
    settings = serve.ServerSettings(address="127.0.0.1:0", interceptors=every_interceptor())
    service = serve.build_server([(user_service.add_user_service_to_server, servicer)], settings)
    await service.start()
    return service.port, lambda: service.stop(0)


def every_interceptor() -> InterceptorSettings:
    """The `pyservice+all` interceptors: JWT auth (JWT_SECRET), a rate limit no client reaches,
    Prometheus metrics, OpenTelemetry tracing; build_server adds request ids, the access log
    and server deadlines."""
    from protoc_gen_pyservice.runtime import interceptors

    return interceptors.InterceptorSettings(
        auth=interceptors.JwtAuthInterceptor(JWT_SECRET, algorithms=["HS256"]),
        rate_limit=interceptors.RateLimitInterceptor(interceptors.RateLimit(per_minute=1e9)),
        metrics=interceptors.MetricsInterceptor(),
        tracing=interceptors.TracingInterceptor(),
    )


def add_write_adapter(
    server: grpc.aio.Server,
    behavior: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]],
    pb2: Any,
) -> None:
    """Serve ``behavior`` (an async generator method) at STREAM_UPDATES_WRITE through a
    coroutine that writes each message, instead of an async generator that re-yields it."""

    async def stream_by_write(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        async for response in behavior(request, context):
            await context.write(response)

    handler = grpc.unary_stream_rpc_method_handler(
        stream_by_write,
        request_deserializer=pb2.StreamUserUpdatesRequest.FromString,
        response_serializer=pb2.UserUpdate.SerializeToString,
    )
    server.add_registered_method_handlers(  # type: ignore[attr-defined]
        WRITE_SERVICE, {"StreamUserUpdates": handler}
    )


Starter = Callable[[], Awaitable[tuple[int, Stop]]]


def server_starter(kind: str, stubs: Path) -> Starter:
    if kind == BARE:
        return functools.partial(start_bare, stubs)
    return functools.partial(start_ours, everything=kind == OURS_ALL)


async def serve_until_stopped(start: Starter) -> None:
    """Start the server, print its port, and stop on SIGTERM/SIGINT or when stdin closes."""
    port, stop = await start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stopping.set)
    stdin = sys.stdin.fileno()

    def on_stdin() -> None:  # the parent went away: its end of the pipe closed
        if not os.read(stdin, 4096):
            loop.remove_reader(stdin)
            stopping.set()

    loop.add_reader(stdin, on_stdin)
    print(f"PORT {port}", flush=True)
    await stopping.wait()
    await stop()


def serve_main(start: Starter, profile: Path | None, cpus: set[int] | None) -> int:
    """The server subprocess: `start` runs in its event loop once the threads are pinned."""
    if cpus:
        pin_threads(cpus)  # before grpc starts its threads: they inherit the mask
    # Off in production logging configs too: one line per call would be the benchmark.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
    profiler = cProfile.Profile() if profile is not None else None
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(serve_until_stopped(start))
    finally:
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
    return 0


def cpu_split() -> tuple[set[int], set[int]] | None:
    """(client CPUs, server CPUs): the last CPU for the server, the rest for the client; None
    with fewer than 2 CPUs or no affinity support."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return set(cpus[:-1]), {cpus[-1]}


def pin_threads(cpus: set[int]) -> None:
    """Restrict every thread of this process (and the threads they start) to ``cpus``."""
    try:
        threads = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    for thread in threads:
        try:
            os.sched_setaffinity(thread, cpus)
        except OSError:  # the thread ended meanwhile
            continue


class ServerStartError(Exception):
    """A server subprocess exited or stayed silent instead of reporting its port."""


def first_error_line(text: str) -> str:
    """The last non-empty line: a traceback's exception line, argparse's `error:` line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"


@dataclass
class ServerProcess:
    kind: str
    process: subprocess.Popen[bytes]
    port: int
    stderr_path: Path
    profile: Path | None

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the server process so far (Linux /proc), else None."""
        try:
            text = Path(f"/proc/{self.process.pid}/stat").read_text(encoding="ascii")
        except OSError:
            return None
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stderr_tail(self) -> str:
        try:
            lines = self.stderr_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-15:])


def start_server(
    kind: str, stubs: Path, scratch: Path, profile_dir: Path | None, cpus: set[int] | None
) -> ServerProcess:
    """Start one server subprocess and wait for the port it reports; profile_dir: run it
    under cProfile and write `server-KIND.prof` there when it stops."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", kind, str(stubs)]
    return spawn_server(kind, command, scratch, profile_dir, cpus)


def spawn_server(
    kind: str,
    command: Sequence[str],
    scratch: Path,
    profile_dir: Path | None,
    cpus: set[int] | None,
) -> ServerProcess:
    """Run `command` (a script's `--serve` mode: it must take --profile-out and --cpus and
    print `PORT n` once it serves) and wait for the port."""
    stem = f"server-{kind.replace('+', '-').replace('/', '-')}"
    stderr_path = scratch / f"{stem}.stderr"
    profile_path = profile_dir / f"{stem}.prof" if profile_dir is not None else None
    command = list(command)
    if profile_path is not None:
        command += ["--profile-out", str(profile_path)]
    if cpus:
        command += ["--cpus", ",".join(map(str, sorted(cpus)))]
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
    server = ServerProcess(kind, process, 0, stderr_path, profile_path)
    assert process.stdout is not None
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, remaining))
        line = process.stdout.readline().decode() if ready else ""
        if line.startswith("PORT "):
            server.port = int(line.split()[1])
            return server
        if not ready or not line or process.poll() is not None:
            stop_server(server)
            raise ServerStartError(server.stderr_tail())


def stop_server(server: ServerProcess) -> None:
    """SIGTERM (the server stops and writes its profile), then SIGKILL if it hangs."""
    process = server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class UnarySample:
    """One timed window of one (server, concurrency) cell."""

    calls: int
    seconds: float
    latencies: list[float]
    errors: int
    first_error: str | None
    server_cpu: float | None  # server CPU seconds per second of the window
    client_cpu: float  # this process's CPU seconds per second of the window
    other_cpu: float | None = None  # closed_loop's other_cpu, per second of the window

    @property
    def rps(self) -> float:
        return self.calls / self.seconds


@dataclass(frozen=True)
class StreamSample:
    messages: int
    seconds: float
    server_cpu: float | None  # server CPU seconds during the stream
    client_cpu: float  # this process's CPU seconds during the stream
    error: str | None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def rpc_error_text(error: grpc.aio.AioRpcError) -> str:
    return f"{error.code().name}: {error.details()}"


class Client:
    """One channel per server; the same callables and request for every server."""

    def __init__(self, pb2: Any, port: int, metadata: tuple[tuple[str, str], ...]) -> None:
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.metadata = metadata
        self.request = pb2.GetUserRequest(id="u1")
        self.stream_request = pb2.StreamUserUpdatesRequest(user_ids=["u1"])
        self.get_user = self.channel.unary_unary(
            GET_USER,
            request_serializer=pb2.GetUserRequest.SerializeToString,
            response_deserializer=pb2.GetUserResponse.FromString,
        )
        self.streams = {
            path: self.channel.unary_stream(
                path,
                request_serializer=pb2.StreamUserUpdatesRequest.SerializeToString,
                response_deserializer=pb2.UserUpdate.FromString,
            )
            for path in (STREAM_UPDATES, STREAM_UPDATES_WRITE)
        }

    async def check(self) -> str | None:
        """None if one GetUser answers with the fixed user, else what went wrong."""
        try:
            response = await self.get_user(self.request, metadata=self.metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            return rpc_error_text(error)
        return None if response.user.id == "u1" else f"unexpected response {response}"

    async def unary(
        self, concurrency: int, warmup: float, seconds: float, server: ServerProcess
    ) -> UnarySample:
        """GetUser in a closed loop (see closed_loop)."""
        issue = functools.partial(self.get_user, self.request, metadata=self.metadata)
        return await closed_loop(issue, concurrency, warmup, seconds, server)

    async def stream(self, path: str, messages: int, server: ServerProcess) -> StreamSample:
        """Time one stream of `messages` UserUpdates, from the call to its end."""
        metadata = (*self.metadata, (MESSAGES_HEADER, str(messages)))
        cpu0, client0 = server.cpu_seconds(), time.process_time()
        started = time.perf_counter()
        received = 0
        error = None
        try:
            async with asyncio.timeout(STREAM_TIMEOUT_S):
                async for _ in self.streams[path](self.stream_request, metadata=metadata):
                    received += 1
        except grpc.aio.AioRpcError as failure:
            error = rpc_error_text(failure)
        except TimeoutError:
            error = f"no end after {STREAM_TIMEOUT_S:.0f}s"
        seconds = time.perf_counter() - started
        cpu1, client1 = server.cpu_seconds(), time.process_time()
        if error is None and received != messages:
            error = f"received {received} of {messages} messages"
        server_cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        return StreamSample(received, seconds, server_cpu, client1 - client0, error)


async def closed_loop(
    issue: Callable[[], Awaitable[object]],
    concurrency: int,
    warmup: float,
    seconds: float,
    server: ServerProcess,
    other_cpu: Callable[[], float | None] | None = None,
) -> UnarySample:
    """Closed loop: `concurrency` tasks call `issue()` back-to-back; calls that complete inside
    the window [warm-up end, warm-up end + seconds) count, with their latencies. `other_cpu`:
    CPU seconds of some other process(es) so far (a database server), sampled in the window."""
    clock = time.perf_counter
    window_start = clock() + warmup
    window_end = window_start + seconds
    latencies: list[float] = []
    errors: list[str] = []

    async def worker() -> None:
        while True:
            started = clock()
            try:
                await issue()
            except grpc.aio.AioRpcError as error:
                errors.append(rpc_error_text(error))
                await asyncio.sleep(0.01)  # a failing server must not spin the loop
            finished = clock()
            if finished >= window_end:
                return
            if finished >= window_start:
                latencies.append(finished - started)

    def cpu_now() -> tuple[float, float | None, float, float | None]:
        return (
            clock(),
            server.cpu_seconds(),
            time.process_time(),
            other_cpu() if other_cpu else None,
        )

    async def sample_cpu() -> tuple[float | None, float, float | None]:
        await asyncio.sleep(max(0.0, window_start - clock()))
        t0, s0, c0, o0 = cpu_now()
        await asyncio.sleep(max(0.0, window_end - clock()))
        t1, s1, c1, o1 = cpu_now()
        server_cpu = (s1 - s0) / (t1 - t0) if s0 is not None and s1 is not None else None
        other = (o1 - o0) / (t1 - t0) if o0 is not None and o1 is not None else None
        return server_cpu, (c1 - c0) / (t1 - t0), other

    cpu = asyncio.create_task(sample_cpu())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    server_cpu, client_cpu, other = await cpu
    return UnarySample(
        calls=len(latencies),
        seconds=seconds,
        latencies=latencies,
        errors=len(errors),
        first_error=errors[0] if errors else None,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        other_cpu=other,
    )


def bearer_token() -> str:
    import jwt

    claims = {"sub": "bench", "exp": int(time.time()) + 10 * 365 * 24 * 3600}
    return str(jwt.encode(claims, JWT_SECRET, algorithm="HS256"))


# --------------------------------------------------------------------------- results


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of unsorted values."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class UnaryCell:
    server: str
    concurrency: int
    samples: list[UnarySample] = field(default_factory=list)
    failure: str | None = None

    def median(self, value: Callable[[UnarySample], float | None]) -> float | None:
        values = [v for v in (value(s) for s in self.samples if s.calls) if v is not None]
        return statistics.median(values) if values else None

    @property
    def rps(self) -> float | None:
        return self.median(lambda s: s.rps)

    @property
    def p50(self) -> float | None:
        return self.median(lambda s: percentile(s.latencies, 0.50))

    @property
    def p99(self) -> float | None:
        return self.median(lambda s: percentile(s.latencies, 0.99))

    @property
    def server_cpu_per_call(self) -> float | None:
        return self.median(lambda s: None if s.server_cpu is None else s.server_cpu / s.rps)

    @property
    def server_cpu(self) -> float | None:
        return self.median(lambda s: s.server_cpu)

    @property
    def client_cpu(self) -> float | None:
        return self.median(lambda s: s.client_cpu)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.samples)


@dataclass
class StreamCell:
    name: str
    server: str
    path: str
    samples: list[StreamSample] = field(default_factory=list)
    failure: str | None = None

    @property
    def rate(self) -> float | None:
        rates = [s.rate for s in self.samples if s.error is None]
        return statistics.median(rates) if rates else None

    def median(self, value: Callable[[StreamSample], float | None]) -> float | None:
        values = [
            v for v in (value(s) for s in self.samples if s.error is None and s.messages) if v
        ]
        return statistics.median(values) if values else None

    @property
    def server_cpu_per_message(self) -> float | None:
        return self.median(lambda s: None if s.server_cpu is None else s.server_cpu / s.messages)

    @property
    def server_cpu(self) -> float | None:
        return self.median(lambda s: None if s.server_cpu is None else s.server_cpu / s.seconds)

    @property
    def client_cpu(self) -> float | None:
        return self.median(lambda s: s.client_cpu / s.seconds)


@dataclass
class Results:
    unary: dict[tuple[str, int], UnaryCell]
    streams: dict[str, StreamCell]
    server_failures: dict[str, str] = field(default_factory=dict)


def ratio(mine: float | None, theirs: float | None) -> float | None:
    if mine is None or theirs is None or theirs == 0:
        return None
    return mine / theirs


# --------------------------------------------------------------------------- run


async def run_cells(
    servers: dict[str, ServerProcess],
    pb2: Any,
    args: argparse.Namespace,
    start_failures: dict[str, str],
) -> Results:
    """Every cell, round after round; servers that did not start or answer are reported."""
    metadata = (("authorization", f"Bearer {bearer_token()}"),)
    clients = {kind: Client(pb2, server.port, metadata) for kind, server in servers.items()}
    results = Results(
        unary={(kind, n): UnaryCell(kind, n) for n in args.concurrency for kind in SERVERS},
        streams={name: StreamCell(name, kind, path) for name, kind, path in STREAMS},
        server_failures=dict(start_failures),
    )
    try:
        for kind, client in clients.items():
            problem = await client.check()
            if problem is not None:
                results.server_failures[kind] = f"check call failed: {problem}"
                progress(f"[check] {kind}: {problem}")
        live = [kind for kind in servers if kind not in results.server_failures]
        streams = [c for c in results.streams.values() if c.server in live]
        for stream in streams:  # warm-up: the first stream per path, imports, caches
            warm = await clients[stream.server].stream(
                stream.path, STREAM_WARMUP_MESSAGES, servers[stream.server]
            )
            if warm.error is not None:
                stream.failure = warm.error
                progress(f"[stream] {stream.name}: {warm.error}")
        for round_index in range(args.rounds):
            label = f"[round {round_index + 1}/{args.rounds}]"
            for concurrency in args.concurrency:
                for kind in rotated(live, round_index):
                    cell = results.unary[(kind, concurrency)]
                    if cell.failure is None:
                        await unary_round(cell, clients[kind], servers[kind], args, label)
            for stream in rotated(streams, round_index):
                if stream.failure is None:
                    await stream_round(stream, clients[stream.server], servers, args, label)
    finally:
        for client in clients.values():
            await client.channel.close(None)
    return results


async def unary_round(
    cell: UnaryCell, client: Client, server: ServerProcess, args: argparse.Namespace, label: str
) -> None:
    sample = await client.unary(cell.concurrency, args.warmup, args.seconds, server)
    cell.samples.append(sample)
    if sample.calls == 0:
        cell.failure = sample.first_error or "no call completed"
    errors = f"  {sample.errors} errors: {sample.first_error}" if sample.errors else ""
    progress(
        f"{label} {cell.server:<13} x{cell.concurrency:<3} {sample.rps:8.0f} rps"
        f"  p50 {fmt_ms(percentile_or_none(sample, 0.5))}"
        f"  p99 {fmt_ms(percentile_or_none(sample, 0.99))} ms{errors}"
    )


async def stream_round(
    cell: StreamCell,
    client: Client,
    servers: dict[str, ServerProcess],
    args: argparse.Namespace,
    label: str,
) -> None:
    sample = await client.stream(cell.path, args.stream_messages, servers[cell.server])
    cell.samples.append(sample)
    if sample.error is not None:
        cell.failure = sample.error
    error = f"  {sample.error}" if sample.error else ""
    progress(f"{label} stream {cell.name:<15} {sample.rate:8.0f} msgs/s{error}")


def percentile_or_none(sample: UnarySample, fraction: float) -> float | None:
    return percentile(sample.latencies, fraction) if sample.latencies else None


ProfileKey = tuple[str, int, str]  # (file, line, function) as cProfile records them
IDLE_FUNCTIONS = ("<method 'poll' of 'select.epoll' objects>",)  # the loop waiting for I/O


def function_label(key: ProfileKey) -> str:
    file, line, name = key
    if file == "~":  # a builtin
        return name
    path = Path(file)
    if path.is_relative_to(REPO_ROOT):
        file = str(path.relative_to(REPO_ROOT))
    elif "site-packages" in path.parts:
        file = "/".join(path.parts[path.parts.index("site-packages") + 1 :])
    else:
        file = path.name
    return f"{file}:{line}({name})"


def profile_report(
    server: ServerProcess, focus: Sequence[str] = ("protoc_gen_pyservice/runtime",)
) -> str:
    """The server's hottest functions by own time (the event loop's idle wait left out), and
    those of each `focus` directory (by default the runtime's) by cumulative time."""
    if server.profile is None or not server.profile.exists():
        return f"(no profile written for {server.kind})"
    with server.profile.open("rb") as handle:
        entries: dict[ProfileKey, tuple[int, int, float, float, Any]] = marshal.load(handle)
    idle = sum(row[2] for key, row in entries.items() if key[2] in IDLE_FUNCTIONS)
    busy = sum(row[2] for row in entries.values()) - idle
    header = f"{'own ms':>9} {'% busy':>6} {'cum ms':>9} {'calls':>9}  function"

    def line(key: ProfileKey) -> str:
        _, calls, own, cumulative, _ = entries[key]
        share = own / busy * 100 if busy else 0.0
        return (
            f"{own * 1e3:9.0f} {share:6.1f} {cumulative * 1e3:9.0f} {calls:9d}  "
            + function_label(key)
        )

    hottest = sorted(
        (key for key in entries if key[2] not in IDLE_FUNCTIONS),
        key=lambda key: entries[key][2],
        reverse=True,
    )[:PROFILE_TOP]

    def by_cumulative_time(directory: str) -> list[ProfileKey]:
        return sorted(
            (key for key, row in entries.items() if f"{directory}/" in key[0] and row[1] > 1),
            key=lambda key: entries[key][3],
            reverse=True,
        )[:PROFILE_TOP]

    lines = [
        f"#### cProfile of the `{server.kind}` server process",
        "",
        f"Busy {busy:.2f} s (own time of every function, the event loop's "
        f"`epoll.poll` wait of {idle:.2f} s left out). grpc's Cython code is invisible to "
        "cProfile: its time shows as the own time of `Context.run` (callbacks) and of the "
        "Python functions that call into it.",
        "",
        "```text",
        "hottest functions, by own time:",
        header,
        *(line(key) for key in hottest),
    ]
    for directory in focus:
        if keys := by_cumulative_time(directory):
            lines += ["", f"{directory}, by cumulative time:", header]
            lines += [line(key) for key in keys]
    lines.append("```")
    return "\n".join(lines)


# --------------------------------------------------------------------------- report


def fmt_ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:.2f}"


def fmt_us(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e6:.0f}"


def fmt_percent(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.0f}"


def fmt_us_fine(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e6:.1f}"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def fmt_ratio_precise(value: float | None) -> str:
    """Three decimals: a target verdict next to a ratio must not look contradictory."""
    return "—" if value is None else f"{value:.3f}x"


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def table_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(table_cell(c) for c in cells) + " |"


def table_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_unary(results: Results, concurrency: Sequence[int]) -> list[str]:
    lines = [
        "### Unary `GetUser`",
        "",
        "| server | in flight | RPS | p50 ms | p99 ms | x bare RPS | x bare p99 "
        "| server CPU µs/call | x bare CPU | server CPU % | client CPU % | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in concurrency:
        bare = results.unary.get((BARE, n))
        for kind in SERVERS:
            cell = results.unary.get((kind, n))
            if cell is None:
                continue
            failure = cell.failure or results.server_failures.get(kind)
            cells = [
                kind,
                str(n),
                fmt_rate(cell.rps),
                fmt_ms(cell.p50),
                fmt_ms(cell.p99),
                fmt_ratio(ratio(cell.rps, bare.rps if bare else None)),
                fmt_ratio(ratio(cell.p99, bare.p99 if bare else None)),
                fmt_us(cell.server_cpu_per_call),
                fmt_ratio(
                    ratio(cell.server_cpu_per_call, bare.server_cpu_per_call if bare else None)
                ),
                fmt_percent(cell.server_cpu),
                fmt_percent(cell.client_cpu),
                f"FAILED: {failure}" if failure else str(cell.errors),
            ]
            lines.append(table_row(cells))
    return lines


def render_streams(results: Results, messages: int) -> list[str]:
    reference = results.streams.get(STREAM_REFERENCE)
    lines = [
        f"### Server streaming `StreamUserUpdates`: {messages:,} messages through one stream",
        "",
        f"| handler | msgs/s | x {STREAM_REFERENCE} | server CPU µs/msg | x {STREAM_REFERENCE} "
        "CPU | server CPU % | client CPU % | what runs |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, cell in results.streams.items():
        failure = cell.failure or results.server_failures.get(cell.server)
        what = f"FAILED: {failure}" if failure else STREAM_TITLES[name]
        cells = [
            name,
            fmt_rate(cell.rate),
            fmt_ratio(ratio(cell.rate, reference.rate if reference else None)),
            fmt_us_fine(cell.server_cpu_per_message),
            fmt_ratio(
                ratio(
                    cell.server_cpu_per_message,
                    reference.server_cpu_per_message if reference else None,
                )
            ),
            fmt_percent(cell.server_cpu),
            fmt_percent(cell.client_cpu),
            what,
        ]
        lines.append(table_row(cells))
    lines.append("")
    for yielding, writing in ((BARE_YIELD, BARE_WRITE), (OURS, OURS_WRITE)):
        lines.append(yield_vs_write(results, yielding, writing))
    return lines


def fmt_span(fractions: Sequence[float]) -> str:
    low, high = (f"{value * 100:.0f}" for value in (min(fractions), max(fractions)))
    return low if low == high else f"{low}-{high}"


def stream_bound_note(results: Results) -> list[str]:
    """Say so when the client, not the server, limits every stream."""
    loads = [cell.client_cpu for cell in results.streams.values() if cell.client_cpu]
    if not loads or min(loads) < 0.9:
        return []
    return [
        "",
        *textwrap.wrap(
            f"The client process was at {fmt_span(loads)} % of "
            "its CPU in every stream: msgs/s is bounded by the grpc.aio client's cost per "
            "received message, so it hardly tells the servers apart. Server CPU µs/msg is "
            "the measure of what each handler costs.",
            width=88,
        ),
    ]


def yield_vs_write(results: Results, yielding: str, writing: str) -> str:
    """Which of two handlers of one server is faster, by msgs/s and by server CPU/msg."""
    a, b = results.streams.get(yielding), results.streams.get(writing)
    if a is None or b is None or not a.rate or not b.rate:
        return f"- `{yielding}` vs `{writing}`: not measured"
    faster = writing if b.rate > a.rate else yielding
    cpu = ratio(b.server_cpu_per_message, a.server_cpu_per_message)
    return (
        f"- `yield` vs `context.write()`: `{faster}` is faster; `{writing}` / `{yielding}`: "
        f"msgs/s {b.rate / a.rate:.2f}x, server CPU per message {fmt_ratio(cpu)}."
    )


def target_lines(results: Results, concurrency: Sequence[int]) -> list[str]:
    lines = []
    for kind, (min_rps, max_p99) in UNARY_TARGETS.items():
        goal = f"`{kind}` RPS >= {min_rps:.2f}x bare at every concurrency"
        if max_p99 is not None:
            goal += f", p99 <= {max_p99:.2f}x bare"
        shown, met, measured = [], True, True
        for n in concurrency:
            cell, bare = results.unary.get((kind, n)), results.unary.get((BARE, n))
            rps = ratio(cell.rps, bare.rps) if cell and bare else None
            p99 = ratio(cell.p99, bare.p99) if cell and bare else None
            text = f"x{n}: RPS {fmt_ratio_precise(rps)}"
            measured = measured and rps is not None
            met = met and rps is not None and rps >= min_rps
            if max_p99 is not None:
                text += f", p99 {fmt_ratio_precise(p99)}"
                met = met and p99 is not None and p99 <= max_p99
            shown.append(text)
        verdict = "met" if met else "NOT met" if measured else "not measured"
        lines.append(f"- Target: {goal} — {'; '.join(shown)} -> {verdict}")
    reference = results.streams.get(STREAM_REFERENCE)
    for name, minimum in STREAM_TARGETS.items():
        stream = results.streams.get(name)
        value = ratio(stream.rate, reference.rate) if stream and reference else None
        verdict = "not measured" if value is None else "met" if value >= minimum else "NOT met"
        lines.append(
            f"- Target: streaming `{name}` >= {minimum:.2f}x `{STREAM_REFERENCE}` msgs/s — "
            f"{fmt_ratio_precise(value)} -> {verdict}"
        )
        cpu = (
            ratio(stream.server_cpu_per_message, reference.server_cpu_per_message)
            if stream and reference
            else None
        )
        lines.append(
            f"- Info: streaming `{name}` server CPU per message / `{STREAM_REFERENCE}`'s: "
            f"{fmt_ratio_precise(cpu)}"
        )
    return lines


def distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def machine_facts(split: tuple[set[int], set[int]] | None) -> list[str]:
    cpus = cpu_count()
    if split is None:
        shared = (
            f"nproc {cpus}, nothing pinned: client and server processes (and their grpc "
            "threads) compete for the same CPUs"
        )
    else:
        client, server = (",".join(map(str, sorted(part))) for part in split)
        shared = (
            f"nproc {cpus}: client and servers share the machine; each server process is "
            f"pinned to CPU {server}, the client process to CPU {client} (all threads)"
        )
    return [
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}",
        shared,
        f"grpcio {grpc.__version__}, protobuf {google.protobuf.__version__} "
        f"(backend: {api_implementation.Type()}), protoc-gen-pyservice "
        f"{distribution_version('protoc-gen-pyservice')}, PyJWT {distribution_version('PyJWT')}",
        f"load average at start: {load_average()}",
    ]


def render_section(
    results: Results, command: str, args: argparse.Namespace, facts: Sequence[str]
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## RPC throughput and latency (loopback)",
        "",
        f"Recorded {now} with `{command}`.",
        "",
        *(f"- {fact}" for fact in facts),
        "",
        "Servers, each in its own process (client: this script, one grpc.aio channel per "
        "server, `channel.unary_unary`/`unary_stream` on the method path, the same code and "
        "metadata — a bearer token — for every server):",
        "",
        *(f"- `{kind}`: {title}" for kind, title in SERVER_TITLES.items()),
        "",
        *textwrap.wrap(
            f"Unary: closed loop, N tasks calling back-to-back; {args.warmup:g} s warm-up, "
            f"then calls completing in a {args.seconds:g} s window count. {args.rounds} "
            "round(s), servers rotated within each concurrency per round; the table shows "
            "the median over rounds of RPS, p50 and p99 (nearest rank, per round). Server "
            "CPU µs/call: the server process's CPU time (all threads, from /proc) in the "
            "window / calls; CPU %: CPU seconds per second (100 = one core busy). The client "
            "sends no deadline, so both `pyservice` servers put the 10 s limit on the wait "
            "for the request and `pyservice+all` applies GetUser's 5 s server deadline "
            "(runtime.timeouts) to every call. Handlers return one prebuilt response. "
            "The access log interceptor runs with its logger at WARNING (no output per call).",
            width=88,
        ),
        "",
        *render_unary(results, args.concurrency),
        "",
        *render_streams(results, args.stream_messages),
        "",
        *textwrap.wrap(
            f"Streaming: one stream per round per handler (after a {STREAM_WARMUP_MESSAGES:,}"
            "-message warm-up stream), timed from the call to its end on the client; the "
            "handler yields (or writes) one prebuilt `UserUpdate` N times, N from request "
            "metadata. Median over rounds.",
            width=88,
        ),
        *stream_bound_note(results),
        "",
        "### Targets",
        "",
        *target_lines(results, args.concurrency),
    ]
    for kind, failure in results.server_failures.items():
        lines.append(f"- FAILED: `{kind}`: {failure}")
    return "\n".join(lines) + "\n"


Markers = tuple[str, str]  # (start, end) around a section of BENCHMARKS.md


def splice_section(
    document: str, section: str, source: Path, markers: Markers = (START_MARKER, END_MARKER)
) -> str:
    """Replace the text between the markers, or append a marked section."""
    start_marker, end_marker = markers
    block = f"{start_marker}\n{section}{end_marker}"
    start, end = document.find(start_marker), document.find(end_marker)
    if start == -1 and end == -1:
        return document.rstrip("\n") + "\n\n" + block + "\n"
    if start == -1 or end == -1 or end < start:
        raise SystemExit(f"{source}: markers {start_marker} / {end_marker} are unbalanced")
    return document[:start] + block + document[end + len(end_marker) :]


def write_benchmarks(
    path: Path, section: str, markers: Markers = (START_MARKER, END_MARKER)
) -> None:
    document = path.read_text(encoding="utf-8") if path.exists() else BENCHMARKS_HEADER
    path.write_text(splice_section(document, section, path, markers), encoding="utf-8")


# --------------------------------------------------------------------------- main


def profile_directory(args: argparse.Namespace, scratch: Path) -> Path | None:
    """Where the servers write their profiles: --profile-dir (made), scratch for --profile."""
    if args.profile_dir is not None:
        directory: Path = args.profile_dir.resolve()
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    return scratch if args.profile else None


def start_servers(
    starts: Mapping[str, Callable[[], ServerProcess]], servers: dict[str, ServerProcess]
) -> dict[str, str]:
    """Start each server in turn into `servers` (so the caller stops them whatever happens);
    returns why the others did not start."""
    failures = {}
    for kind, start in starts.items():
        try:
            servers[kind] = start()
        except ServerStartError as error:
            failures[kind] = f"did not start: {first_error_line(str(error))}"
            progress(f"[start] {kind} did not start:\n{error}")
            continue
        progress(f"[start] {kind} on 127.0.0.1:{servers[kind].port}")
    return failures


def exit_failures(servers: dict[str, ServerProcess]) -> dict[str, str]:
    """The stopped servers that exited otherwise than by stop_server's SIGTERM."""
    failures = {}
    for kind, server in servers.items():
        code = server.process.returncode
        if code not in (0, -signal.SIGTERM):
            failures[kind] = f"exit status {code}"
            progress(f"[stop] {kind} exited with {code}:\n{server.stderr_tail()}")
    return failures


def publish(section: str, profiles: Sequence[str], markers: Markers | None) -> None:
    """Print the section and any profiles; with `markers`, also write it into BENCHMARKS.md."""
    print(section)
    if profiles:
        print("## Server profiles (cProfile: numbers above are slowed down by it)\n")
        print("\n\n".join(profiles))
    if markers is not None:
        write_benchmarks(BENCHMARKS_MD, section, markers)
        progress(f"wrote {BENCHMARKS_MD}")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    if args.serve:
        kind, stubs = args.serve
        cpus = set(args.cpus) if args.cpus else None
        return serve_main(server_starter(kind, Path(stubs)), args.profile_out, cpus)
    split = None if args.no_pin else cpu_split()
    facts = machine_facts(split)
    if split is not None:
        pin_threads(split[0])
    servers: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rpc-") as tmp:
        scratch = Path(tmp)
        stubs = scratch / "stubs"
        progress(f"[build] grpcio-tools stubs into {stubs}")
        compile_stubs(stubs)
        (pb2,) = import_from(stubs, "user.v1.user_pb2")
        profile_dir = profile_directory(args, scratch)
        cpus = split[1] if split else None
        try:
            start_failures = start_servers(
                {
                    kind: functools.partial(start_server, kind, stubs, scratch, profile_dir, cpus)
                    for kind in SERVERS
                },
                servers,
            )
            results = asyncio.run(run_cells(servers, pb2, args, start_failures))
        finally:
            for server in servers.values():
                stop_server(server)
        for kind, failure in exit_failures(servers).items():
            results.server_failures.setdefault(kind, failure)
        profiles = [profile_report(server) for server in servers.values() if server.profile]

    command = shlex.join(["python", "bench/bench_rpc.py", *arguments])
    section = render_section(results, command, args, facts)
    publish(section, profiles, (START_MARKER, END_MARKER) if args.write else None)
    failed = (
        results.server_failures
        or any(cell.failure for cell in results.unary.values())
        or any(cell.failure for cell in results.streams.values())
    )
    return 1 if failed else 0


def concurrency_list(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(",") if part.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers separated by commas")
    return values


def add_shared_arguments(
    parser: argparse.ArgumentParser,
    defaults: Mapping[str, float],
    quick: Mapping[str, float],
    section: str,
) -> None:
    """The options of the scripts built on this one: --seconds, --warmup and --rounds (None
    until settle_arguments gives them `defaults` or `quick`), --concurrency, --quick, --no-pin,
    --profile, --profile-dir, --write (of the bench:`section` section), and the server side's
    hidden --profile-out and --cpus."""
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"measured window per cell and round (default {defaults['seconds']:g})",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"warm-up before each window (default {defaults['warmup']:g})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds over every cell, order rotated; medians reported (default "
        f"{defaults['rounds']:g})",
    )
    add_counts_argument(
        parser, "--concurrency", DEFAULT_CONCURRENCY, "calls in flight per unary cell"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="defaults for a quick look: "
        + ", ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in quick.items()),
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the servers to the last CPU and this client to the others",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the servers under cProfile and print their hotspots (slows them down)",
    )
    parser.add_argument(
        "--profile-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --profile: keep the servers' .prof files in DIR (implies --profile)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"replace the bench:{section} section of {BENCHMARKS_MD.name}",
    )
    parser.add_argument("--profile-out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cpus", type=concurrency_list, default=None, help=argparse.SUPPRESS)


def add_counts_argument(
    parser: argparse.ArgumentParser, flag: str, default: tuple[int, ...], what: str
) -> None:
    """An option taking positive integers separated by commas."""
    parser.add_argument(
        flag,
        type=concurrency_list,
        default=default,
        metavar="N,N,...",
        help=f"{what} (default {','.join(map(str, default))})",
    )


def settle_arguments(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    defaults: Mapping[str, float],
    quick: Mapping[str, float],
) -> None:
    """Fill in the options left None (`quick`'s values with --quick, else `defaults`, each of
    its default's type) and check the shared ones."""
    for name, default in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, type(default)(quick[name]) if args.quick else default)
    if args.seconds <= 0 or args.warmup < 0 or args.rounds < 1:
        parser.error("--seconds must be > 0, --rounds >= 1, --warmup >= 0")
    if args.profile_dir is not None:
        args.profile = True
    if args.write and args.profile:
        parser.error("--write records unprofiled numbers; drop --profile")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    defaults = {
        "seconds": DEFAULT_SECONDS,
        "warmup": DEFAULT_WARMUP,
        "rounds": DEFAULT_ROUNDS,
        "stream_messages": DEFAULT_STREAM_MESSAGES,
    }
    add_shared_arguments(parser, defaults, QUICK, "rpc")
    parser.add_argument(
        "--stream-messages",
        type=int,
        default=None,
        metavar="N",
        help=f"messages per timed stream (default {DEFAULT_STREAM_MESSAGES:,})",
    )
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "STUBS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settle_arguments(parser, args, defaults, QUICK)
    if args.serve and args.serve[0] not in SERVERS:
        parser.error(f"--serve: unknown server {args.serve[0]}")
    if args.stream_messages < 1:
        parser.error("--stream-messages must be >= 1")
    return args


if __name__ == "__main__":
    sys.exit(main())
