"""Compile tests/validation/protos with protoc, protoc's Python plugins and protoc-gen-pyservice,
once per session, and the helpers the rule-by-rule tests share.

Generated modules are imported lazily (through `load`), after `validation_out` put the output
directory at the front of sys.path.
"""

import importlib
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc_tools
import pytest

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE / "protos"
ROOT = HERE.parent.parent
THIRD_PARTY = ROOT / ".pyservice" / "include"
WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
PLUGIN = Path(sys.executable).parent / "protoc-gen-pyservice"

Pair = tuple[str, str, bool]


def proto_files() -> list[str]:
    """Every test proto, relative to PROTO_ROOT, e.g. "vt/strings.proto"."""
    return sorted(path.relative_to(PROTO_ROOT).as_posix() for path in PROTO_ROOT.rglob("*.proto"))


def _protoc(*args: str) -> None:
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{THIRD_PARTY}",
        f"-I{WKT_INCLUDE}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"protoc failed ({result.returncode}):\n{result.stderr}"


@pytest.fixture(scope="session")
def validation_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """protoc's and protoc-gen-pyservice's output for every test proto, first on sys.path."""
    out = tmp_path_factory.mktemp("validation_out")
    # validate.proto itself: only its _pb2 module, which the test protos' modules import.
    _protoc(f"--python_out={out}", "validate/validate.proto")
    _protoc(
        f"--plugin=protoc-gen-pyservice={PLUGIN}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--pyservice_out={out}",
        *proto_files(),
    )
    sys.path.insert(0, str(out))
    importlib.invalidate_caches()
    return out


def module_name(proto: str, suffix: str) -> str:
    """module_name("vt/cross/other.proto", "_pb2") -> "vt.cross.other_pb2"."""
    return proto.removesuffix(".proto").replace("/", ".") + suffix


@pytest.fixture(scope="session")
def load(validation_out: Path) -> Callable[[str], Any]:
    """load("strings") -> the vt.strings_pb2 module, once its vt.strings_validate imported."""

    def load_(name: str) -> Any:
        proto = f"vt/{name}.proto"
        module = importlib.import_module(module_name(proto, "_pb2"))
        importlib.import_module(module_name(proto, "_validate"))
        return module

    return load_


def runtime() -> ModuleType:
    """The runtime module under test, imported when a test first needs it."""
    return importlib.import_module("protoc_gen_pyservice.runtime.validation")


def pairs(violations: Iterable[Any]) -> list[Pair]:
    """The order-independent view of a violation list: sorted (field_path, rule_id, for_key)."""
    return sorted((v.field_path, v.rule_id, v.for_key) for v in violations)


def check(message: Any) -> list[Pair]:
    """pairs(collect_violations(message))."""
    return pairs(runtime().collect_violations(message))


def expect(field: str, rule: str | None, *, for_key: bool = False) -> list[Pair]:
    """[] when rule is None (valid), else the single violation (field, rule, for_key)."""
    return [] if rule is None else [(field, rule, for_key)]


def build(cls: Any, baseline: Mapping[str, Any], **fields: Any) -> Any:
    """cls(**baseline) with `fields` overriding: a valid message with one field changed."""
    return cls(**{**baseline, **fields})
