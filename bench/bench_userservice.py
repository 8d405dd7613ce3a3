"""The example UserService end to end on loopback, beside a bare grpc.aio server.

The real service (examples/userservice: generated server, every interceptor as bench_rpc.py's
`pyservice+all` has them, the UserService handlers) runs in its own process on the embedded
SQLite store and, when a server can be had, on PostgreSQL, each seeded with 10,000 users; the
bare grpcio-tools server of bench_rpc.py (a prebuilt response, nothing stored) is the
baseline, measured in the same run by the same client:

- unary `GetUser` of random seeded ids, closed loop, 1, 8 and 64 calls in flight;
- `CreateUser` with argon2id at OWASP's parameters, beside argon2 alone (the same parameters,
  as many threads, in a process pinned like the servers): how much of its cost is the hash;
- update fan-out: 1, 10 and 100 `StreamUserUpdates` subscribers to every user, fed by
  `UpdateUser` calls; beside the bare server pushing prebuilt messages into as many streams.

Cells are interleaved and repeated (rotating order per round); tables show medians.
With 2+ CPUs the servers (and PostgreSQL) are pinned to the last CPU, the client to the others.

    .venv/bin/python bench/bench_userservice.py              # Markdown on stdout (~2.5 min)
    .venv/bin/python bench/bench_userservice.py --quick      # 1 round, short cells (~45 s)
    .venv/bin/python bench/bench_userservice.py --quick --profile   # cProfile the servers
    .venv/bin/python bench/bench_userservice.py --write      # also update BENCHMARKS.md

See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import functools
import itertools
import os
import random
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import grpc.aio
from google.protobuf import field_mask_pb2

if TYPE_CHECKING:  # mypy sees bench/ as a package; run as a script, bench/ is on sys.path
    from bench import bench_rpc as rpc
else:
    import bench_rpc as rpc

sys.path.insert(1, str(rpc.REPO_ROOT))  # examples/ and tests/, after bench/

SCRIPT = Path(__file__).resolve()
MARKERS = ("<!-- bench:userservice:start -->", "<!-- bench:userservice:end -->")
SQLITE = "userservice/sqlite"
POSTGRES = "userservice/postgres"
SERVICES = (SQLITE, POSTGRES)
SERVERS = (rpc.BARE, *SERVICES)
FAN_OUT_SERVERS = (rpc.BARE, SQLITE)  # the fan-out does not depend on the store
SERVER_TITLES = {
    rpc.BARE: "bench_rpc.py's bare server: plain `grpc.aio.server()`, grpcio-tools servicer "
    "returning one prebuilt response (stream: yielding one prebuilt message N times); "
    "nothing stored",
    SQLITE: "examples/userservice as `make serve` builds it (`app.running`, `UserService`, "
    "`serve.build_server`, the service's ErrorMap) with `pyservice+all`'s interceptors: "
    "request ids, access log (logger at WARNING), JWT auth, rate limit, Prometheus metrics, "
    "OpenTelemetry tracing (no SDK: no-op), server deadlines, health; the embedded SQLite "
    "store (WAL, synchronous=FULL, one writer and 2 reader threads) in a file in the run's "
    "temporary directory; "
    "no Redis (so no GetUser cache, the local update bus)",
    POSTGRES: "the same service on PostgreSQL (asyncpg pool of at most 10 connections) on "
    "127.0.0.1, a server of its own with default durability (fsync on)",
}
GET_USER = "/user.v1.UserService/GetUser"
CREATE_USER = "/user.v1.UserService/CreateUser"
UPDATE_USER = "/user.v1.UserService/UpdateUser"
STREAM_UPDATES = "/user.v1.UserService/StreamUserUpdates"

DEFAULT_USERS = 10_000
SEED = 10  # issue 10: the same users and the same random ids every run
PASSWORD = "correct horse battery staple"
GET_REQUESTS = 50_000  # random ids drawn once; every server gets the same sequence
DEFAULT_CONCURRENCY = (1, 8, 64)
DEFAULT_CREATE_CONCURRENCY = (1, 8)
DEFAULT_SUBSCRIBERS = (1, 10, 100)
DEFAULT_SECONDS = 3.0
DEFAULT_WARMUP = 1.0
DEFAULT_ROUNDS = 2
DEFAULT_BARE_STREAM_MESSAGES = 60_000  # all subscribers together, per bare fan-out cell
QUICK = {"seconds": 1.5, "warmup": 0.5, "rounds": 1, "bare_stream_messages": 20_000}
# The hasher's threads (passwords.PasswordHasher's max_concurrent default).
HASHER_THREADS = os.cpu_count() or 1
# Fan-out: UpdateUser calls in flight; how far (updates) the slowest subscriber may fall
# behind before the writers wait (the hub ends a subscriber 1,024 behind); streams a channel
# (the server allows 100 at once on one connection: runtime.serve.MAX_CONCURRENT_STREAMS).
FAN_OUT_WRITERS = 8
FAN_OUT_WINDOW = 256
STREAMS_PER_CHANNEL = 50
SUBSCRIBE_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 10.0
HASH_RATE_TIMEOUT_S = 120.0
# Target: GetUser with every interceptor on >= this times the bare in-memory baseline's RPS.
GET_USER_TARGET = 0.6
PROFILE_FOCUS = ("protoc_gen_pyservice/runtime", "examples/userservice", "generated/user")


def seed_ids(count: int) -> list[str]:
    """The seeded users' ids: random UUIDs, the same in every process and run."""
    rng = random.Random(SEED)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


# --------------------------------------------------------------------------- servers


async def start_userservice(database_url: str, users: int) -> tuple[int, rpc.Stop]:
    """The UserService on `database_url`, seeded with `users` users, on 127.0.0.1:0."""
    rpc.import_from(rpc.GENERATED_DIR, "user.v1.user_pb2", "user.v1.user_service")
    from protoc_gen_pyservice.runtime import serve
    from user.v1 import user_service

    from examples.userservice import app, config
    from examples.userservice.services.user_service import UserService

    settings = dataclasses.replace(
        config.server_settings_from({"PYSERVICE_PORT": "0"}),
        interceptors=rpc.every_interceptor(),
    )
    stack = contextlib.AsyncExitStack()
    try:
        dependencies = await stack.enter_async_context(
            app.running(config.ServiceConfig(database_url=database_url))
        )
        await seed(database_url, users, await dependencies.passwords.hash(PASSWORD))
        service = serve.build_server(
            [(user_service.add_user_service_to_server, UserService(dependencies))], settings
        )
        await service.start()
    except BaseException:
        await stack.aclose()
        raise

    async def stop() -> None:
        await service.stop(0)
        await stack.aclose()

    return service.port, stop


async def seed(database_url: str, users: int, password_hash: str) -> None:
    """Insert the seeded users in one transaction, beside the store (which made the schema)."""
    from examples.userservice.store.base import NewUser, UserStatements

    now = time.time_ns() // 1000
    records = [
        UserStatements.insert_parameters(
            NewUser(
                id=user_id,
                email=f"user{number}@example.com",
                first_name="Ada",
                last_name=f"Lovelace{number}",
                role=1 + number % 3,
                password_hash=password_hash,
                created_at=now + number,
            )
        )
        for number, user_id in enumerate(seed_ids(users))
    ]
    sqlite_prefix = "sqlite:///"
    if database_url.startswith(sqlite_prefix):
        connection = sqlite3.connect(database_url[len(sqlite_prefix) :], isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            for record in records:
                connection.execute(UserStatements("?{}").insert, record).fetchall()
            connection.execute("COMMIT")
            connection.execute("ANALYZE")
        finally:
            connection.close()
        return
    import asyncpg

    postgres = await asyncpg.connect(database_url)
    try:
        async with postgres.transaction():
            await postgres.executemany(UserStatements("${}").insert, records)
        await postgres.execute("ANALYZE users")
    finally:
        await postgres.close()


def start_service(
    kind: str,
    database_url: str,
    users: int,
    scratch: Path,
    profile_dir: Path | None,
    cpus: set[int] | None,
) -> rpc.ServerProcess:
    command = [sys.executable, str(SCRIPT), "--serve", kind, database_url, "--users", str(users)]
    return rpc.spawn_server(kind, command, scratch, profile_dir, cpus)


def proc_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: state, ppid, ..., utime (11), stime (12)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


@dataclass
class Postgres:
    """A PostgreSQL server of our own, for this run."""

    url: str
    postmaster: int
    version: str

    def family(self) -> list[int]:
        """The postmaster and its children (the backends, the background processes)."""
        children = []
        for entry in os.listdir("/proc"):
            if (
                entry.isdigit()
                and (stat := proc_stat(int(entry)))
                and stat[1] == str(self.postmaster)
            ):
                children.append(int(entry))
        return [self.postmaster, *children]

    def cpu_seconds(self) -> float | None:
        """CPU of the server's processes so far, those that ended included (reaped by the
        postmaster); None when the postmaster cannot be read."""
        root = proc_stat(self.postmaster)
        if root is None:
            return None
        ticks = int(root[13]) + int(root[14])  # children the postmaster has reaped
        for pid in self.family():
            if (stat := proc_stat(pid)) is not None:
                ticks += int(stat[11]) + int(stat[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def pin(self, cpus: set[int]) -> None:
        """Pin every process of the server; backends forked later inherit the postmaster's."""
        for pid in self.family():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, cpus)


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres | str]:
    """A PostgreSQL server on 127.0.0.1 as the tests start one (tests/userservice/
    postgres_server.py), but with the default durability settings; or why there is none."""
    from tests.userservice.postgres_server import throwaway_server

    with throwaway_server(durable=True) as server:
        if isinstance(server, str):
            yield server
            return
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        version = subprocess.run(
            [server.binaries / "postgres", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        yield Postgres(server.url, postmaster, version)


# --------------------------------------------------------------------------- argon2 alone


def hash_rate_main(threads: int, seconds: float, cpus: set[int] | None) -> int:
    """The `--hash-rate` subprocess: `threads` threads hash PASSWORD with OWASP_PARAMETERS for
    `seconds`; prints `HASHES count elapsed cpu_seconds`."""
    if cpus:
        rpc.pin_threads(cpus)  # before the threads start: they inherit the mask
    import argon2

    from examples.userservice.passwords import OWASP_PARAMETERS

    hasher = argon2.PasswordHasher.from_parameters(OWASP_PARAMETERS)
    secret = PASSWORD.encode()
    hasher.hash(secret)  # warm-up
    counts = [0] * threads
    started = time.perf_counter()
    cpu0 = time.process_time()

    def work(index: int) -> None:
        while time.perf_counter() - started < seconds:
            hasher.hash(secret)
            counts[index] += 1

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    print(f"HASHES {sum(counts)} {elapsed} {cpu}", flush=True)
    return 0


@dataclass(frozen=True)
class HashSample:
    hashes: int
    seconds: float
    cpu: float


@dataclass
class HashCell:
    threads: int
    samples: list[HashSample] = field(default_factory=list)
    failure: str | None = None

    @property
    def rate(self) -> float | None:
        rates = [s.hashes / s.seconds for s in self.samples if s.hashes]
        return statistics.median(rates) if rates else None

    @property
    def cpu_per_hash(self) -> float | None:
        values = [s.cpu / s.hashes for s in self.samples if s.hashes]
        return statistics.median(values) if values else None


async def measure_hash_rate(cell: HashCell, seconds: float, cpus: set[int] | None) -> None:
    command = [str(SCRIPT), "--hash-rate", str(cell.threads), str(seconds)]
    if cpus:
        command += ["--cpus", ",".join(map(str, sorted(cpus)))]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), HASH_RATE_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        cell.failure = f"no answer after {HASH_RATE_TIMEOUT_S:.0f}s"
        return
    words = out.decode().split()
    if process.returncode != 0 or len(words) != 4 or words[0] != "HASHES":
        cell.failure = rpc.first_error_line(err.decode())
        return
    cell.samples.append(HashSample(int(words[1]), float(words[2]), float(words[3])))


def hash_threads(concurrency: int) -> int:
    """How many hashes run at once with `concurrency` CreateUser calls in flight."""
    return min(concurrency, HASHER_THREADS)


# --------------------------------------------------------------------------- client


class Client:
    """One channel per server for unary calls (more for streams); grpcio-tools stubs."""

    def __init__(
        self, pb2: Any, port: int, metadata: tuple[tuple[str, str], ...], ids: Sequence[str]
    ) -> None:
        self.pb2 = pb2
        self.target = f"127.0.0.1:{port}"
        self.channel = grpc.aio.insecure_channel(self.target)
        self.metadata = metadata
        self.ids = ids
        rng = random.Random(SEED)
        self.get_requests = [pb2.GetUserRequest(id=rng.choice(ids)) for _ in range(GET_REQUESTS)]
        self.get_user = self.unary(self.channel, GET_USER, "GetUser")
        self.create_user = self.unary(self.channel, CREATE_USER, "CreateUser")
        self.update_user = self.unary(self.channel, UPDATE_USER, "UpdateUser")
        self.emails = itertools.count()
        self.updates = itertools.count()
        self.update_mask = field_mask_pb2.FieldMask(paths=["first_name"])

    def unary(self, channel: grpc.aio.Channel, path: str, name: str) -> Any:
        return channel.unary_unary(
            path,
            request_serializer=getattr(self.pb2, f"{name}Request").SerializeToString,
            response_deserializer=getattr(self.pb2, f"{name}Response").FromString,
        )

    def stream_channels(self, streams: int) -> tuple[list[grpc.aio.Channel], list[Any]]:
        """Channels, each a connection of its own, and `streams` StreamUserUpdates callables
        on them, STREAMS_PER_CHANNEL a channel."""
        channels = [
            grpc.aio.insecure_channel(self.target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(-(-streams // STREAMS_PER_CHANNEL))
        ]
        callables = [
            channels[n // STREAMS_PER_CHANNEL].unary_stream(
                STREAM_UPDATES,
                request_serializer=self.pb2.StreamUserUpdatesRequest.SerializeToString,
                response_deserializer=self.pb2.UserUpdate.FromString,
            )
            for n in range(streams)
        ]
        return channels, callables

    def get_random_user(self) -> Callable[[], Awaitable[object]]:
        requests = itertools.cycle(self.get_requests)
        return lambda: self.get_user(next(requests), metadata=self.metadata)

    def create_new_user(self) -> Awaitable[object]:
        request = self.pb2.CreateUserRequest(
            email=f"bench{next(self.emails)}@example.com",
            first_name="Grace",
            last_name="Hopper",
            password=PASSWORD,
            role=self.pb2.USER_ROLE_USER,
        )
        call: Awaitable[object] = self.create_user(request, metadata=self.metadata)
        return call

    def rename(self, first_name: str) -> Awaitable[object]:
        """UpdateUser of a random seeded user: first_name only."""
        request = self.pb2.UpdateUserRequest(
            id=random.choice(self.ids), first_name=first_name, update_mask=self.update_mask
        )
        call: Awaitable[object] = self.update_user(request, metadata=self.metadata)
        return call

    async def check(self, kind: str) -> str | None:
        """None if GetUser of the first seeded id answers (with that user from a service)."""
        user_id = self.ids[0]
        try:
            response = await self.get_user(
                self.pb2.GetUserRequest(id=user_id), metadata=self.metadata, timeout=10
            )
        except grpc.aio.AioRpcError as error:
            return rpc.rpc_error_text(error)
        if kind != rpc.BARE and response.user.id != user_id:
            return f"asked for {user_id}, got {response.user.id}"
        return None

    async def close(self) -> None:
        await self.channel.close(None)


# --------------------------------------------------------------------------- fan-out


@dataclass(frozen=True)
class FanOutSample:
    writes: int  # UpdateUser calls completed in the window (bare: 0)
    delivered: int  # messages the subscribers received in the window
    seconds: float
    write_latencies: list[float]
    server_cpu: float | None  # server CPU seconds in the window
    client_cpu: float  # this process's CPU seconds in the window
    error: str | None

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds


@dataclass
class FanOutCell:
    server: str
    subscribers: int
    samples: list[FanOutSample] = field(default_factory=list)
    failure: str | None = None

    def median(self, value: Callable[[FanOutSample], float | None]) -> float | None:
        good = (s for s in self.samples if s.error is None and s.delivered)
        values = [v for v in map(value, good) if v is not None]
        return statistics.median(values) if values else None

    @property
    def rate(self) -> float | None:
        return self.median(lambda s: s.rate)

    @property
    def writes(self) -> float | None:
        return self.median(lambda s: s.writes / s.seconds if s.writes else None)

    @property
    def write_p99(self) -> float | None:
        return self.median(lambda s: rpc.percentile(s.write_latencies, 0.99) if s.writes else None)

    @property
    def cpu_per_message(self) -> float | None:
        return self.median(lambda s: None if s.server_cpu is None else s.server_cpu / s.delivered)

    @property
    def cpu_per_write(self) -> float | None:
        return self.median(
            lambda s: None if s.server_cpu is None or not s.writes else s.server_cpu / s.writes
        )

    @property
    def server_cpu(self) -> float | None:
        return self.median(lambda s: None if s.server_cpu is None else s.server_cpu / s.seconds)

    @property
    def client_cpu(self) -> float | None:
        return self.median(lambda s: s.client_cpu / s.seconds)


class Subscribers:
    """`count` StreamUserUpdates calls for every user, each read by a task that counts."""

    def __init__(self, client: Client, count: int, messages: int | None = None) -> None:
        metadata = client.metadata
        if messages is not None:  # the bare server: how many prebuilt messages to send
            metadata = (*metadata, (rpc.MESSAGES_HEADER, str(messages)))
        request = client.pb2.StreamUserUpdatesRequest()
        self.channels, streams = client.stream_channels(count)
        self.calls = [stream(request, metadata=metadata) for stream in streams]
        self.received = [0] * count
        self.last = [""] * count  # first_name of the last update each received
        self.progress = asyncio.Event()
        self.errors: list[str] = []
        self.readers = [asyncio.create_task(self.read(n)) for n in range(count)]

    async def read(self, index: int) -> None:
        try:
            async for update in self.calls[index]:
                self.received[index] += 1
                self.last[index] = update.user.first_name
                self.progress.set()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                self.errors.append(rpc.rpc_error_text(error))
        self.progress.set()

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while not condition():
            if self.errors or (remaining := deadline - time.perf_counter()) <= 0:
                return False
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), remaining)
        return True

    async def close(self) -> None:
        for call, reader in zip(self.calls, self.readers, strict=True):
            call.cancel()
            reader.cancel()  # a cancelled call raises CancelledError in its reader
        await asyncio.gather(*self.readers, return_exceptions=True)
        for channel in self.channels:
            await channel.close(None)


async def subscribe(client: Client, subscribers: Subscribers) -> str | None:
    """Wait until each stream has received something, then for a barrier update every stream
    receives: from then on every update reaches all of them. None, or what went wrong."""
    deadline = time.perf_counter() + SUBSCRIBE_TIMEOUT_S
    try:
        while min(subscribers.received) == 0:
            if subscribers.errors or time.perf_counter() > deadline:
                return subscribers.errors[0] if subscribers.errors else "streams not subscribed"
            await client.rename("prime")
            await subscribers.wait_for(lambda: min(subscribers.received) > 0, 0.2)
        await client.rename("barrier")
    except grpc.aio.AioRpcError as error:
        return f"UpdateUser: {rpc.rpc_error_text(error)}"
    if not await subscribers.wait_for(
        lambda: all(name == "barrier" for name in subscribers.last), SUBSCRIBE_TIMEOUT_S
    ):
        return subscribers.errors[0] if subscribers.errors else "barrier update not seen"
    return None


async def fan_out(
    client: Client, server: rpc.ServerProcess, count: int, warmup: float, seconds: float
) -> FanOutSample:
    """UpdateUser calls (FAN_OUT_WRITERS in flight, held back while the slowest subscriber is
    FAN_OUT_WINDOW updates behind) into `count` subscribers; every update must reach each."""
    subscribers = Subscribers(client, count)
    failed = functools.partial(FanOutSample, 0, 0, seconds, [], None, 0.0)
    try:
        if (problem := await subscribe(client, subscribers)) is not None:
            return failed(problem)
        base = list(subscribers.received)
        received = subscribers.received

        def slowest() -> int:
            return min(now - then for now, then in zip(received, base, strict=True))

        clock = time.perf_counter
        window_start = clock() + warmup
        window_end = window_start + seconds
        issued, completed = 0, 0
        latencies: list[float] = []
        errors: list[str] = []

        def keeping_up() -> bool:
            return issued - slowest() < FAN_OUT_WINDOW

        async def writer() -> None:
            nonlocal issued, completed
            while clock() < window_end and not subscribers.errors:
                if not keeping_up():
                    await subscribers.wait_for(keeping_up, 1.0)
                    continue
                issued += 1
                started = clock()
                try:
                    await client.rename(f"w{issued}")
                except grpc.aio.AioRpcError as error:
                    errors.append(rpc.rpc_error_text(error))
                    issued -= 1
                    await asyncio.sleep(0.01)
                    continue
                finished = clock()
                completed += 1
                if window_start <= finished < window_end:
                    latencies.append(finished - started)

        async def sample() -> tuple[int, int, float | None, float]:
            await asyncio.sleep(max(0.0, window_start - clock()))
            w0, d0, s0, c0 = completed, sum(received), server.cpu_seconds(), time.process_time()
            await asyncio.sleep(max(0.0, window_end - clock()))
            w1, d1, s1, c1 = completed, sum(received), server.cpu_seconds(), time.process_time()
            server_cpu = s1 - s0 if s0 is not None and s1 is not None else None
            return w1 - w0, d1 - d0, server_cpu, c1 - c0

        window = asyncio.create_task(sample())
        await asyncio.gather(*(writer() for _ in range(FAN_OUT_WRITERS)))
        writes, delivered, server_cpu, client_cpu = await window
        error = errors[0] if errors else None
        if not await subscribers.wait_for(lambda: slowest() >= completed, DRAIN_TIMEOUT_S):
            lost = completed * count - (sum(received) - sum(base))
            error = subscribers.errors[0] if subscribers.errors else f"{lost} updates not delivered"
        return FanOutSample(writes, delivered, seconds, latencies, server_cpu, client_cpu, error)
    finally:
        await subscribers.close()


async def bare_fan_out(
    client: Client, server: rpc.ServerProcess, count: int, messages: int
) -> FanOutSample:
    """`count` streams of the bare server at once, `messages` in all, timed to the last end."""
    each = max(1, messages // count)
    cpu0, client0 = server.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    subscribers = Subscribers(client, count, messages=each)
    await asyncio.gather(*subscribers.readers)
    seconds = time.perf_counter() - started
    cpu1, client1 = server.cpu_seconds(), time.process_time()
    delivered = sum(subscribers.received)
    error = subscribers.errors[0] if subscribers.errors else None
    if error is None and delivered != each * count:
        error = f"received {delivered} of {each * count} messages"
    server_cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    await subscribers.close()
    return FanOutSample(0, delivered, seconds, [], server_cpu, client1 - client0, error)


# --------------------------------------------------------------------------- run


@dataclass
class Results:
    get: dict[tuple[str, int], rpc.UnaryCell]
    create: dict[tuple[str, int], rpc.UnaryCell]
    hashes: dict[int, HashCell]
    fan_out: dict[tuple[str, int], FanOutCell]
    server_failures: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # server: why it was not run

    def problem(self, kind: str, failure: str | None) -> str | None:
        """What the errors column says instead of a count, if anything."""
        failure = failure or self.server_failures.get(kind)
        return f"FAILED: {failure}" if failure else None

    def shown(self, kinds: Sequence[str]) -> list[str]:
        """The servers that have rows: those not skipped."""
        return [kind for kind in kinds if kind not in self.skipped]


def unary_progress(label: str, name: str, cell: rpc.UnaryCell, sample: rpc.UnarySample) -> None:
    if sample.calls == 0:
        cell.failure = sample.first_error or "no call completed"
    errors = f"  {sample.errors} errors: {sample.first_error}" if sample.errors else ""
    p50 = rpc.percentile(sample.latencies, 0.5) if sample.latencies else None
    p99 = rpc.percentile(sample.latencies, 0.99) if sample.latencies else None
    rpc.progress(
        f"{label} {name} {cell.server:<20} x{cell.concurrency:<3} {sample.rps:8.0f}/s"
        f"  p50 {rpc.fmt_ms(p50)}  p99 {rpc.fmt_ms(p99)} ms{errors}"
    )


async def run_cells(
    servers: dict[str, rpc.ServerProcess],
    clients: dict[str, Client],
    postgres: Postgres | None,
    args: argparse.Namespace,
    results: Results,
    server_cpus: set[int] | None,
) -> None:
    for kind, client in clients.items():
        problem = await client.check(kind)
        if problem is not None:
            results.server_failures[kind] = f"check call failed: {problem}"
            rpc.progress(f"[check] {kind}: {problem}")
    live = [kind for kind in clients if kind not in results.server_failures]
    services = [kind for kind in live if kind != rpc.BARE]

    def db_cpu(kind: str) -> Callable[[], float | None] | None:
        return postgres.cpu_seconds if kind == POSTGRES and postgres else None

    fan_out_servers = [kind for kind in FAN_OUT_SERVERS if kind in live]
    for kind in fan_out_servers:  # warm-up: the first streams, imports, caches
        for count in args.subscribers:
            if kind == rpc.BARE:
                await bare_fan_out(clients[kind], servers[kind], count, count * 20)
            else:
                await fan_out(clients[kind], servers[kind], count, 0.0, 0.2)
    for round_index in range(args.rounds):
        label = f"[round {round_index + 1}/{args.rounds}]"
        for n in args.concurrency:
            for kind in rpc.rotated(live, round_index):
                cell = results.get[(kind, n)]
                if cell.failure is None:
                    issue = clients[kind].get_random_user()
                    sample = await rpc.closed_loop(
                        issue, n, args.warmup, args.seconds, servers[kind], db_cpu(kind)
                    )
                    cell.samples.append(sample)
                    unary_progress(label, "GetUser   ", cell, sample)
        for n in args.create_concurrency:
            hashes = results.hashes[hash_threads(n)]
            if len(hashes.samples) <= round_index and hashes.failure is None:
                await measure_hash_rate(hashes, args.seconds, server_cpus)
                rpc.progress(
                    f"{label} argon2 alone, {hashes.threads} thread(s):"
                    f" {fmt_rate_fine(hashes.rate)} hashes/s"
                )
            for kind in rpc.rotated(services, round_index):
                cell = results.create[(kind, n)]
                if cell.failure is None:
                    sample = await rpc.closed_loop(
                        clients[kind].create_new_user,
                        n,
                        args.warmup,
                        args.seconds,
                        servers[kind],
                        db_cpu(kind),
                    )
                    cell.samples.append(sample)
                    unary_progress(label, "CreateUser", cell, sample)
        for count in args.subscribers:
            for kind in rpc.rotated(fan_out_servers, round_index):
                fan = results.fan_out[(kind, count)]
                if fan.failure is not None:
                    continue
                if kind == rpc.BARE:
                    each = await bare_fan_out(
                        clients[kind], servers[kind], count, args.bare_stream_messages
                    )
                else:
                    each = await fan_out(
                        clients[kind], servers[kind], count, args.warmup, args.seconds
                    )
                fan.samples.append(each)
                fan.failure = each.error
                error = f"  {each.error}" if each.error else ""
                rpc.progress(
                    f"{label} fan-out {kind:<20} x{count:<3} {each.writes / each.seconds:7.0f}"
                    f" writes/s {each.rate:8.0f} msgs/s{error}"
                )


# --------------------------------------------------------------------------- report


Cell = TypeVar("Cell", rpc.UnaryCell, FanOutCell)


def beside_bare(
    cells: Mapping[tuple[str, int], Cell], counts: Sequence[int], kinds: Sequence[str]
) -> Iterator[tuple[str, int, Cell, Cell | None]]:
    """(server, count, its cell, bare's cell at that count) in table order."""
    for count in counts:
        bare = cells.get((rpc.BARE, count))
        for kind in kinds:
            if (cell := cells.get((kind, count))) is not None:
                yield kind, count, cell, bare


def render_get(results: Results, args: argparse.Namespace) -> list[str]:
    def row(kind: str, n: int, cell: rpc.UnaryCell, bare: rpc.UnaryCell | None) -> list[str]:
        return [
            kind,
            str(n),
            rpc.fmt_rate(cell.rps),
            rpc.fmt_ms(cell.p50),
            rpc.fmt_ms(cell.p99),
            rpc.fmt_ratio(rpc.ratio(cell.rps, bare.rps if bare else None)),
            rpc.fmt_ratio(rpc.ratio(cell.p99, bare.p99 if bare else None)),
            rpc.fmt_us(cell.server_cpu_per_call),
            rpc.fmt_ratio(
                rpc.ratio(cell.server_cpu_per_call, bare.server_cpu_per_call if bare else None)
            ),
            rpc.fmt_us(db_cpu_per_call(cell)),
            rpc.fmt_percent(cell.server_cpu),
            rpc.fmt_percent(cell.client_cpu),
            results.problem(kind, cell.failure) or str(cell.errors),
        ]

    return [
        f"### `GetUser` of random ids among {args.users:,} users",
        "",
        "| server | in flight | RPS | p50 ms | p99 ms | x bare RPS | x bare p99 "
        "| server CPU µs/call | x bare CPU | db CPU µs/call | server CPU % | client CPU % "
        "| errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            rpc.table_row(row(*each))
            for each in beside_bare(results.get, args.concurrency, results.shown(SERVERS))
        ),
    ]


def db_cpu_per_call(cell: rpc.UnaryCell) -> float | None:
    return cell.median(lambda s: None if s.other_cpu is None else s.other_cpu / s.rps)


def render_create(results: Results, args: argparse.Namespace) -> list[str]:
    lines = [
        "### `CreateUser` with argon2id at OWASP's parameters, beside argon2 alone",
        "",
        "| server | in flight | calls/s | p50 ms | p99 ms | argon2 alone /s (threads) "
        "| x argon2 alone | server CPU ms/call | argon2 CPU ms/hash | db CPU µs/call | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, n, cell, _ in beside_bare(
        results.create, args.create_concurrency, results.shown(SERVICES)
    ):
        hashes = results.hashes[hash_threads(n)]
        row = [
            kind,
            str(n),
            fmt_rate_fine(cell.rps),
            rpc.fmt_ms(cell.p50),
            rpc.fmt_ms(cell.p99),
            f"{fmt_rate_fine(hashes.rate)} ({hashes.threads})",
            rpc.fmt_ratio(rpc.ratio(cell.rps, hashes.rate)),
            rpc.fmt_ms(cell.server_cpu_per_call),
            rpc.fmt_ms(hashes.cpu_per_hash),
            rpc.fmt_us(db_cpu_per_call(cell)),
            results.problem(kind, cell.failure or hashes.failure) or str(cell.errors),
        ]
        lines.append(rpc.table_row(row))
    return lines


def fmt_rate_fine(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def render_fan_out(results: Results, args: argparse.Namespace) -> list[str]:
    def row(kind: str, count: int, cell: FanOutCell, bare: FanOutCell | None) -> list[str]:
        return [
            kind,
            str(count),
            rpc.fmt_rate(cell.writes),
            rpc.fmt_ms(cell.write_p99),
            rpc.fmt_rate(cell.rate),
            rpc.fmt_ratio(rpc.ratio(cell.rate, bare.rate if bare else None)),
            rpc.fmt_us_fine(cell.cpu_per_message),
            rpc.fmt_ratio(rpc.ratio(cell.cpu_per_message, bare.cpu_per_message if bare else None)),
            rpc.fmt_us(cell.cpu_per_write),
            rpc.fmt_percent(cell.server_cpu),
            rpc.fmt_percent(cell.client_cpu),
            results.problem(kind, cell.failure) or "0",
        ]

    rows = beside_bare(results.fan_out, args.subscribers, results.shown(FAN_OUT_SERVERS))
    return [
        "### Update fan-out: `StreamUserUpdates` subscribers to every user, fed by `UpdateUser`",
        "",
        "| server | subscribers | UpdateUser/s | UpdateUser p99 ms | delivered msgs/s "
        "| x bare msgs/s | server CPU µs/msg | x bare CPU/msg | server CPU µs/update "
        "| server CPU % | client CPU % | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(rpc.table_row(row(*each)) for each in rows),
    ]


def target_lines(results: Results, args: argparse.Namespace) -> list[str]:
    lines = []
    for kind in SERVICES:
        if kind in results.skipped:
            lines.append(f"- Target: `GetUser` on `{kind}`: not measured ({results.skipped[kind]})")
            continue
        shown, verdicts = [], []
        for n in args.concurrency:
            cell, bare = results.get.get((kind, n)), results.get.get((rpc.BARE, n))
            value = rpc.ratio(cell.rps, bare.rps) if cell and bare else None
            verdict = "—" if value is None else "met" if value >= GET_USER_TARGET else "NOT met"
            shown.append(f"x{n}: {rpc.fmt_ratio_precise(value)} {verdict}")
            verdicts.append(verdict)
        overall = (
            "not measured"
            if all(v == "—" for v in verdicts)
            else "met"
            if all(v == "met" for v in verdicts)
            else "NOT met"
        )
        lines.append(
            f"- Target: `GetUser` on `{kind}` (every interceptor on) RPS >= "
            f"{GET_USER_TARGET:.2f}x bare at every concurrency — {'; '.join(shown)} -> {overall}"
        )
    for n in args.create_concurrency:
        hashes = results.hashes[hash_threads(n)]
        shown = [
            f"`{kind}` {rpc.fmt_ratio_precise(rpc.ratio(cell.rps, hashes.rate))}"
            for kind in SERVICES
            if (cell := results.create.get((kind, n))) is not None and cell.rps
        ]
        if shown:
            lines.append(
                f"- Info: `CreateUser` x{n} calls/s / argon2 alone on {hashes.threads} "
                f"thread(s): {', '.join(shown)}"
            )
    return lines


def render_section(
    results: Results,
    command: str,
    args: argparse.Namespace,
    facts: Sequence[str],
    postgres_note: str,
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## UserService end to end (loopback)",
        "",
        f"Recorded {now} with `{command}`.",
        "",
        *(f"- {fact}" for fact in facts),
        f"- {postgres_note}",
        "",
        "Servers, each in its own process (client: this script, grpcio-tools stubs, the same "
        "code and metadata — a bearer token — for every server):",
        "",
        *(f"- `{kind}`: {title}" for kind, title in SERVER_TITLES.items()),
        "",
        *textwrap.wrap(
            f"Unary: closed loop, N tasks calling back-to-back; {args.warmup:g} s warm-up, "
            "then calls completing in a "
            f"{args.seconds:g} s window count. {args.rounds} round(s), servers rotated within "
            "each cell per round; tables show medians over rounds (p50, p99: nearest rank, "
            "per round). Server CPU: the service process's CPU time (all threads, from /proc) "
            "in the window / calls; db CPU: PostgreSQL's processes' likewise (SQLite runs "
            "inside the service process, so its cost is in server CPU). GetUser asks for ids "
            f"drawn at random (seed {SEED}) from the seeded users, the same sequence for every "
            "server; there is no cache without Redis, so each call reads the store.",
            width=88,
        ),
        "",
        *render_get(results, args),
        "",
        *textwrap.wrap(
            f"CreateUser: a new address per call, a {len(PASSWORD)}-character password, hashed "
            "with "
            "`passwords.OWASP_PARAMETERS` (argon2id, m=19,456 KiB, t=2, p=1) on the service's "
            f"{HASHER_THREADS} hasher threads (`PasswordHasher`'s default, os.cpu_count()). "
            "argon2 alone: `argon2.PasswordHasher.from_parameters(OWASP_PARAMETERS).hash` in a "
            "loop on as many threads as the calls in flight can keep busy (at most "
            f"{HASHER_THREADS}), in a process pinned like the servers, for the same window; "
            "x argon2 alone = CreateUser calls/s / hashes/s.",
            width=88,
        ),
        "",
        *render_create(results, args),
        "",
        *textwrap.wrap(
            f"Fan-out: N streams subscribed to every user ({STREAMS_PER_CHANNEL} on a "
            "connection; the server allows 100), read by this process; once each has seen a "
            f"barrier update, {FAN_OUT_WRITERS} UpdateUser calls in flight (first_name of a "
            f"random seeded user) for {args.warmup:g} s warm-up + {args.seconds:g} s, held "
            f"back while the slowest stream is {FAN_OUT_WINDOW} updates behind (the hub ends a "
            "stream 1,024 behind); after the window every update must have reached every "
            "stream. delivered msgs/s = messages received by all streams in the window / "
            "seconds (= UpdateUser/s x N when nothing lags). `bare`: the bare server "
            f"yields {args.bare_stream_messages:,} prebuilt messages split over N streams, "
            "timed from the first call to the last end: what delivering to N streams costs "
            "with nothing behind it.",
            width=88,
        ),
        "",
        *render_fan_out(results, args),
        "",
        "### Targets",
        "",
        *target_lines(results, args),
    ]
    for kind, failure in results.server_failures.items():
        lines.append(f"- FAILED: `{kind}`: {failure}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def database_facts(scratch: Path) -> str:
    mount = subprocess.run(
        ["df", "--output=fstype", str(scratch)], capture_output=True, text=True, check=False
    ).stdout.split()
    return (
        f"SQLite {sqlite3.sqlite_version}; the databases in a temporary directory on "
        f"{mount[-1] if mount else 'an unknown filesystem'}; argon2-cffi "
        f"{rpc.distribution_version('argon2-cffi')}, asyncpg {rpc.distribution_version('asyncpg')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    cpus = set(args.cpus) if args.cpus else None
    if args.serve:
        _, database_url = args.serve
        start = functools.partial(start_userservice, database_url, args.users)
        return rpc.serve_main(start, args.profile_out, cpus)
    if args.hash_rate:
        threads, seconds = args.hash_rate
        return hash_rate_main(int(threads), float(seconds), cpus)
    split = None if args.no_pin else rpc.cpu_split()
    server_cpus = split[1] if split else None
    facts = rpc.machine_facts(split)
    results = Results(
        get={(kind, n): rpc.UnaryCell(kind, n) for n in args.concurrency for kind in SERVERS},
        create={(k, n): rpc.UnaryCell(k, n) for n in args.create_concurrency for k in SERVICES},
        hashes={hash_threads(n): HashCell(hash_threads(n)) for n in args.create_concurrency},
        fan_out={(k, n): FanOutCell(k, n) for n in args.subscribers for k in FAN_OUT_SERVERS},
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-userservice-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        scratch = Path(tmp)
        facts.append(database_facts(scratch))
        stubs = scratch / "stubs"
        rpc.progress(f"[build] grpcio-tools stubs into {stubs}")
        rpc.compile_stubs(stubs)
        (pb2,) = rpc.import_from(stubs, "user.v1.user_pb2")
        postgres, postgres_note = start_postgres(stack, args, server_cpus)
        if postgres is None:
            results.skipped[POSTGRES] = postgres_note
        if split is not None:
            rpc.pin_threads(split[0])
        urls = {SQLITE: f"sqlite:///{scratch / 'users.db'}"}
        if postgres is not None:
            urls[POSTGRES] = postgres.url
        profile_dir = rpc.profile_directory(args, scratch)
        starts = {
            rpc.BARE: functools.partial(
                rpc.start_server, rpc.BARE, stubs, scratch, profile_dir, server_cpus
            ),
            **{
                kind: functools.partial(
                    start_service, kind, url, args.users, scratch, profile_dir, server_cpus
                )
                for kind, url in urls.items()
            },
        }
        servers: dict[str, rpc.ServerProcess] = {}
        try:
            results.server_failures.update(rpc.start_servers(starts, servers))
            asyncio.run(run_all(servers, pb2, postgres, args, results, server_cpus))
        finally:
            for server in servers.values():
                rpc.stop_server(server)
        for kind, failure in rpc.exit_failures(servers).items():
            results.server_failures.setdefault(kind, failure)
        profiles = [
            rpc.profile_report(server, PROFILE_FOCUS)
            for server in servers.values()
            if server.profile
        ]
    command = shlex.join(["python", "bench/bench_userservice.py", *arguments])
    section = render_section(results, command, args, facts, postgres_note)
    rpc.publish(section, profiles, MARKERS if args.write else None)
    failed = (
        results.server_failures
        or any(cell.failure for cell in (*results.get.values(), *results.create.values()))
        or any(cell.failure for cell in results.fan_out.values())
        or any(cell.failure for cell in results.hashes.values())
    )
    return 1 if failed else 0


def start_postgres(
    stack: contextlib.ExitStack, args: argparse.Namespace, cpus: set[int] | None
) -> tuple[Postgres | None, str]:
    """A server for the run, stopped with `stack`, or None; and a line saying which."""
    if args.no_postgres:
        return None, "PostgreSQL: left out (--no-postgres)"
    rpc.progress("[postgres] starting a server of our own")
    found = stack.enter_context(postgres_server())
    if isinstance(found, str):
        rpc.progress(f"[postgres] none: {found}")
        return None, f"no PostgreSQL server: {found}"
    pinned = ""
    if cpus:
        found.pin(cpus)
        pinned = f"; pinned to CPU {','.join(map(str, sorted(cpus)))} like the servers"
    rpc.progress(f"[postgres] {found.version} at {found.url}")
    return found, (
        f"{found.version}: default settings (fsync and synchronous_commit on) but for the "
        f"address, port and socket directory{pinned}"
    )


async def run_all(
    servers: dict[str, rpc.ServerProcess],
    pb2: Any,
    postgres: Postgres | None,
    args: argparse.Namespace,
    results: Results,
    server_cpus: set[int] | None,
) -> None:
    metadata = (("authorization", f"Bearer {rpc.bearer_token()}"),)
    ids = seed_ids(args.users)
    clients = {kind: Client(pb2, server.port, metadata, ids) for kind, server in servers.items()}
    try:
        await run_cells(servers, clients, postgres, args, results, server_cpus)
    finally:
        for client in clients.values():
            await client.close()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    defaults = {
        "seconds": DEFAULT_SECONDS,
        "warmup": DEFAULT_WARMUP,
        "rounds": DEFAULT_ROUNDS,
        "bare_stream_messages": DEFAULT_BARE_STREAM_MESSAGES,
    }
    rpc.add_shared_arguments(parser, defaults, QUICK, "userservice")
    rpc.add_counts_argument(
        parser, "--create-concurrency", DEFAULT_CREATE_CONCURRENCY, "CreateUser calls in flight"
    )
    rpc.add_counts_argument(
        parser, "--subscribers", DEFAULT_SUBSCRIBERS, "streams per fan-out cell"
    )
    parser.add_argument(
        "--bare-stream-messages",
        type=int,
        default=None,
        metavar="N",
        help="messages per bare fan-out cell, all streams together (default "
        f"{DEFAULT_BARE_STREAM_MESSAGES:,})",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=DEFAULT_USERS,
        help=f"users seeded into each store (default {DEFAULT_USERS:,})",
    )
    parser.add_argument(
        "--no-postgres",
        action="store_true",
        help="leave PostgreSQL out (no server is installed or started)",
    )
    parser.add_argument(
        "--serve", nargs=2, metavar=("KIND", "DATABASE_URL"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--hash-rate", nargs=2, metavar=("THREADS", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    rpc.settle_arguments(parser, args, defaults, QUICK)
    if args.serve and args.serve[0] not in SERVICES:
        parser.error(f"--serve: unknown server {args.serve[0]}")
    if args.bare_stream_messages < 1 or args.users < 1:
        parser.error("--bare-stream-messages and --users must be >= 1")
    return args


if __name__ == "__main__":
    sys.exit(main())
