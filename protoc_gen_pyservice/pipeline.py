"""The pure core: generate(request) -> response. No I/O here."""

import os
import sys
from collections.abc import Iterator, Sequence

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.model.build import ModelBuilder
from protoc_gen_pyservice.model.examples import ExamplesPlanner
from protoc_gen_pyservice.model.nodes import File
from protoc_gen_pyservice.model.validation import ValidationPlanner
from protoc_gen_pyservice.options import Options, parse_options
from protoc_gen_pyservice.render.outputs import (
    FilePlans,
    RenderedFile,
    render_file,
    testing_enabled,
)
from protoc_gen_pyservice.response import error_response, files_response

BUG_REPORT_HINT = (
    "please report this bug to protoc-gen-pyservice with the request "
    "(save it with PYSERVICE_DUMP_REQUEST=request.bin; set PYSERVICE_DEBUG=1 for a traceback)"
)


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Everything the plugin does, as one function of the request."""
    try:
        return _generate(request)
    except GenerationError as error:
        return error_response(str(error))
    except Exception as error:  # any bug must still become a response
        if os.environ.get("PYSERVICE_DEBUG"):
            import traceback  # only on this path: the plugin's start-up time is its cost

            traceback.print_exc(file=sys.stderr)
        # Checked only now, so valid requests do not pay for the walk: protobuf hands out
        # proto2 strings that are not UTF-8 as bytes, which breaks code far from the cause.
        bad_text = _find_non_utf8_string(request)
        if bad_text:
            return error_response(f"{bad_text}: is not valid UTF-8")
        return error_response(f"internal error: {type(error).__name__}: {error}; {BUG_REPORT_HINT}")


def _generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    options = parse_options(request.parameter)
    _check_request(request)
    to_generate = sorted(set(request.file_to_generate))
    rendered: list[RenderedFile] = []
    for model, plans in planned_files(request.proto_file, to_generate, options):
        rendered.extend(render_file(model, plans, options, request.parameter))
    return files_response(rendered)


def planned_files(
    files: Sequence[descriptor_pb2.FileDescriptorProto], names: Sequence[str], options: Options
) -> Iterator[tuple[File, FilePlans]]:
    """The model of each file named in `names` (all of `files` in dependency order, imports
    first) and what is planned for it: what the templates render, and `pyservice scaffold`
    writes against."""
    builder = ModelBuilder(files, options)
    planner = ValidationPlanner(builder.model, frozenset(names))
    examples = ExamplesPlanner(planner) if testing_enabled(options) else None
    for name in names:
        model = builder.model(name)
        testing = examples.plan(model) if examples is not None and model.services else None
        yield model, FilePlans(planner.plan(model), testing)


def _find_non_utf8_string(request: plugin_pb2.CodeGeneratorRequest) -> str | None:
    """Where in the request a string field holds bytes that are not UTF-8, if anywhere."""
    for index, file in enumerate(request.proto_file):
        found = _non_utf8_path(file)
        if found is not None:
            name = file.name if isinstance(file.name, str) else f"proto_file[{index}]"
            return f"{name}: {found}"
    found = _non_utf8_path(request)
    return f"request: {found}" if found is not None else None


def _non_utf8_path(message: Message) -> str | None:
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        for item in values:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                inner = _non_utf8_path(item)
                if inner is not None:
                    return f"{field.name}.{inner}"
            elif field.type == FieldDescriptor.TYPE_STRING and not isinstance(item, str):
                return field.name
    return None


def _check_request(request: plugin_pb2.CodeGeneratorRequest) -> None:
    """A request that parses but cannot be right: name the file that is missing or repeated."""
    seen: set[str] = set()
    for file in request.proto_file:
        if not file.name:
            raise GenerationError("request", "a proto_file has no name")
        if file.name in seen:
            raise GenerationError(file.name, "appears twice in proto_file")
        for dependency in file.dependency:
            if dependency not in seen:
                raise GenerationError(
                    file.name,
                    f"imports {dependency!r}, which is not before it in proto_file",
                )
        seen.add(file.name)
    for name in request.file_to_generate:
        if name not in seen:
            raise GenerationError(name, "is in file_to_generate but not in proto_file")
