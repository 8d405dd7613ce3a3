"""The .proto files generated code depends on, found in the installed packages that ship them.

Three imports a project's protos may use and not own: protoc-gen-validate's
`validate/validate.proto`, protovalidate's `buf/validate/validate.proto` and our own
`pyservice/options.proto`. Their Python modules (`validate.validate_pb2`,
`buf.validate.validate_pb2`, `pyservice.options_pb2`) ship in this package's wheel, so a project
never generates them; buf and protoc only need to read the protos.

No package on the registries ships `buf/validate/validate.proto` as source: protovalidate's
wheel carries it compiled, as the serialized descriptor its generated module passes to
`file_desc(...)`. That descriptor is read without importing the module and printed back as
source (proto_source.py), so set-up works offline.
"""

import ast
import os
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    field_mask_pb2,
    timestamp_pb2,
)
from google.protobuf.message import DecodeError
from protoc_gen_pyservice.cli.proto_source import UnprintableProtoError, proto_source

# Where `pyservice fetch-protos` copies them for buf: a folder the tool owns (ignored by git,
# a module of the project's buf.yaml that buf neither lints nor generates).
INCLUDE_DIR = ".pyservice/include"


class MissingProtoError(Exception):
    pass


class DependencyProto(NamedTuple):
    import_path: str  # as protos import it
    distribution: str  # the installed package that ships it
    # The Buf Schema Registry module that holds it too: a project depending on that module
    # gets the proto from there, and a second copy would clash.
    registry_module: str = ""


DEPENDENCY_PROTOS = (
    DependencyProto("validate/validate.proto", "protoc-gen-validate"),
    DependencyProto(
        "buf/validate/validate.proto", "protovalidate", "buf.build/bufbuild/protovalidate"
    ),
    DependencyProto("pyservice/options.proto", "protoc-gen-pyservice"),
)
# The imports of buf/validate/validate.proto, by the modules that hold their descriptors.
_WELL_KNOWN: dict[str, Any] = {
    "google/protobuf/descriptor.proto": descriptor_pb2,
    "google/protobuf/duration.proto": duration_pb2,
    "google/protobuf/field_mask.proto": field_mask_pb2,
    "google/protobuf/timestamp.proto": timestamp_pb2,
}
# Where protovalidate's generated module sits inside its wheel.
_PROTOVALIDATE_MODULE = "protovalidate/_gen/buf/validate/validate_pb.py"


def package_proto_root() -> Path:
    """The folder holding pyservice/options.proto inside this package."""
    return Path(__file__).resolve().parent.parent / "proto"


def locate(proto: DependencyProto) -> Path:
    """The file on disk, wherever its package put it (protoc-gen-validate installs its proto
    as a data file, outside any import tree)."""
    if proto.distribution == "protoc-gen-pyservice":
        return package_proto_root() / proto.import_path
    if proto.distribution == "protovalidate":
        return _printed_protovalidate(proto)
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
        content = locate(proto).read_bytes()
        if target.is_file() and target.read_bytes() == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(target)
    return written


def _installed_file(distribution: str, path: str) -> Path:
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        raise MissingProtoError(
            f"buf/validate/validate.proto comes from the {distribution!r} package, which is not "
            "installed: pip install 'protoc-gen-pyservice[compiler]'"
        ) from None
    for file in files:
        if str(file) == path:
            return Path(str(file.locate())).resolve()
    raise MissingProtoError(f"the installed {distribution!r} package has no {path}")


def _printed_protovalidate(proto: DependencyProto) -> Path:
    """buf/validate/validate.proto printed from protovalidate's descriptor, kept in a cache
    folder named after the installed version (protoc and `include-path` need a file)."""
    version = metadata.version(proto.distribution)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = cache / "pyservice" / f"protovalidate-{version}" / proto.import_path
    if target.is_file():
        return target
    module = _installed_file(proto.distribution, _PROTOVALIDATE_MODULE)
    try:
        file = descriptor_pb2.FileDescriptorProto.FromString(serialized_descriptor(module))
        if file.name != proto.import_path:
            raise MissingProtoError(f"{module} describes {file.name}, not {proto.import_path}")
        source = proto_source(file, pool_with(file))
    except (DecodeError, UnprintableProtoError, TypeError, KeyError, ValueError) as error:
        raise MissingProtoError(
            f"{proto.import_path} cannot be printed from protovalidate {version}'s descriptor "
            f"({error}); pin protovalidate==2.1.0 or add buf.build/bufbuild/protovalidate to "
            "buf.yaml's deps"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(source, encoding="utf-8")
    scratch.replace(target)  # atomic: two processes printing at once never see half a file
    return target


def serialized_descriptor(module: Path) -> bytes:
    """The bytes passed to `file_desc(...)` in a protobuf-py generated module, read with ast
    (importing it would need protovalidate's own protobuf runtime)."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "file_desc"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return node.args[0].value
    raise MissingProtoError(f"{module} holds no serialized file descriptor")


def pool_with(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pool.DescriptorPool:
    """A pool with `file` and the well-known types it imports, so its options print by name."""
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added:
            return
        module = _WELL_KNOWN.get(name)
        if module is None:
            raise MissingProtoError(f"{file.name} imports {name}, which is not a well-known type")
        added.add(name)
        dependency = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(dependency)
        for inner in dependency.dependency:
            add(inner)
        pool.Add(dependency)

    for dependency_name in file.dependency:
        add(dependency_name)
    pool.Add(file)
    return pool


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
