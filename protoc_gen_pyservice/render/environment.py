"""The one Jinja environment: configured once, templates compiled once and cached on disk."""

import functools
import os
from pathlib import Path

import jinja2
from protoc_gen_pyservice import __version__
from protoc_gen_pyservice.render import filters, layout


def templates_dir() -> Path:
    """Where the templates are: inside the installed package, else beside it in a checkout."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "templates"


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    # Compiling the templates costs more than rendering them; a plugin process is short-lived,
    # so keep the compiled code between runs. Unwritable cache dirs just mean no cache.
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "protoc-gen-pyservice", __version__)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return None
    if not os.access(directory, os.W_OK):
        return None
    return jinja2.FileSystemBytecodeCache(directory)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["pyrepr"] = filters.pyrepr
    env.filters["docstring"] = filters.docstring
    env.filters["subscript"] = filters.subscript
    env.filters["call"] = filters.call
    env.filters["pyset"] = filters.pyset
    env.filters["field_access"] = filters.field_access
    env.filters["fit"] = filters.fit
    env.filters["expression"] = layout.expression
    env.filters["statement"] = layout.statement
    return env
