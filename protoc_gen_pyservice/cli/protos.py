"""Third-party .proto files, taken from the installed packages that ship them."""

import shutil
from importlib import metadata
from pathlib import Path

# (distribution, file inside it, where it goes under third_party/)
THIRD_PARTY_PROTOS = (("protoc-gen-validate", "validate.proto", "validate/validate.proto"),)


class MissingProtoError(Exception):
    pass


def fetch_third_party(destination: Path) -> list[Path]:
    """Copy each third-party proto into `destination`; returns the files that changed."""
    changed = []
    for distribution, file_name, target_name in THIRD_PARTY_PROTOS:
        source = _shipped_file(distribution, file_name)
        target = destination / target_name
        if target.is_file() and target.read_bytes() == source.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        changed.append(target)
    return changed


def _shipped_file(distribution: str, file_name: str) -> Path:
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        raise MissingProtoError(
            f"{file_name} comes from the {distribution!r} package, which is not installed: "
            "pip install 'protoc-gen-pyservice[compiler]'"
        ) from None
    for file in files:
        if file.name == file_name:
            return Path(str(file.locate()))
    raise MissingProtoError(f"the installed {distribution!r} package has no {file_name}")


def package_proto_root() -> Path:
    """The folder holding pyservice/options.proto, for include paths (`-I`)."""
    return Path(__file__).resolve().parent.parent / "proto"


def include_paths(cache_root: Path) -> list[Path]:
    """Every folder protoc needs for our options and protoc-gen-validate's rules: the package's
    own protos, and validate/validate.proto copied from the installed protoc-gen-validate."""
    fetch_third_party(cache_root)
    return [package_proto_root(), cache_root]
