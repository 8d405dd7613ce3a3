"""`pyservice scaffold`: the modules a user owns, per service, kept in step with the protos.

For each service of the project's own protos (what `buf generate` reads, through the inputs of
buf.gen.yaml) there is an implementation module, `<implementations>/<service>.py`, with a class
deriving from the generated base class, and a test module, `<tests>/test_<service>.py`. A
missing module is written; an existing one is updated in place (cli/merge.py) and never
overwritten. Nothing is remembered between runs: what to add is decided by what the modules
have, so a second run changes nothing. The implementations folder is read first: a module in
it whose class derives from a service's base class is that service's, wherever a fresh one
would go (a module name chosen when the service's name was unique stays when it no longer is).

The folders come from the command line, else from `[tool.pyservice]` in pyproject.toml
(`implementations`, `tests`), else default to `src/<package>/services` (a src layout with one
package) or `services`, and to `tests`.
"""

import difflib
import functools
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import click
import yaml
from google.protobuf import descriptor_pb2
from protoc_gen_pyservice import pipeline
from protoc_gen_pyservice.cli import merge, project
from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.model import naming
from protoc_gen_pyservice.model.examples import TestingPlan
from protoc_gen_pyservice.model.nodes import File, Service
from protoc_gen_pyservice.options import Options, parse_options
from protoc_gen_pyservice.render import scaffold as render
from protoc_gen_pyservice.render.outputs import FilePlans

SETTINGS_KEYS = ("implementations", "tests")
DEFAULT_TESTS = "tests"
# The names buf.gen.yaml may give the plugin by: `local: protoc-gen-pyservice`, or v1's
# `plugin: pyservice` / `name: pyservice`.
_PLUGIN_NAMES = frozenset({"protoc-gen-pyservice", "pyservice"})
# Input kinds buf.gen.yaml may list that name something `buf build` reads as it is.
_INPUT_KINDS = ("directory", "proto_file", "module")


class ScaffoldError(Exception):
    """A project scaffold cannot work with, said in one line."""


@dataclass(frozen=True, slots=True)
class Settings:
    implementations: str  # folders relative to the project root, `/`-separated
    tests: str


def read_settings(
    root: Path, implementations: str | None = None, tests: str | None = None
) -> Settings:
    """The folders: given ones first, then pyproject.toml's `[tool.pyservice]`, then defaults."""
    configured = _pyproject_settings(root / "pyproject.toml")
    chosen = {
        "implementations": implementations
        or configured.get("implementations")
        or default_implementations(root),
        "tests": tests or configured.get("tests") or DEFAULT_TESTS,
    }
    return Settings(**{key: _folder(key, value) for key, value in chosen.items()})


def default_implementations(root: Path) -> str:
    """`src/<package>/services` when src/ holds exactly one package, else `services`."""
    source = root / "src"
    packages = (
        [p.name for p in source.iterdir() if (p / "__init__.py").is_file()]
        if source.is_dir()
        else []
    )
    return f"src/{packages[0]}/services" if len(packages) == 1 else "services"


def _pyproject_settings(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ScaffoldError(f"{path}: not valid TOML: {error}") from None
    table = document.get("tool", {}).get("pyservice", {})
    if not isinstance(table, dict):
        raise ScaffoldError(f"{path}: [tool.pyservice] must be a table")
    for key, value in table.items():
        if key not in SETTINGS_KEYS:
            raise ScaffoldError(
                f"{path}: [tool.pyservice] has no setting {key!r}; "
                f"the settings are: {', '.join(SETTINGS_KEYS)}"
            )
        if not isinstance(value, str):
            raise ScaffoldError(f"{path}: [tool.pyservice] {key} must be a folder name (a string)")
    return table


def _folder(key: str, value: str) -> str:
    path = PurePosixPath(value.strip().replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or path.as_posix() in ("", "."):
        raise ScaffoldError(f"{key} {value!r}: give a folder inside the project")
    return path.as_posix()


# The project's services


class Target(NamedTuple):
    """One service and the two modules scaffold keeps for it."""

    file: File
    service: Service
    testing: TestingPlan | None  # of the file; None when no testing module is generated
    implementation: str  # path relative to the project root
    tests: str
    implementation_module: str  # the implementation's import name: services.user_service
    warnings: tuple[str, ...]  # about where the modules are


def targets(found: project.Project, buf: str, settings: Settings) -> list[Target]:
    """Every service with RPCs in the project's own protos, in file and declaration order."""
    services = [
        (file, plans.testing, service)
        for file, plans in load_files(found, buf)
        for service in file.services
        if service.methods
    ]
    existing = _existing_modules(found.root, settings.implementations)
    owned: dict[str, list[str]] = {}
    claimed: set[str] = set()
    for file, _, service in services:
        # The module scaffold would name itself first, when it is one of them; a module goes
        # to one service only.
        owned[service.full_name] = sorted(
            (
                stem
                for stem, bases in existing.items()
                if _derives(bases, file, service) and stem not in claimed
            ),
            key=lambda stem: stem not in _own_stems(service),
        )
        claimed.update(owned[service.full_name][:1])
    stems = _module_stems([service for _, _, service in services], claimed)
    package = _import_name(settings.implementations)
    chosen = []
    for (file, testing, service), stem in zip(services, stems, strict=True):
        found_stems = owned[service.full_name]
        warnings: tuple[str, ...] = ()
        if found_stems:
            stem = found_stems[0]
            if len(found_stems) > 1:
                others = ", ".join(_module_path(settings, s) for s in found_stems[1:])
                warnings = (
                    f"more than one module has a class deriving from {service.base_class} "
                    f"(also {others}); scaffold keeps this one up to date",
                )
        chosen.append(
            Target(
                file=file,
                service=service,
                testing=testing,
                implementation=_module_path(settings, stem),
                tests=f"{settings.tests}/test_{stem.replace('/', '_')}.py",
                implementation_module=f"{package}.{stem.replace('/', '.')}",
                warnings=warnings,
            )
        )
    return chosen


def _derives(bases: frozenset[str], file: File, service: Service) -> bool:
    """Whether one of `bases` (as merge.base_classes spells them) is the service's generated
    base class: by its module too where the module's imports tell it, as services of two
    packages may have base classes of the same name."""
    base_module = naming.output_module(file.proto_path, "service")
    return f"{base_module}.{service.base_class}" in bases or service.base_class in bases


def _module_path(settings: Settings, stem: str) -> str:
    return f"{settings.implementations}/{stem}.py"


def _existing_modules(root: Path, folder: str) -> dict[str, frozenset[str]]:
    """The modules of the implementations folder (stems relative to it, `/`-separated), each
    with the base classes its top-level classes derive from, as `find_implementation` reads
    them. Modules that do not parse are left out here; scaffold reports them where it meets
    them."""
    directory = root / folder
    if not directory.is_dir():
        return {}
    found = {}
    for path in sorted(directory.rglob("*.py")):
        stem = path.relative_to(directory).with_suffix("").as_posix()
        if not all(part.isidentifier() for part in stem.split("/")):
            continue
        try:
            module = merge.parse(_read(path))
        except merge.MergeError:
            continue
        found[stem] = merge.base_classes(module)
    return found


def _module_stems(services: list[Service], claimed: set[str]) -> list[str]:
    """`user_service` per service; services of the same name in different packages are told
    apart by their package: `user_v1_user_service`, `user_v2_user_service`. `claimed`: stems
    of existing modules other services already have."""
    plain = [_own_stems(service)[0] for service in services]
    taken = set(claimed)
    stems = []
    for service, stem in zip(services, plain, strict=True):
        if plain.count(stem) > 1 and service.full_name != service.name:
            stem = _own_stems(service)[1]
        stems.append(naming.unique(stem, taken))
    return stems


def _own_stems(service: Service) -> tuple[str, str]:
    """The module names scaffold gives a service: by its name, and by its full name."""
    return (
        naming.attribute(naming.snake_case(service.name)),
        naming.snake_case(service.full_name.replace(".", "_")),
    )


def _import_name(folder: str) -> str:
    """How tests import the implementations folder: `src/` is an import root, not a package."""
    parts = PurePosixPath(folder).parts
    if parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    for part in parts:
        if not part.isidentifier() or naming.is_keyword(part):
            raise ScaffoldError(
                f"implementations {folder!r}: {part!r} cannot be part of a Python module name"
            )
    return ".".join(parts)


def load_files(found: project.Project, buf: str) -> list[tuple[File, FilePlans]]:
    """The models and plans of the project's own proto files, as protoc-gen-pyservice makes
    them from what `buf build` reads from the inputs of buf.gen.yaml, with the plugin options
    it gives protoc-gen-pyservice."""
    template = _template(found.template)
    options = _plugin_options(found.template, template)
    everything: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    own: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pyservice-scaffold-") as scratch:
        for index, arguments in enumerate(_inputs(found.template, template)):
            whole = _buf_build(buf, found.root, arguments, Path(scratch) / f"{index}.binpb")
            for file in whole.file:
                everything.setdefault(file.name, file)
            # The same build again, so its warnings were shown already.
            only_own = ["--exclude-imports", *arguments]
            own_set = _buf_build(
                buf, found.root, only_own, Path(scratch) / f"{index}-own.binpb", quiet=True
            )
            own.extend(file.name for file in own_set.file if file.name not in own)
    try:
        return list(pipeline.planned_files(list(everything.values()), own, options))
    except GenerationError as error:
        raise ScaffoldError(str(error)) from None


def _template(path: Path) -> dict[str, Any]:
    settings = yaml.safe_load(path.read_text(encoding="utf-8"))  # project.find() has read it
    return settings if isinstance(settings, dict) else {}


def _plugin_options(path: Path, template: dict[str, Any]) -> Options:
    for plugin in template.get("plugins") or []:
        if not isinstance(plugin, dict):
            continue
        named = [plugin.get(key) for key in ("local", "plugin", "name")]
        if not any(isinstance(n, str) and Path(n).name in _PLUGIN_NAMES for n in named):
            continue
        opt = plugin.get("opt") or ""
        try:
            return parse_options(opt if isinstance(opt, str) else ",".join(map(str, opt)))
        except GenerationError as error:
            raise ScaffoldError(f"{path}: {error}") from None
    return Options()


def _inputs(path: Path, template: dict[str, Any]) -> Iterator[list[str]]:
    """`buf build` arguments for each input; without inputs, buf reads the workspace."""
    inputs = template.get("inputs")
    if not inputs:
        yield ["."]
        return
    for index, entry in enumerate(inputs):
        kinds = [kind for kind in _INPUT_KINDS if isinstance(entry, dict) and kind in entry]
        if not kinds:
            raise ScaffoldError(
                f"{path}: inputs[{index}]: scaffold reads {', '.join(_INPUT_KINDS)} inputs only"
            )
        arguments = [str(entry[kinds[0]])]
        for key, flag in (("paths", "--path"), ("exclude_paths", "--exclude-path")):
            for value in entry.get(key) or []:
                arguments += [flag, str(value)]
        yield arguments


def _buf_build(
    buf: str, root: Path, arguments: list[str], out: Path, quiet: bool = False
) -> descriptor_pb2.FileDescriptorSet:
    command = [buf, "build", *arguments, "--as-file-descriptor-set", "-o", str(out)]
    result = subprocess.run(command, cwd=root, check=False, capture_output=quiet)
    if result.returncode != 0:
        if quiet:
            click.echo(result.stderr, err=True, nl=False)
        raise ScaffoldError(f"buf build failed (exit {result.returncode}), see above")
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


# Writing


class Planned(NamedTuple):
    """What one module becomes."""

    path: str  # relative to the project root
    before: str | None  # None: the module does not exist yet
    after: str
    changes: tuple[str, ...]
    warnings: tuple[str, ...]


def plan(found: project.Project, buf: str, settings: Settings) -> list[Planned]:
    planned = []
    for target in targets(found, buf, settings):
        implementation = render.implementation_module(target.file, target.service)
        update_implementation = functools.partial(
            merge.update_implementation,
            fresh=implementation.text,
            groups=implementation.groups,
            base_class=target.service.base_class,
        )
        written = _planned(
            found.root, target.implementation, implementation.text, update_implementation
        )
        planned.append(written._replace(warnings=(*target.warnings, *written.warnings)))
        if target.testing is None:
            continue  # no x_testing module for the tests to use
        tests = render.test_module(
            target.file,
            target.service,
            target.testing,
            target.implementation_module,
            _listed_unimplemented(written.after, target.service.base_class),
        )
        update_tests = functools.partial(
            merge.update_tests,
            fresh=tests.text,
            groups=tests.groups,
            first_party=target.implementation_module.split(".")[:1],
            support=tests.support,
        )
        planned.append(_planned(found.root, target.tests, tests.text, update_tests))
    package_marker = f"{settings.implementations}/__init__.py"
    if planned and not (found.root / settings.implementations).exists():
        # A folder scaffold creates is a package of its own, as the tests import it.
        planned.insert(0, Planned(package_marker, None, "", (), ()))
    return planned


def _listed_unimplemented(implementation: str, base_class: str) -> frozenset[str]:
    """The RPCs the implementation module (as scaffold leaves it) lists in UNIMPLEMENTED_RPCS:
    they get no tests."""
    try:
        found = merge.find_implementation(merge.parse(implementation), base_class)
    except merge.MergeError:
        return frozenset()
    return frozenset() if found is None else found.unimplemented


def _planned(root: Path, path: str, fresh: str, update: Callable[[str], merge.Merged]) -> Planned:
    file = root / path
    if not file.exists():
        return Planned(path, None, fresh, (), ())
    try:
        # Bytes, not text: a module's line endings are part of what must not change.
        source = _read(file)
        merged = update(source)
    except merge.MergeError as error:
        return Planned(path, "", "", (), (f"{error}; left as it is",))
    return Planned(path, source, merged.text, merged.changes, merged.warnings)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise merge.MergeError(f"is not UTF-8 ({error.reason} at byte {error.start})") from None


def run(found: project.Project, buf: str, settings: Settings, dry_run: bool) -> None:
    """Write (or, with `dry_run`, show as a diff) what `plan` says; warnings go to stderr."""
    planned = plan(found, buf, settings)
    if not planned:
        click.echo("no services with RPCs in the project's protos: nothing to scaffold")
        return
    for item in planned:
        for warning in item.warnings:
            click.echo(f"warning: {item.path}: {warning}", err=True)
    if dry_run:
        diffs = [_diff(item) for item in planned if item.before != item.after]
        for diff in diffs:
            click.echo(diff, nl=False)
        if not diffs:
            click.echo("nothing to change")
        return
    for item in planned:
        target = found.root / item.path
        if item.after == item.before:
            click.echo(f"{'kept':>8} {item.path}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.after.encode("utf-8"))
        if item.before is None:
            click.echo(f"{'wrote':>8} {item.path}")
        else:
            click.echo(f"{'updated':>8} {item.path} ({', '.join(item.changes)})")
    if any(
        item.path.startswith(f"{settings.tests}/") for item in planned if item.after != item.before
    ):
        _import_root_note(found.root, settings)
    if settings.implementations != read_settings(found.root).implementations:
        click.echo(
            "note: `pyservice check` looks for implementations where pyproject.toml says: set "
            f'implementations = "{settings.implementations}" in its [tool.pyservice]'
        )


def _diff(item: Planned) -> str:
    """A unified diff of the module as it is (/dev/null if new) and as it would be."""
    source = "/dev/null" if item.before is None else f"a/{item.path}"
    if not item.after:
        return f"--- {source}\n+++ b/{item.path} (an empty file)\n"
    lines = difflib.unified_diff(
        (item.before or "").splitlines(keepends=True),
        item.after.splitlines(keepends=True),
        source,
        f"b/{item.path}",
    )
    return "".join(lines)


def _import_root_note(root: Path, settings: Settings) -> None:
    """Tests import the implementations from their import root: say so when pytest's
    `pythonpath` (pyproject.toml) leaves that root out."""
    import_root = "src" if settings.implementations.startswith("src/") else "."
    path = root / "pyproject.toml"
    if not path.is_file():
        return
    pytest_options = (
        tomllib.loads(path.read_text(encoding="utf-8"))
        .get("tool", {})
        .get("pytest", {})
        .get("ini_options", {})
    )
    pythonpath = pytest_options.get("pythonpath", [])
    # pytest reads a string as paths separated by whitespace.
    paths = pythonpath.split() if isinstance(pythonpath, str) else pythonpath
    if import_root not in {str(entry).rstrip("/") or "." for entry in paths}:
        click.echo(
            f"note: the tests import {_import_name(settings.implementations)} from "
            f'{import_root}/: add "{import_root}" to pythonpath in [tool.pytest.ini_options]',
        )


# pyservice check


def missing_methods(found: project.Project, buf: str) -> list[str]:
    """One line per RPC an implementation module's class has no method for and does not list
    in UNIMPLEMENTED_RPCS, and per implementation module that cannot be read. Empty when the
    implementations folder does not exist (the project does not use scaffold)."""
    settings = read_settings(found.root)
    if not (found.root / settings.implementations).is_dir():
        return []
    lines = []
    for target in targets(found, buf, settings):
        path = found.root / target.implementation
        if not path.is_file():
            continue
        try:
            module = merge.parse(_read(path))
        except merge.MergeError as error:
            lines.append(f"{target.implementation}: {error}")
            continue
        found_class = merge.find_implementation(module, target.service.base_class)
        if found_class is None:
            lines.append(
                f"{target.implementation}: no class derives from {target.service.base_class}, "
                f"so nothing implements {target.service.full_name}"
            )
            continue
        lines.extend(
            f"{target.implementation}: {found_class.name} has no method {method.servicer_name} "
            f"for RPC {method.name} ({method.path}); `pyservice scaffold` adds a stub, or list "
            f"{method.name!r} in {found_class.name}.{render.UNIMPLEMENTED_ATTRIBUTE}"
            for method in target.service.methods
            if method.servicer_name not in found_class.methods
            and method.name not in found_class.unimplemented
        )
    return lines
