"""A project as buf sees it: the generation template (buf.gen.yaml) and the workspace (buf.yaml).

`pyservice generate` and `pyservice check` read the same template buf does, so they regenerate
and compare every folder any plugin writes, wherever the project puts it.
"""

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

TEMPLATE_NAME = "buf.gen.yaml"
WORKSPACE_NAME = "buf.yaml"


class ProjectError(Exception):
    """A project the commands cannot work with, said in one line."""


@dataclass(frozen=True, slots=True)
class Project:
    root: Path  # where buf runs: the template's folder, or the current one with --template
    template: Path
    output_dirs: tuple[str, ...]  # every plugin's `out`, relative to root, outermost only
    module_dirs: tuple[str, ...]  # buf.yaml module paths, relative to root
    deps: tuple[str, ...] = ()  # buf.yaml's Buf Schema Registry dependencies


def find(template: Path | None = None) -> Project:
    """The project of `template`, or of the nearest buf.gen.yaml from here upwards."""
    if template is not None:
        root = Path.cwd().resolve()
        template = template.resolve()
        if not template.is_file():
            raise ProjectError(f"{template}: no such file")
    else:
        here = Path.cwd().resolve()
        folder = next((f for f in (here, *here.parents) if (f / TEMPLATE_NAME).is_file()), None)
        if folder is None:
            raise ProjectError(
                f"no {TEMPLATE_NAME} here or in any parent folder: run `pyservice init` first"
            )
        root, template = folder, folder / TEMPLATE_NAME
    settings = _read_yaml(template)
    outputs = _output_dirs(template, settings)
    modules = _module_dirs(root / WORKSPACE_NAME)
    if not modules and not settings.get("inputs"):
        # Without either buf takes the whole folder as its input, .venv and all.
        raise ProjectError(
            f"no {WORKSPACE_NAME} in {root} and no `inputs` in {template.name}: buf would read "
            "every .proto below this folder; run `pyservice init` to write one"
        )
    return Project(
        root=root,
        template=template,
        output_dirs=outputs,
        module_dirs=modules,
        deps=_deps(root / WORKSPACE_NAME),
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ProjectError(f"{path}: cannot be read as YAML: {_one_line(error)}") from None
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise ProjectError(f"{path}: expected a mapping at the top level")
    return settings


def _output_dirs(template: Path, settings: dict[str, Any]) -> tuple[str, ...]:
    plugins = settings.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise ProjectError(f"{template}: no plugins: there is nothing to generate")
    outputs = set()
    for index, plugin in enumerate(plugins):
        out = plugin.get("out") if isinstance(plugin, dict) else None
        if not isinstance(out, str) or not out.strip():
            raise ProjectError(f"{template}: plugins[{index}] has no `out` folder")
        outputs.add(_relative_dir(template, out, f"plugins[{index}].out"))
    # A folder inside another one is compared as part of it.
    outermost = {
        out for out in outputs if not any(other != out and _inside(out, other) for other in outputs)
    }
    return tuple(sorted(outermost))


def _relative_dir(template: Path, value: str, where: str) -> str:
    path = PurePosixPath(value.strip())
    if path.is_absolute() or ".." in path.parts:
        raise ProjectError(f"{template}: {where} {value!r} must be a folder inside the project")
    text = path.as_posix()
    if text == ".":
        raise ProjectError(
            f"{template}: {where} is the project folder itself; generated code needs a folder "
            "of its own (clean: true empties it)"
        )
    return text


def _inside(folder: str, parent: str) -> bool:
    return PurePosixPath(folder).is_relative_to(PurePosixPath(parent))


def _module_dirs(workspace: Path) -> tuple[str, ...]:
    if not workspace.is_file():
        return ()
    settings = _read_yaml(workspace)
    modules = settings.get("modules")
    if not isinstance(modules, list):
        return (".",)  # a v1 buf.yaml, or a v2 one without modules: the folder is the module
    return tuple(
        str(module["path"])
        for module in modules
        if isinstance(module, dict) and isinstance(module.get("path"), str)
    )


def _deps(workspace: Path) -> tuple[str, ...]:
    """buf.yaml's `deps` (`buf.build/bufbuild/protovalidate`, with or without a `:label`)."""
    if not workspace.is_file():
        return ()
    deps = _read_yaml(workspace).get("deps")
    if not isinstance(deps, list):
        return ()
    return tuple(str(dep).split(":", 1)[0] for dep in deps if isinstance(dep, str))


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
