"""The negative tests `pyservice scaffold` writes for user.v1, run against the example server.

A project of its own (`pyservice init`, user.v1's protos, generate, scaffold) whose
implementation module is replaced by the example's in-memory UserService: every rule-breaking
case of every RPC must answer INVALID_ARGUMENT naming its field and rule, none skipped.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from user.v1 import user_testing

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def run(cwd: Path, *command: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        list(command),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_scaffolded_negative_tests_pass_against_the_example_server(tmp_path: Path) -> None:
    project = tmp_path / "users"
    project.mkdir()
    run(project, str(BIN / "pyservice"), "init")
    for proto in ("user/v1/user.proto", "common/v1/errors.proto"):
        (project / "proto" / proto).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "proto" / proto, project / "proto" / proto)
    run(project, str(BIN / "pyservice"), "generate")
    run(project, str(BIN / "pyservice"), "scaffold")
    (project / "services" / "user_service.py").write_text(
        '"""The example implementation standing in for the developer\'s."""\n\n'
        "from tests.behaviour.in_memory_users import InMemoryUsers as UserService\n\n"
        '__all__ = ["UserService"]\n'
    )
    output = run(
        project,
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-k",
        "rejects_invalid_requests",
        "tests",
        env={"PYTHONPATH": str(ROOT)},  # for `examples`; gen/ and . come from pyproject
    )
    expected = sum(
        len(cases) for name, cases in vars(user_testing).items() if name.startswith("INVALID_")
    )
    assert re.search(rf"\b{expected} passed", output), (expected, output)
    assert "skipped" not in output and "failed" not in output, output
