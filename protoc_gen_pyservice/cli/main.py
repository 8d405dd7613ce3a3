"""The `pyservice` command: generate code with buf, and check generated/ for drift."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click
from protoc_gen_pyservice.cli import drift, protos

GENERATED_DIR = "generated"
THIRD_PARTY_DIR = "third_party"


def _project_root() -> Path:
    """The nearest folder, from here upwards, with a buf.gen.yaml."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "buf.gen.yaml").is_file():
            return folder
    raise click.ClickException("no buf.gen.yaml here or in any parent folder")


def _tool_environment() -> dict[str, str]:
    # buf runs `python -m grpc_tools.protoc` and protoc-gen-pyservice: take both (and buf
    # itself) from the environment this command is installed in.
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    return env


def _buf() -> str:
    bin_dir = Path(sys.executable).parent
    for candidate in (bin_dir / "buf", shutil.which("buf")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise click.ClickException("buf is not installed: pip install 'protoc-gen-pyservice[compiler]'")


def _run_buf_generate(root: Path, output_base: Path | None = None) -> None:
    try:
        protos.fetch_third_party(root / THIRD_PARTY_DIR)
    except protos.MissingProtoError as error:
        raise click.ClickException(str(error)) from None
    command = [_buf(), "generate"]
    if output_base is not None:
        command += ["--output", str(output_base)]
    result = subprocess.run(command, cwd=root, env=_tool_environment(), check=False)
    if result.returncode != 0:
        raise click.ClickException(f"buf generate failed (exit {result.returncode})")


@click.group()
@click.version_option(package_name="protoc-gen-pyservice")
def cli() -> None:
    """protoc-gen-pyservice: typed async gRPC services from your protos."""


@cli.command()
def generate() -> None:
    """Regenerate the project's code with `buf generate` (third-party protos fetched first)."""
    root = _project_root()
    _run_buf_generate(root)
    click.echo(f"generated {GENERATED_DIR}/ from {root / 'buf.gen.yaml'}")


@cli.command()
def check() -> None:
    """Exit 1, listing the drifted files, when generated/ is not what buf generate makes now."""
    root = _project_root()
    with tempfile.TemporaryDirectory(prefix="pyservice-check-") as scratch:
        fresh_base = Path(scratch)
        _run_buf_generate(root, output_base=fresh_base)
        fresh, checked_in = fresh_base / GENERATED_DIR, root / GENERATED_DIR
        found = drift.compare(fresh, checked_in)
        if not found:
            click.echo(f"{GENERATED_DIR}/ is up to date")
            return
        click.echo(f"{GENERATED_DIR}/ has drifted from proto/; run `make generate`:", err=True)
        for name in found.added:
            click.echo(f"  missing:   {GENERATED_DIR}/{name}", err=True)
        for name in found.removed:
            click.echo(f"  stale:     {GENERATED_DIR}/{name}", err=True)
        for name in found.changed:
            click.echo(f"  changed:   {GENERATED_DIR}/{name}", err=True)
        for name in found.changed:
            for line in drift.unified_diff(fresh / name, checked_in / name, name):
                click.echo(line, err=True)
        sys.exit(1)


@cli.command("fetch-protos")
def fetch_protos() -> None:
    """Copy third-party protos (validate/validate.proto) from their packages into third_party/."""
    root = _project_root()
    try:
        changed = protos.fetch_third_party(root / THIRD_PARTY_DIR)
    except protos.MissingProtoError as error:
        raise click.ClickException(str(error)) from None
    for path in changed:
        click.echo(f"wrote {path.relative_to(root)}")


@cli.command("include-path")
def include_path() -> None:
    """Print the folders protoc needs (-I) for pyservice/options.proto and validate/validate.proto,
    one a line: the package's own, and a per-user copy of protoc-gen-validate's."""
    cache = Path(click.get_app_dir("protoc-gen-pyservice")) / "include"
    try:
        folders = protos.include_paths(cache)
    except protos.MissingProtoError as error:
        raise click.ClickException(str(error)) from None
    for folder in folders:
        click.echo(folder)
