"""The .proto files generated code depends on, found in the installed packages that ship them.

Two imports a project's protos may use and not own: protoc-gen-validate's
`validate/validate.proto` and our own `pyservice/options.proto`. Their Python modules
(`validate.validate_pb2`, `pyservice.options_pb2`) ship in this package's wheel, so a project
never generates them; buf and protoc only need to read the protos.
"""

import shutil
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

# Where `pyservice fetch-protos` copies them for buf: a folder the tool owns (ignored by git,
# a module of the project's buf.yaml that buf neither lints nor generates).
INCLUDE_DIR = ".pyservice/include"


class MissingProtoError(Exception):
    pass


class DependencyProto(NamedTuple):
    import_path: str  # as protos import it
    distribution: str  # the installed package that ships it


DEPENDENCY_PROTOS = (
    DependencyProto("validate/validate.proto", "protoc-gen-validate"),
    DependencyProto("pyservice/options.proto", "protoc-gen-pyservice"),
)


def package_proto_root() -> Path:
    """The folder holding pyservice/options.proto inside this package."""
    return Path(__file__).resolve().parent.parent / "proto"


def locate(proto: DependencyProto) -> Path:
    """The file on disk, wherever its package put it (protoc-gen-validate installs its proto
    as a data file, outside any import tree)."""
    if proto.distribution == "protoc-gen-pyservice":
        return package_proto_root() / proto.import_path
    file_name = proto.import_path.rsplit("/", 1)[-1]
    try:
        files = metadata.distribution(proto.distribution).files or []
    except metadata.PackageNotFoundError:
        raise MissingProtoError(
            f"{proto.import_path} comes from the {proto.distribution!r} package, which is not "
            "installed: pip install 'protoc-gen-pyservice[compiler]'"
        ) from None
    for file in files:
        if file.name == file_name:
            return Path(str(file.locate())).resolve()
    raise MissingProtoError(f"the installed {proto.distribution!r} package has no {file_name}")


def fetch(destination: Path, provided: frozenset[str] = frozenset()) -> list[Path]:
    """Copy each dependency proto not in `provided` (import paths the project's own modules
    already hold) under `destination`; returns the files written. Copies of protos the
    project provides itself are removed, so buf never sees one file twice."""
    written = []
    for proto in DEPENDENCY_PROTOS:
        target = destination / proto.import_path
        if proto.import_path in provided:
            target.unlink(missing_ok=True)
            continue
        source = locate(proto)
        if target.is_file() and target.read_bytes() == source.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return written


def protoc_include_args() -> list[str]:
    """What protoc needs (each after `-I`) to find the dependency protos where they are
    installed: the package's own proto folder, and a `virtual=file` mapping (protoc's own
    `--proto_path` syntax) for each file that is not under an import tree."""
    root = package_proto_root()
    arguments = [str(root)]
    for proto in DEPENDENCY_PROTOS:
        path = locate(proto)
        if path != root / proto.import_path:
            arguments.append(f"{proto.import_path}={path}")
    return arguments
