"""The `pyservice` CLI: drift detection on a copy of this project and on a project set up by
`pyservice init`, the packaged templates, and protoc's include path."""

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
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
    assert "run `pyservice generate`" in result.stderr
    assert "  edited:  generated/user/v1/user_service.py" in result.stderr
    assert "  stale:   generated/stale.py" in result.stderr
    assert "  missing: generated/common/v1/errors_pb2.py" in result.stderr
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
    # For generated code importing them; projects never generate their own.
    for package in ("validate/validate_pb2", "pyservice/options_pb2"):
        assert {f"{package}.py", f"{package}.pyi"} <= names
    assert {"validate/py.typed", "pyservice/py.typed"} <= names
    assert not any(name.endswith("_validate.py") for name in names)
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
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        [BIN / "pyservice", "include-path"],
        capture_output=True,
        text=True,
        check=True,
        env={
            **{k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"},
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
        },
    )
    arguments = result.stdout.split()
    assert (Path(arguments[0]) / "pyservice" / "options.proto").is_file()
    mapping = next(a for a in arguments if a.startswith("validate/validate.proto="))
    assert ".." not in mapping
    # The one file it may write: buf/validate/validate.proto printed into the user cache.
    written = sorted(
        path.relative_to(home).as_posix() for path in home.rglob("*") if path.is_file()
    )
    assert written == [
        f".cache/pyservice/protovalidate-{metadata.version('protovalidate')}"
        "/buf/validate/validate.proto"
    ], written
    assert f"buf/validate/validate.proto={home / written[0]}" in arguments
    (tmp_path / "a.proto").write_text(
        'syntax = "proto3";\nimport "validate/validate.proto";\nimport "pyservice/options.proto";\n'
        "message A { string b = 1 [(validate.rules).string.min_len = 1]; }\n"
    )
    protoc = [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}"]
    compiled = subprocess.run(
        [*protoc, *(f"-I{a}" for a in arguments), f"--python_out={tmp_path}", "a.proto"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.proto", "a_pb2.py", "home"]


LIBRARY_PROTO = """syntax = "proto3";
package library.v1;
import "validate/validate.proto";
import "pyservice/options.proto";
// A book on a shelf.
message Book { string title = 1 [(validate.rules).string.min_len = 1]; }
message GetBookRequest { string id = 1 [(validate.rules).string.min_len = 1]; }
message GetBookResponse { Book book = 1; }
service LibraryService {
  // Fetch one book.
  rpc GetBook(GetBookRequest) returns (GetBookResponse) {
    option (pyservice.method).timeout = {seconds: 5};
  }
}
"""


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A project of a user's own, set up by `pyservice init --out gen`, generated once."""
    project = tmp_path / "project"
    project.mkdir()
    init = pyservice(project, "init")
    assert init.returncode == 0, init.stderr
    proto = project / "proto" / "library" / "v1" / "library.proto"
    proto.parent.mkdir(parents=True)
    proto.write_text(LIBRARY_PROTO)
    generate = pyservice(project, "generate")
    assert generate.returncode == 0, generate.stderr
    assert generate.stdout.strip() == "generated gen/ from buf.gen.yaml"
    return project


def test_init_writes_a_project_buf_generate_works_in(user_project: Path) -> None:
    written = sorted(
        p.relative_to(user_project).as_posix()
        for p in user_project.rglob("*")
        if p.is_file() and ".pyservice" not in p.parts
    )
    assert written == [
        ".gitignore",
        "buf.gen.yaml",
        "buf.yaml",
        "gen/library/v1/library_client.py",
        "gen/library/v1/library_pb2.py",
        "gen/library/v1/library_pb2.pyi",
        "gen/library/v1/library_service.py",
        "gen/library/v1/library_testing.py",
        "gen/library/v1/library_validate.py",
        "proto/library/v1/library.proto",
        "pyproject.toml",
    ]
    included = user_project / ".pyservice" / "include"
    assert (included / "validate" / "validate.proto").is_file()
    assert (included / "pyservice" / "options.proto").is_file()
    assert "/.pyservice/" in (user_project / ".gitignore").read_text().splitlines()
    plain_buf = subprocess.run(
        [BIN / "buf", "generate"],
        cwd=user_project,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain_buf.returncode == 0, plain_buf.stderr
    assert pyservice(user_project, "check").returncode == 0


def test_init_never_overwrites_and_extends_pyproject(tmp_path: Path) -> None:
    (tmp_path / "buf.yaml").write_text("version: v2\n# mine\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "shop"\n\n[tool.mypy]\nstrict = false  # on purpose\n'
    )
    result = pyservice(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "buf.yaml").read_text() == "version: v2\n# mine\n"
    assert "kept buf.yaml (exists; --force overwrites it)" in result.stdout
    pyproject = (tmp_path / "pyproject.toml").read_text()
    assert pyproject.startswith(
        '[project]\nname = "shop"\n\n[tool.mypy]\nstrict = false  # on purpose\n'
    )
    assert 'mypy_path = "gen"' in pyproject
    assert 'pythonpath = ["gen", "."]' in pyproject
    assert "kept your tool.mypy.strict: --force replaces them" in result.stdout
    again = pyservice(tmp_path, "init")
    assert again.returncode == 0
    assert (tmp_path / "pyproject.toml").read_text() == pyproject
    assert (tmp_path / ".gitignore").read_text().count("/.pyservice/") == 1


def test_init_force_moves_every_setting_to_the_new_output_folder(tmp_path: Path) -> None:
    assert pyservice(tmp_path, "init").returncode == 0
    moved = pyservice(tmp_path, "init", "--out", "generated", "--force")
    assert moved.returncode == 0, moved.stderr
    assert "kept your" not in moved.stdout
    pyproject = (tmp_path / "pyproject.toml").read_text()
    assert "gen/" not in pyproject.replace("generated/", "")
    assert 'mypy_path = "generated"' in pyproject
    assert 'exclude = ["generated/**"]' in pyproject  # [tool.ruff.format]
    assert "out: generated" in (tmp_path / "buf.gen.yaml").read_text()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--out", "."], "give a folder inside the project"),
        (["--out", "../elsewhere"], "give a folder inside the project"),
        (["--out", "src"], "holds only generated code"),
        (["--out", "proto/gen"], "overlap"),
    ],
)
def test_init_refuses_output_folders_clean_would_wipe(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = pyservice(tmp_path, "init", *arguments)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "buf.gen.yaml").exists()


def test_init_refuses_an_output_folder_holding_hand_written_code(tmp_path: Path) -> None:
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "app.py").write_text("print('mine')\n")
    result = pyservice(tmp_path, "init")
    assert result.returncode == 1
    assert "gen/ holds files no code generator wrote (gen/app.py)" in result.stderr
    assert pyservice(tmp_path, "init", "--out", "generated").returncode == 0


def test_check_names_each_kind_of_drift_in_a_user_project(user_project: Path) -> None:
    out = user_project / "gen" / "library" / "v1"
    with (out / "library_service.py").open("a") as file:
        file.write("# an edit\n")
    (out / "library_client.py").unlink()
    (out / "old_pb2.py").write_text("# left by a renamed proto\n")
    result = pyservice(user_project, "check")
    assert result.returncode == 1, result.stdout
    assert "  edited:  gen/library/v1/library_service.py" in result.stderr
    assert "  missing: gen/library/v1/library_client.py" in result.stderr
    assert "  stale:   gen/library/v1/old_pb2.py" in result.stderr
    assert "-# an edit" in result.stderr
    assert "+++ gen/library/v1/library_service.py (generated now)" in result.stderr
    assert "make generate" not in result.stderr


def test_check_fails_on_a_proto_change_not_regenerated(user_project: Path) -> None:
    proto = user_project / "proto" / "library" / "v1" / "library.proto"
    proto.write_text(proto.read_text().replace("// Fetch one book.", "// Fetch a book."))
    result = pyservice(user_project, "check")
    assert result.returncode == 1
    assert "  edited:  gen/library/v1/library_service.py" in result.stderr


def test_check_and_generate_follow_a_template_given_by_path(user_project: Path) -> None:
    template = user_project / "ci" / "buf.gen.yaml"
    template.parent.mkdir()
    template.write_text(
        (user_project / "buf.gen.yaml").read_text().replace("out: gen", "out: gen2")
    )
    assert pyservice(user_project, "generate", "--template", "ci/buf.gen.yaml").returncode == 0
    assert (user_project / "gen2" / "library" / "v1" / "library_service.py").is_file()
    result = pyservice(user_project, "check", "--template", "ci/buf.gen.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gen2/ is up to date"


def test_check_refuses_when_there_is_nothing_to_compare(tmp_path: Path) -> None:
    assert pyservice(tmp_path, "init").returncode == 0
    # Only our plugin, and a proto with nothing it generates for: buf succeeds, writing nothing.
    (tmp_path / "buf.gen.yaml").write_text(
        "version: v2\ninputs:\n  - directory: proto\n"
        "plugins:\n  - local: protoc-gen-pyservice\n    out: gen\n"
    )
    (tmp_path / "proto" / "colors.proto").write_text(
        'syntax = "proto3";\npackage colors;\nenum Color { COLOR_UNSPECIFIED = 0; }\n'
    )
    result = pyservice(tmp_path, "check")
    assert result.returncode == 1
    assert "nothing to compare" in result.stderr


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no buf.gen.yaml here or in any parent folder"),
        ({"buf.gen.yaml": "version: v2\nplugins: [\n"}, "cannot be read as YAML"),
        ({"buf.gen.yaml": "version: v2\n"}, "no plugins"),
        ({"buf.gen.yaml": "version: v2\nplugins:\n  - local: x\n"}, "has no `out` folder"),
        (
            {"buf.gen.yaml": "version: v2\nplugins:\n  - local: x\n    out: gen\n"},
            "no buf.yaml",
        ),
    ],
)
def test_commands_refuse_a_broken_project_in_one_line(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for command in ("check", "generate"):
        result = pyservice(tmp_path, command)
        assert result.returncode == 1
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_init_refuses_a_broken_pyproject_before_writing_anything(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nname = 1\n")
    result = pyservice(tmp_path, "init")
    assert result.returncode == 1
    assert "pyproject.toml: not valid TOML, left as it is" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


def test_init_force_switching_to_mypy_protobuf_drops_the_protoc_stub_settings(
    tmp_path: Path,
) -> None:
    assert pyservice(tmp_path, "init").returncode == 0
    assert "follow_imports" in (tmp_path / "pyproject.toml").read_text()
    switched = pyservice(tmp_path, "init", "--stubs", "mypy-protobuf", "--force")
    assert switched.returncode == 0, switched.stderr
    mypy = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy == {"strict": True, "mypy_path": "gen", "explicit_package_bases": True}
