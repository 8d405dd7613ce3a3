"""The example server against a peer nobody here wrote: grpc-js (Node), installed from the npm
registry into .venv on first use. Skipped, saying why, where Node or the registry is missing."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.behaviour.test_example_server import example_server
from tests.conftest import ROOT

__all__ = ["example_server"]  # the fixture, shared with the other process-level tests

PEER = Path(__file__).parent / "peers" / "node_peer.js"
NODE_MODULES = ROOT / ".venv" / "node-peer"
PACKAGES = ("@grpc/grpc-js@1.14.7", "@grpc/proto-loader@0.8.1")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the grpc-js peer")
    marker = NODE_MODULES / ".installed"
    if not marker.exists() or marker.read_text() != " ".join(PACKAGES):
        installed = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NODE_MODULES), *PACKAGES],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if installed.returncode != 0:
            pytest.skip(f"npm could not install grpc-js: {installed.stderr.strip()[-300:]}")
        marker.write_text(" ".join(PACKAGES))
    return NODE_MODULES / "node_modules"


def test_grpc_js_sees_the_right_status_for_everything_it_sends(
    node_modules: Path, example_server: tuple[int, int, subprocess.Popen[str]]
) -> None:
    port, _, process = example_server
    result = subprocess.run(
        ["node", str(PEER), str(port), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"NODE_PATH": str(node_modules), "PATH": os.environ["PATH"]},
        check=True,
    )
    seen = json.loads(result.stdout)
    assert seen["missing"]["code"] == "NOT_FOUND"
    assert {"grpc-status-details-bin", "x-request-id"} <= set(seen["missing"]["trailers"])
    assert seen["created"]["code"] == "OK"
    assert seen["created"]["response"]["user"]["email"] == "ada@example.com"
    assert seen["invalid"]["code"] == "INVALID_ARGUMENT"
    assert "email" in seen["invalid"]["details"]
    for undecodable in ("garbage", "bad_utf8"):
        assert seen[undecodable] == {
            "code": "INVALID_ARGUMENT",
            "details": "request is not a valid user.v1.GetUserRequest",
            "trailers": seen[undecodable]["trailers"],
        }
    assert seen["burst"] == {"NOT_FOUND": 90}
    assert seen["stream"] == {"email": "grace@example.com", "code": "CANCELLED"}
    assert seen["after"]["code"] == "NOT_FOUND"
    assert process.poll() is None
