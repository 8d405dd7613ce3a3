"""The UserService as `make serve` runs it: `python -m examples.userservice` in a subprocess,
for tests that call it with clients of other languages or tools.

    with running_service(tmp_path, {"PYSERVICE_REFLECTION": "1"}) as service:
        buf_curl(f"http://127.0.0.1:{service.port}", ...)

The process gets a SQLite database in the given folder and port 0, so parallel runs never
collide on a port; the port is read from the server's own "serving ... on port N" line. Its
output (stdout and stderr, one stream) is read all the time, so a full pipe never blocks the
server, and kept for the failure message. On leaving the block the process gets SIGTERM and,
if it has not ended within `stop_seconds`, SIGKILL: it never outlives the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT

SERVING = re.compile(r"serving user\.v1\.UserService on port (\d+)")


class ServiceDidNotStart(RuntimeError):
    """The process ended, or did not say it was serving in time; the message holds its log."""


@dataclass
class ServiceProcess:
    """A running `python -m examples.userservice`."""

    process: subprocess.Popen[str]
    database: Path
    port: int = 0
    _lines: list[str] = field(default_factory=list)
    _serving: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the process has printed so far."""
        return "".join(self._lines)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)
            found = SERVING.search(line)
            if found and not self._serving.is_set():
                self.port = int(found.group(1))
                self._serving.set()
        self._serving.set()  # the process ended: stop waiting for it


@contextlib.contextmanager
def running_service(
    folder: Path,
    environment: Mapping[str, str] | None = None,
    *,
    start_seconds: float = 30.0,
    stop_seconds: float = 15.0,
) -> Iterator[ServiceProcess]:
    """The UserService serving in a subprocess with a SQLite database in `folder`, configured
    by `environment` (PYSERVICE_* variables, added to this process's own); stopped on exit.
    Raises ServiceDidNotStart when it ends or stays silent for `start_seconds`."""
    database = folder / "users.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.userservice"],
        cwd=ROOT,
        env={
            **os.environ,
            "PYSERVICE_DATABASE_URL": f"sqlite:///{database}",
            "PYSERVICE_PORT": "0",
            **(environment or {}),
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    service = ServiceProcess(process, database)
    reader = threading.Thread(target=service._read, name="userservice-log", daemon=True)
    reader.start()
    try:
        if not service._serving.wait(start_seconds) or not service.port:
            raise ServiceDidNotStart(
                f"the UserService did not start (exit code {process.poll()}):\n{service.log()}"
            )
        yield service
    finally:
        _stop(process, stop_seconds)
        reader.join(5)


def _stop(process: subprocess.Popen[str], stop_seconds: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(stop_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
