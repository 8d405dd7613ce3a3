"""Turns rendered files (or an error) into a CodeGeneratorResponse, checking our own output."""

from collections.abc import Iterable

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from protoc_gen_pyservice.render.outputs import RenderedFile

SUPPORTED_FEATURES = (
    plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    | plugin_pb2.CodeGeneratorResponse.FEATURE_SUPPORTS_EDITIONS
)
MINIMUM_EDITION = descriptor_pb2.EDITION_PROTO2
MAXIMUM_EDITION = descriptor_pb2.EDITION_2024


class OutputCheckError(Exception):
    """Our own output is broken: a plugin bug, never the user's."""


def base_response() -> plugin_pb2.CodeGeneratorResponse:
    return plugin_pb2.CodeGeneratorResponse(
        supported_features=SUPPORTED_FEATURES,
        minimum_edition=MINIMUM_EDITION,
        maximum_edition=MAXIMUM_EDITION,
    )


def error_response(message: str) -> plugin_pb2.CodeGeneratorResponse:
    response = base_response()
    response.error = message
    return response


def files_response(files: Iterable[RenderedFile]) -> plugin_pb2.CodeGeneratorResponse:
    """A response with the files sorted by name, each checked to be valid, unique Python."""
    response = base_response()
    seen: set[str] = set()
    for file in sorted(files, key=lambda f: f.name):
        _check(file, seen)
        response.file.add(name=file.name, content=file.content)
    return response


def _check(file: RenderedFile, seen: set[str]) -> None:
    name = file.name
    if name in seen:
        raise OutputCheckError(f"two outputs named {name!r}")
    if name.startswith("/") or "\\" in name or ".." in name.split("/"):
        raise OutputCheckError(f"output name {name!r} is not a relative, '/'-separated path")
    seen.add(name)
    try:
        compile(file.content, name, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise OutputCheckError(f"{name} is not valid Python: {error}") from error
