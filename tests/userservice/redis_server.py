"""Real redis-server processes for tests: one shared by the session, or a private one a test
may stop, freeze and start again. Import the fixtures into a test module to use them.

A machine without redis-server gets it from Debian on first use (tests/debian.py); when that or
the start fails, the tests that need Redis skip with the reason.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.debian import ensure_installed
from tests.userservice.harness import free_port

START_TIMEOUT_SECONDS = 10.0


class RedisServer:
    """A redis-server on 127.0.0.1 without persistence, keeping its port across restarts so
    clients can reconnect to the same URL."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._log = directory / "redis.log"
        self._port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}/0"

    def start(self) -> None:
        """Start and wait until it answers PING; RuntimeError saying why when it does not."""
        command = [
            "redis-server",
            "--port", str(self._port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self._directory),
        ]  # fmt: skip
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        client = redis.Redis(port=self._port, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not _answers(client):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start: {self._last_log_line()}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Terminate it (kill when it does not exit within seconds); nothing when stopped."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a frozen server cannot handle SIGTERM
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def kill(self) -> None:
        """End it at once, as a crash would: clients see their connections drop."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def freeze(self) -> None:
        """Stop it answering while its connections stay open, like a hung or cut-off peer."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def _last_log_line(self) -> str:
        lines = self._log.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _started(directory: Path) -> RedisServer:
    """A running server, or the test skips with the one-line reason there is none."""
    missing = ensure_installed(["redis-server"], "redis-server")
    if missing:
        pytest.skip(missing)
    server = RedisServer(directory)
    try:
        server.start()
    except (OSError, RuntimeError) as error:
        pytest.skip(str(error))
    return server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a redis-server shared by the whole session."""
    server = _started(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def empty_redis_url(redis_url: str) -> str:
    """The shared server's URL, emptied (FLUSHALL) for this test."""
    with redis.Redis.from_url(redis_url) as client:
        client.flushall()
    return redis_url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, running; the test may kill, freeze or restart it."""
    server = _started(tmp_path)
    try:
        yield server
    finally:
        server.stop()
