"""A throwaway PostgreSQL server for the store tests, started once per session.

`postgres_url` installs Debian's server package when it is missing (tests/debian.py), runs
`initdb` and `pg_ctl` in a fresh directory as the `postgres` OS user when the tests run as root
(the server refuses root), listens on 127.0.0.1 on a free port with its socket in that
directory, and removes it all afterwards, whatever the tests did. Where no server can be had,
the tests that ask for one skip with the reason. `postgres_database_url` gives each test an
empty database of its own.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.debian import ensure_installed
from tests.userservice.harness import free_port

_INSTALL_ROOT = Path("/usr/lib/postgresql")
_OS_USER = "postgres"
_database_numbers = itertools.count(1)


@dataclass(frozen=True)
class ThrowawayServer:
    """A running server: `url` reaches its `postgres` database as the `postgres` user."""

    url: str
    data: Path
    binaries: Path


@contextlib.contextmanager
def throwaway_server(*, durable: bool = False) -> Iterator[ThrowawayServer | str]:
    """A PostgreSQL server of our own on 127.0.0.1, or one line saying why there is none;
    stopped and removed afterwards, whatever happened. `durable=False` turns off fsync and
    synchronous commits, which buy a test nothing; benchmarks keep the defaults."""
    problem = ensure_installed(["postgresql"], _INSTALL_ROOT)
    if problem:
        yield problem
        return
    binaries = _binaries()
    if binaries is None:
        yield f"no */bin/postgres under {_INSTALL_ROOT}"
        return
    directory = Path(tempfile.mkdtemp(prefix="pyservice-postgres-"))
    data, log = directory / "data", directory / "server.log"
    try:
        if os.geteuid() == 0:
            shutil.chown(directory, _OS_USER, _OS_USER)
        sync = () if durable else ("--no-sync",)
        failure = _run(binaries / "initdb", "-D", data, "-U", "postgres", "-A", "trust", *sync)
        if failure:
            yield f"initdb failed: {failure}"
            return
        port = free_port()
        settings = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory}"
        if not durable:
            settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        try:
            failure = _run(
                binaries / "pg_ctl", "start", "-D", data, "-l", log, "-w", "-o", settings
            )
            if failure:
                yield f"PostgreSQL did not start: {_last_line(log) or failure}"
                return
            yield ThrowawayServer(
                f"postgresql://postgres@127.0.0.1:{port}/postgres", data, binaries
            )
        finally:
            _stop(binaries, data)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """postgresql://postgres@127.0.0.1:<port>/pyservice, a database on a server of our own."""
    with throwaway_server() as server:
        if isinstance(server, str):
            pytest.skip(f"no PostgreSQL server: {server}")
        base = server.url.rsplit("/", 1)[0]
        failure = _run(
            server.binaries / "psql", "-d", server.url, "-c", "CREATE DATABASE pyservice"
        )
        if failure:
            pytest.skip(f"PostgreSQL did not create a database: {failure}")
        yield f"{base}/pyservice"


@pytest.fixture
async def postgres_database_url(postgres_url: str) -> AsyncIterator[str]:
    """A new, empty database on the session's server, dropped after the test."""
    name = f"test_{next(_database_numbers)}"
    admin = await asyncpg.connect(postgres_url)
    try:
        # An ICU locale whose order is not code point order: the store must not depend on it.
        await admin.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        )
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


def _stop(binaries: Path, data: Path) -> None:
    """Stop the server before its data directory goes: fast, else immediate, else SIGKILL to
    the postmaster (its pid is the first line of postmaster.pid); nothing when none runs."""
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return
    for mode in ("fast", "immediate"):
        with contextlib.suppress(subprocess.TimeoutExpired):
            if _run(binaries / "pg_ctl", "stop", "-D", data, "-m", mode, "-w", "-t", "30") is None:
                return
    try:
        pid = int(pid_file.read_text().split()[0])
        # A stale file's pid may belong to another process by now: kill only a postgres.
        if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        return  # no pid file (it stopped after all) or no such process
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _binaries() -> Path | None:
    """The bin directory of the newest installed server major version."""
    found = sorted(_INSTALL_ROOT.glob("*/bin/postgres"), key=lambda path: int(path.parts[-3]))
    return found[-1].parent if found else None


def _run(program: Path, *arguments: str | Path) -> str | None:
    """Run as the postgres OS user when we are root; None on success, else one line why not."""
    command = [str(program), *map(str, arguments)]
    if os.geteuid() == 0:
        command = ["runuser", "-u", _OS_USER, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"{program.name} exited with status {result.returncode}"


def _last_line(path: Path) -> str | None:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1] if lines else None
