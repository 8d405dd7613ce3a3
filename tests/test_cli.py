"""The `pyservice` CLI: drift detection on a copy of this project, and the packaged templates."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from protoc_gen_pyservice.cli import drift

from tests.conftest import ROOT

BIN = Path(sys.executable).parent
TEMPLATES = sorted(
    path.relative_to(ROOT / "templates").as_posix() for path in (ROOT / "templates").rglob("*.j2")
)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    for name in ("buf.yaml", "buf.gen.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("proto", "generated", "protoc_gen_pyservice/proto"):
        shutil.copytree(
            ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


def pyservice(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "pyservice", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_check_passes_on_an_up_to_date_tree(project_copy: Path) -> None:
    result = pyservice(project_copy, "check")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_check_reports_drift_with_a_diff(project_copy: Path) -> None:
    proto = project_copy / "proto" / "user" / "v1" / "user.proto"
    proto.write_text(proto.read_text().replace("// Get a user by ID", "// Fetch one user"))
    (project_copy / "generated" / "stale.py").write_text("")
    (project_copy / "generated" / "common" / "v1" / "errors_pb2.py").unlink()
    result = pyservice(project_copy, "check")
    assert result.returncode == 1
    assert "changed:   generated/user/v1/user_service.py" in result.stderr
    assert "stale:     generated/stale.py" in result.stderr
    assert "missing:   generated/common/v1/errors_pb2.py" in result.stderr
    assert '+        """Fetch one user"""' in result.stderr


def test_compare_ignores_bytecode_caches(tmp_path: Path) -> None:
    (tmp_path / "a" / "__pycache__").mkdir(parents=True)
    (tmp_path / "a" / "__pycache__" / "x.pyc").write_bytes(b"")
    (tmp_path / "b").mkdir()
    assert not drift.compare(tmp_path / "b", tmp_path / "a")


def test_wheel_ships_every_template_and_the_options_proto(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in TEMPLATES:
        assert f"protoc_gen_pyservice/templates/{template}" in names
    assert "protoc_gen_pyservice/proto/pyservice/options.proto" in names
    assert "protoc_gen_pyservice/py.typed" in names
    assert "validate/validate_pb2.py" in names  # for generated code importing validate_pb2
    # Installed from the wheel, the plugin finds its templates inside the package.
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    script = (
        "from protoc_gen_pyservice.render.environment import environment, templates_dir;"
        "import sys; env = environment();"
        "[env.get_template(name) for name in sys.argv[1:]];"
        "print(templates_dir())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *TEMPLATES],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(target / "protoc_gen_pyservice" / "templates")


def test_include_path_is_enough_to_compile_annotated_protos(tmp_path: Path) -> None:
    result = subprocess.run(
        [BIN / "pyservice", "include-path"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    folders = result.stdout.split()
    assert (Path(folders[0]) / "pyservice" / "options.proto").is_file()
    assert (Path(folders[1]) / "validate" / "validate.proto").is_file()
    (tmp_path / "a.proto").write_text(
        'syntax = "proto3";\nimport "validate/validate.proto";\nimport "pyservice/options.proto";\n'
        "message A { string b = 1 [(validate.rules).string.min_len = 1]; }\n"
    )
    protoc = [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}"]
    compiled = subprocess.run(
        [*protoc, *(f"-I{folder}" for folder in folders), f"--python_out={tmp_path}", "a.proto"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr
