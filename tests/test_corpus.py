"""Generate code for every awkward proto in tests/corpus/protos; import, lint and type-check it."""

import ast
import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_INCLUDES, ROOT, WKT_INCLUDE

CORPUS = ROOT / "tests" / "corpus" / "protos"
PROTOS = sorted(path.relative_to(CORPUS).as_posix() for path in CORPUS.rglob("*.proto"))
BIN = Path(sys.executable).parent
BUILTIN_NAMES = frozenset(dir(builtins))


@pytest.fixture(scope="module")
def corpus_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    includes = [f"-I{CORPUS}", *(f"-I{path}" for path in PROJECT_INCLUDES[1:]), f"-I{WKT_INCLUDE}"]
    protoc = [sys.executable, "-m", "grpc_tools.protoc", *includes]
    generate = [
        *protoc,
        f"--plugin=protoc-gen-pyservice={BIN / 'protoc-gen-pyservice'}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--pyservice_out={out}",
        *PROTOS,
    ]
    result = subprocess.run(generate, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    dependencies = [*protoc, f"--python_out={out}", f"--pyi_out={out}"]
    dependencies += ["validate/validate.proto", "pyservice/options.proto"]
    subprocess.run(dependencies, check=True)
    return out


def ours(out: Path) -> list[Path]:
    return sorted(
        path
        for suffix in ("service", "client", "validate", "testing")
        for path in out.rglob(f"*_{suffix}.py")
    )


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, `from a import b` counted as `a.b`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_corpus_is_large_enough() -> None:
    assert len(PROTOS) >= 30


def test_every_file_with_services_gets_a_service_client_and_testing_module(
    corpus_out: Path,
) -> None:
    generated = {path.relative_to(corpus_out).as_posix() for path in ours(corpus_out)}
    assert len(generated) >= 90
    assert "layout/my_service_service.py" in generated  # dashes become underscores
    assert "no_package_client.py" in generated
    services = {
        name.removesuffix("_service.py") for name in generated if name.endswith("_service.py")
    }
    testing = {
        name.removesuffix("_testing.py") for name in generated if name.endswith("_testing.py")
    }
    assert services == testing


def test_every_generated_module_imports(corpus_out: Path) -> None:
    modules = [
        path.relative_to(corpus_out).with_suffix("").as_posix().replace("/", ".")
        for path in ours(corpus_out)
    ]
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run(
        [sys.executable, "-c", script, *modules],
        cwd=corpus_out,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(corpus_out), "PATH": ""},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_generated_code_passes_ruff(corpus_out: Path) -> None:
    files = [str(path) for path in ours(corpus_out)]
    config = f"--config={ROOT / 'pyproject.toml'}"
    check = subprocess.run([BIN / "ruff", "check", config, *files], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [BIN / "ruff", "format", "--check", "--diff", config, *files],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_generated_code_passes_ruff_defaults(corpus_out: Path) -> None:
    """A project that never configured ruff: its default rules and line length (88), run
    from a folder above the output as from a project's root."""
    files = [str(path.relative_to(corpus_out.parent)) for path in ours(corpus_out)]
    check = subprocess.run(
        [BIN / "ruff", "check", "--isolated", *files],
        cwd=corpus_out.parent,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout


def test_generated_code_passes_mypy_strict(corpus_out: Path) -> None:
    # protoc's own .pyi output is invalid Python for keyword-named messages, and mistyped
    # for messages named like builtins (`message str` shadows `str` in the whole stub); leave
    # those files (and our modules that import them) to the import test.
    broken_stubs = set()
    for stub in corpus_out.rglob("*_pb2.pyi"):
        try:
            tree = ast.parse(stub.read_text())
        except SyntaxError:
            tree = None
        classes = (
            {node.name for node in tree.body if isinstance(node, ast.ClassDef)} if tree else set()
        )
        if tree is None or classes & BUILTIN_NAMES:
            broken_stubs.add(stub.relative_to(corpus_out).with_suffix("").as_posix())
            stub.unlink()
    broken_modules = {stub.replace("/", ".") for stub in broken_stubs}
    checked = [
        str(path) for path in ours(corpus_out) if not imported_modules(path) & broken_modules
    ]
    assert len(checked) >= 50
    config = corpus_out / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\nexplicit_package_bases = True\nfollow_imports = silent\n"
        f"follow_imports_for_stubs = True\nmypy_path = {corpus_out}:{ROOT}\n"
        "[mypy-google.rpc.*]\nignore_missing_imports = True\n"
    )
    result = subprocess.run(
        [BIN / "mypy", f"--config-file={config}", *checked],
        cwd=corpus_out,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:]


def test_testing_modules_hold_their_examples(corpus_out: Path) -> None:
    """Every valid request passes its validators and every invalid case breaks exactly its
    rule, in a process of their own (the corpus's modules would clash with the project's)."""
    modules = [
        path.relative_to(corpus_out).with_suffix("").as_posix().replace("/", ".")
        for path in corpus_out.rglob("*_testing.py")
    ]
    assert len(modules) >= 30
    result = subprocess.run(
        [sys.executable, "-m", "tests.examples_check", *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{corpus_out}{os.pathsep}{ROOT}", "PATH": ""},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
