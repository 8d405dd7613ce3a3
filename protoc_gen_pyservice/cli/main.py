"""The `pyservice` command: set a project up, generate its code with buf, check it for drift."""

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from protoc_gen_pyservice.cli import drift, init, project, protos, scaffold

P = ParamSpec("P")
R = TypeVar("R")

_MAX_LISTED = 5


def _one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Every expected failure is one line on stderr and exit 1, never a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (
            project.ProjectError,
            protos.MissingProtoError,
            init.InitError,
            scaffold.ScaffoldError,
        ) as error:
            raise click.ClickException(str(error)) from None
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            raise click.ClickException(f"{where}{error.strerror or error}") from None

    return run


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


def _fetch(found: project.Project) -> list[Path]:
    """The dependency protos, for buf, unless one of the project's own modules holds them."""
    own_modules = [m for m in found.module_dirs if m != protos.INCLUDE_DIR]
    provided = frozenset(
        proto.import_path
        for proto in protos.DEPENDENCY_PROTOS
        if any((found.root / module / proto.import_path).is_file() for module in own_modules)
        or (proto.registry_module and proto.registry_module in found.deps)
    )
    return protos.fetch(found.root / protos.INCLUDE_DIR, provided)


def _run_buf_generate(found: project.Project, output_base: Path | None = None) -> None:
    _fetch(found)
    command = [_buf(), "generate", "--template", str(found.template)]
    if output_base is not None:
        command += ["--output", str(output_base)]
    result = subprocess.run(command, cwd=found.root, env=_tool_environment(), check=False)
    if result.returncode != 0:
        raise click.ClickException(f"buf generate failed (exit {result.returncode}), see above")


def _folders(found: project.Project, verb: str = "") -> str:
    """`gen/`, or `gen/ is` / `gen/, docs/ are` when given the verb `is`."""
    names = ", ".join(f"{folder}/" for folder in found.output_dirs)
    if not verb:
        return names
    return f"{names} {verb if len(found.output_dirs) == 1 else 'are'}"


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


_TEMPLATE_OPTION = click.option(
    "--template",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The buf.gen.yaml to use; paths in it are relative to the current folder. "
    "Default: the nearest buf.gen.yaml from here upwards.",
)


@click.group()
@click.version_option(package_name="protoc-gen-pyservice")
def cli() -> None:
    """protoc-gen-pyservice: typed async gRPC services from your protos."""


@cli.command("init")
@click.option("--proto", "proto_dir", default="proto", show_default=True, help="Your protos.")
@click.option(
    "--out",
    "out_dir",
    default="gen",
    show_default=True,
    help="Where generated code goes; emptied by every `buf generate`, so only generated code.",
)
@click.option(
    "--stubs",
    type=click.Choice([stubs.value for stubs in init.Stubs]),
    default=init.Stubs.PROTOC.value,
    show_default=True,
    help="Who writes the _pb2.pyi type stubs: protoc, or mypy-protobuf (passes mypy --strict).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite buf.yaml and buf.gen.yaml, and replace the pyproject settings init writes.",
)
@click.option(
    "--no-pyproject", is_flag=True, help="Leave pyproject.toml alone (no mypy/pytest/ruff setup)."
)
@_one_line_errors
def init_command(proto_dir: str, out_dir: str, stubs: str, force: bool, no_pyproject: bool) -> None:
    """Set up the current folder: buf.yaml, buf.gen.yaml, .gitignore, pyproject.toml."""
    root = Path.cwd().resolve()
    layout = init.Layout(proto_dir.strip("/"), out_dir.strip("/"), init.Stubs(stubs))
    init.check_layout(layout)
    foreign = init.not_generated(root / layout.out_dir)
    if foreign and not force:
        listed = ", ".join(_shown(path, root) for path in foreign[:_MAX_LISTED])
        more = f" and {len(foreign) - _MAX_LISTED} more" if len(foreign) > _MAX_LISTED else ""
        raise init.InitError(
            f"{layout.out_dir}/ holds files no code generator wrote ({listed}{more}); "
            "`buf generate` empties that folder: choose another --out, or --force"
        )
    if not no_pyproject:
        init.read_pyproject(root / "pyproject.toml")  # refuse a broken one before writing
    results = [
        init.write_file(root / project.WORKSPACE_NAME, init.buf_yaml(layout), force),
        init.write_file(root / project.TEMPLATE_NAME, init.buf_gen_yaml(layout), force),
        init.extend_gitignore(root / ".gitignore"),
    ]
    if not no_pyproject:
        results.append(init.extend_pyproject(root / "pyproject.toml", layout, force))
    (root / layout.proto_dir).mkdir(parents=True, exist_ok=True)
    for result in results:
        note = f" ({result.note})" if result.note else ""
        click.echo(f"{result.action:>8} {_shown(result.path, root)}{note}")
    for path in _fetch(project.find()):
        click.echo(f"{'copied':>8} {_shown(path, root)}")
    click.echo(
        "\nNext:\n"
        f"  1. put your .proto files under {layout.proto_dir}/"
        f" (for example {layout.proto_dir}/acme/v1/shop.proto)\n"
        f"  2. pyservice generate     (or `buf generate`) writes {layout.out_dir}/\n"
        f"  3. put {layout.out_dir}/ on the import path: PYTHONPATH={layout.out_dir}"
        " (pytest and mypy are set up in pyproject.toml)\n"
        "  4. commit the generated code; `pyservice check` in CI fails when it drifts"
    )


@cli.command()
@_TEMPLATE_OPTION
@_one_line_errors
def generate(template: Path | None) -> None:
    """Regenerate every output folder of buf.gen.yaml with `buf generate`."""
    found = project.find(template)
    _run_buf_generate(found)
    click.echo(f"generated {_folders(found)} from {_shown(found.template, found.root)}")


@cli.command()
@_TEMPLATE_OPTION
@_one_line_errors
def check(template: Path | None) -> None:
    """Exit 1, naming each edited, missing and stale file, when an output folder of
    buf.gen.yaml is not exactly what `buf generate` makes now, and each RPC an implementation
    class (see `pyservice scaffold`) has no method for."""
    found = project.find(template)
    with tempfile.TemporaryDirectory(prefix="pyservice-check-") as scratch:
        fresh = Path(scratch)
        _run_buf_generate(found, output_base=fresh)
        if not any(path.is_file() for path in fresh.rglob("*")):
            raise click.ClickException(
                f"buf generate wrote no files, so there is nothing to compare {_folders(found)} "
                f"with: check the inputs and plugins of {_shown(found.template, found.root)}"
            )
        result = drift.compare_folders(fresh, found.root, found.output_dirs)
        missing_methods = scaffold.missing_methods(found, _buf())
        for line in missing_methods:
            click.echo(line, err=True)
        if not result:
            if missing_methods:
                click.echo(
                    f"{_folders(found, 'is')} up to date; the implementations are not (above)",
                    err=True,
                )
                sys.exit(1)
            click.echo(f"{_folders(found, 'is')} up to date")
            return
        click.echo(
            f"{_folders(found, 'is')} not what buf generate makes now; run `pyservice generate`:",
            err=True,
        )
        for kind in ("edited", "missing", "stale"):
            for name in getattr(result, kind):
                click.echo(f"  {kind + ':':<9}{name}", err=True)
        for name in result.edited:
            for line in drift.unified_diff(fresh / name, found.root / name, name):
                click.echo(line, err=True)
        sys.exit(1)


@cli.command("scaffold")
@_TEMPLATE_OPTION
@click.option(
    "--implementations",
    metavar="DIR",
    help="Where the implementation modules are. Default: `implementations` in pyproject.toml's "
    "[tool.pyservice], else src/<package>/services for a src layout with one package, "
    "else services.",
)
@click.option(
    "--tests",
    metavar="DIR",
    help="Where the test modules are. Default: `tests` in [tool.pyservice], else tests.",
)
@click.option("--dry-run", is_flag=True, help="Print what would change as a diff; write nothing.")
@_one_line_errors
def scaffold_command(
    template: Path | None, implementations: str | None, tests: str | None, dry_run: bool
) -> None:
    """Write, per service, an implementation module with a stub for each RPC and a test
    module; bring existing ones up to date in place, never overwriting them."""
    found = project.find(template)
    _fetch(found)
    settings = scaffold.read_settings(found.root, implementations, tests)
    scaffold.run(found, _buf(), settings, dry_run)


@cli.command("fetch-protos")
@_one_line_errors
def fetch_protos() -> None:
    """Copy validate/validate.proto, buf/validate/validate.proto and pyservice/options.proto
    from the installed packages into .pyservice/include/, a module of buf.yaml (pyservice
    generate does this itself)."""
    found = project.find()
    for path in _fetch(found):
        click.echo(f"copied {_shown(path, found.root)}")


@cli.command("include-path")
@_one_line_errors
def include_path() -> None:
    """Print, one a line, what protoc needs after -I to find pyservice/options.proto,
    validate/validate.proto and buf/validate/validate.proto where they are installed. Writes
    nothing but, once per protovalidate version, buf/validate/validate.proto printed from its
    descriptor into the user cache ($XDG_CACHE_HOME/pyservice)."""
    for argument in protos.protoc_include_args():
        click.echo(argument)
