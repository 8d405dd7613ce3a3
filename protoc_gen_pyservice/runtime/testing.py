"""What generated `x_testing.py` modules build on: an in-process server for one servicer with
its generated client, example values the generator could not derive, and invalid-request cases.

Importing this module (and so a generated testing module) needs neither pytest nor
pytest-asyncio: the functions that use them import them when called.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

import grpc.aio
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from protoc_gen_pyservice.runtime.client import ServiceClient
from protoc_gen_pyservice.runtime.errors import InvalidArgument, Unimplemented, from_rpc_error
from protoc_gen_pyservice.runtime.serve import ServerSettings, build_server
from protoc_gen_pyservice.runtime.validation import violation_reason

R = TypeVar("R", bound=Message)
C = TypeVar("C", bound=ServiceClient)
S = TypeVar("S")

# How long tasks the server started get to finish once it stopped, before they count as
# leaked: cancelled handlers need a few loop iterations to unwind.
LEAK_GRACE_SECONDS = 1.0


# Example values for fields whose rules the generator could not derive a value from.


class ExampleNeeded(LookupError):
    """A request builder needs a value for a field that only the user can provide."""

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(
            f"no example value for {field} could be derived from its rule {rule} ({detail}): "
            f"call protoc_gen_pyservice.runtime.testing.provide_example({field!r}, value) "
            "before building the request, with a value that satisfies every rule of the field "
            "(a list for a repeated field, a dict for a map)"
        )
        self.field = field
        self.rule = rule


_examples: dict[str, Any] = {}


def provide_example(field: str, value: Any) -> None:
    """Give generated builders the value of `field` (its full proto name, `pkg.Msg.field`)
    that they cannot derive themselves; it must satisfy every rule of the field."""
    _examples[field] = value


def example(field: str, rule: str, detail: str) -> Any:
    """The value provide_example() gave for `field`; ExampleNeeded until it was given."""
    try:
        return _examples[field]
    except KeyError:
        raise ExampleNeeded(field, rule, detail) from None


def timestamp_from_now(seconds: int) -> timestamp_pb2.Timestamp:
    """A Timestamp `seconds` from now, read when the request is built: rules such as
    lt_now, gt_now and within hold only against the clock at validation time."""
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    stamp.seconds += seconds
    return stamp


def enum_number(number: int) -> Any:
    """An enum number that names no value of its enum: stubs type enum fields by their values,
    so a number no value has can only be written untyped."""
    return number


def keyword_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` to unpack into a message's constructor: a field named like a keyword (`class`)
    can only be passed as `**{"class": ...}`, which stubs type only through `**kwargs`."""
    return fields


def with_fields(message: R, fields: dict[str, Any]) -> R:
    """`message` with `fields` set: fields its constructor cannot take even as `**fields`
    (protobuf's pure-Python constructor is `__init__(self, **kwargs)`, so not `self`).
    Values are as a constructor takes them: a list for a repeated field, a dict for a map."""
    for name, value in fields.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        current = getattr(message, name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            if entry.fields_by_name["value"].message_type is None:
                current.update(value)
            else:
                for key, item in value.items():
                    current[key].CopyFrom(item)
        elif field.is_repeated:
            current.extend(value)
        elif entry is not None:
            current.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


# Invalid-request cases.


@dataclasses.dataclass(frozen=True)
class InvalidCase(Generic[R]):
    """A request that breaks exactly one rule: the violation a validator reports for it is
    at `field_path` (`email`, `profile.name`, `tags[0]`, `labels["k"]`) with `rule_id`."""

    name: str  # a pytest id: "email-string.email"
    field_path: str
    rule_id: str
    build: Callable[[], R]


class SkippedCase(NamedTuple):
    """A rule no request can break on its own (or without an example only the user knows)."""

    message: str  # the request type's full proto name
    field_path: str
    rule_id: str
    reason: str


def cases(request_type: type[R], *found: InvalidCase[R]) -> tuple[InvalidCase[R], ...]:
    """The invalid cases of one request type, typed by it even when there are none."""
    del request_type  # only types the result
    return found


def assert_violation(error: BaseException, case: InvalidCase[Any]) -> None:
    """`error` is the InvalidArgument a server answers `case.build()` with: its
    google.rpc.BadRequest lists one field violation, at exactly `case.field_path`, for
    `case.rule_id` (carried in the violation's `reason`, in upper snake case)."""
    if isinstance(error, grpc.aio.AioRpcError):
        error = from_rpc_error(error)
    assert isinstance(error, InvalidArgument), (
        f"{case.name}: expected INVALID_ARGUMENT, got {type(error).__name__}: {error}"
    )
    bad_request = error.bad_request
    assert bad_request is not None, f"{case.name}: the INVALID_ARGUMENT carries no BadRequest"
    found = [(v.field, v.reason) for v in bad_request.field_violations]
    expected = (case.field_path, violation_reason(case.rule_id))
    assert found == [expected], f"{case.name}: expected only the violation {expected}, got {found}"


@contextlib.contextmanager
def skip_if_unimplemented(rpc: str) -> Iterator[None]:
    """Skip the test (pytest.skip) when the call inside answers UNIMPLEMENTED: its handler is
    still the generated stub."""
    try:
        yield
    except Unimplemented:
        import pytest

        pytest.skip(f"{rpc} is still a stub: it answers UNIMPLEMENTED")


# An in-process server.


class _TaskWatcher:
    """Remembers the tasks created in the context the server starts in (grpc creates every
    handler task from its serving task, so they inherit it), through the loop's task factory."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._marker: contextvars.ContextVar[_TaskWatcher | None] = contextvars.ContextVar(
            "protoc_gen_pyservice_testing_server", default=None
        )
        self.tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._previous = loop.get_task_factory()
        loop.set_task_factory(self._create)

    def _create(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Any,
        *,
        context: contextvars.Context | None = None,
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        ours = (context.get(self._marker) if context is not None else self._marker.get()) is self
        if context is not None:
            kwargs["context"] = context
        if self._previous is not None:
            task: asyncio.Task[Any] = self._previous(loop, coro, **kwargs)  # type: ignore[assignment]
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        if ours:
            self.tasks.add(task)
        return task

    async def run(self, coro: Any) -> None:
        """Await `coro` in the watched context."""
        watched = contextvars.copy_context()
        watched.run(self._marker.set, self)
        await self._loop.create_task(coro, context=watched)

    async def leftovers(self) -> list[asyncio.Task[Any]]:
        """The watched tasks still running after LEAK_GRACE_SECONDS at most."""
        pending = [task for task in self.tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=LEAK_GRACE_SECONDS)
        return [task for task in pending if not task.done()]

    def close(self) -> None:
        if self._loop.get_task_factory() == self._create:
            self._loop.set_task_factory(self._previous)


def _describe(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return f"{task.get_name()} ({getattr(coro, '__qualname__', coro)!r})"


@contextlib.asynccontextmanager
async def serve(
    register: Callable[..., None],
    servicer: S,
    client_type: type[C],
    settings: ServerSettings | None = None,
) -> AsyncIterator[C]:
    """Serve `servicer` (registered with `register`, a generated add_*_to_server) on
    127.0.0.1 at an ephemeral port through serve.build_server, so with the interceptors
    `settings` configures as in production, and yield a `client_type` connected to it.

    On exit the client closes and the server stops; then AssertionError names any task the
    server started that is still running, after cancelling it.
    """
    chosen = dataclasses.replace(settings or ServerSettings(), address="127.0.0.1:0")
    if chosen.tls is not None:
        raise ValueError("serve() runs the server in process without TLS: leave settings.tls unset")
    service = build_server([(register, servicer)], chosen)
    watcher = _TaskWatcher(asyncio.get_running_loop())
    leaked: list[asyncio.Task[Any]] = []
    try:
        await watcher.run(service.start())
        try:
            async with client_type.connect(f"127.0.0.1:{service.port}") as client:
                yield client
        finally:
            await service.stop()
            leaked = await watcher.leftovers()
            for task in leaked:
                task.cancel()
            if leaked:  # let them unwind, so that they do not outlive the test
                await asyncio.wait(leaked, timeout=LEAK_GRACE_SECONDS)
    finally:
        watcher.close()
    if leaked:
        names = ", ".join(_describe(task) for task in leaked)
        raise AssertionError(f"tasks the server started are still running: {names}")


def client_fixture(
    open_client: Callable[[Any, ServerSettings | None], contextlib.AbstractAsyncContextManager[C]],
    servicer: Callable[[], Any],
    settings: ServerSettings | None = None,
) -> Any:
    """A pytest-asyncio fixture (function scope, its own event loop per test, so it works
    in strict mode whatever the project's configuration) yielding `open_client(servicer(),
    settings)`'s client. Assign it to a module-level name; the name is the fixture's."""
    import pytest_asyncio

    async def fixture() -> AsyncIterator[C]:
        async with open_client(servicer(), settings) as client:
            yield client

    return pytest_asyncio.fixture(fixture, loop_scope="function")
