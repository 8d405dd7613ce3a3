"""`make serve`'s example server as a user meets it: a process configured from PYSERVICE_*
variables, called with `buf curl` through reflection, scraped for metrics, stopped by SIGTERM."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from tests.conftest import ROOT

BUF = Path(sys.executable).parent / "buf"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def example_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[int, int, subprocess.Popen[str]]]:
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYSERVICE_DATABASE_URL": f"sqlite:///{tmp_path}/users.db",
        "PYSERVICE_PORT": str(port),
        "PYSERVICE_REFLECTION": "1",
        "PYSERVICE_METRICS_PORT": str(metrics_port),
        **getattr(request, "param", {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.userservice"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "serving user.v1.UserService" in line:
                break
        else:
            pytest.fail("the example server did not start")
        # Keep reading its log: a full pipe would block the server at its next log line.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield port, metrics_port, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def buf_curl(port: int, method: str, body: dict[str, object], *headers: str) -> dict[str, object]:
    command = [
        str(BUF),
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "--data",
        json.dumps(body),
        *(part for header in headers for part in ("-H", header)),
        f"http://127.0.0.1:{port}/user.v1.UserService/{method}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout or result.stderr
    parsed: dict[str, object] = json.loads(output)
    return parsed


def test_buf_curl_calls_through_reflection_and_metrics_count_it(
    example_server: tuple[int, int, subprocess.Popen[str]],
) -> None:
    port, metrics_port, process = example_server
    created = buf_curl(
        port,
        "CreateUser",
        {"email": "ada@example.com", "firstName": "Ada", "lastName": "L", "password": "12345678"},
    )
    user = created["user"]
    assert isinstance(user, dict)
    fetched = buf_curl(port, "GetUser", {"id": user["id"]})
    assert fetched["user"] == user
    missing = buf_curl(port, "GetUser", {"id": "nobody"})
    assert missing["code"] == "not_found"
    invalid = buf_curl(port, "CreateUser", {"email": "nope"})
    assert invalid["code"] == "invalid_argument"
    details = invalid["details"]
    assert isinstance(details, list)
    assert {d["type"] for d in details} == {"google.rpc.BadRequest", "common.v1.ValidationError"}
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
        metrics = reply.read().decode()
    assert 'grpc_method="GetUser"' in metrics and 'grpc_code="NOT_FOUND"' in metrics
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


@pytest.mark.parametrize(
    "example_server",
    [{"PYSERVICE_JWT_SECRET": "example-secret-0123456789-abcdefgh"}],
    indirect=True,
)
def test_jwt_secret_requires_bearer_tokens(
    example_server: tuple[int, int, subprocess.Popen[str]],
) -> None:
    port, _, _ = example_server
    refused = buf_curl(port, "GetUser", {"id": "x"})
    assert refused["code"] == "unauthenticated"
    token = jwt.encode(
        {"sub": "ada", "exp": int(time.time()) + 60}, "example-secret-0123456789-abcdefgh", "HS256"
    )
    answered = buf_curl(port, "GetUser", {"id": "x"}, f"Authorization: Bearer {token}")
    assert answered["code"] == "not_found"
