"""The output kinds: which files each proto file yields, and what each template receives."""

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from protoc_gen_pyservice import __version__
from protoc_gen_pyservice.model import naming
from protoc_gen_pyservice.model.examples import TestingPlan
from protoc_gen_pyservice.model.nodes import Doc, File
from protoc_gen_pyservice.model.plan import ValidationPlan
from protoc_gen_pyservice.options import Options
from protoc_gen_pyservice.render import views
from protoc_gen_pyservice.render.environment import environment
from protoc_gen_pyservice.render.imports import resolved

# The runtime API generated code is written against; the runtime checks it at import.
RUNTIME_API = 1


class RenderedFile(NamedTuple):
    name: str
    content: str


class FilePlans(NamedTuple):
    """What the model planned for one proto file, beside the file itself."""

    validation: ValidationPlan
    testing: TestingPlan | None  # None where no testing module is written


class _OutputKind(NamedTuple):
    suffix: str
    template: str
    enabled: Callable[[Options], bool]
    applies: Callable[[File, FilePlans], bool]
    context: Callable[[File, FilePlans], dict[str, Any]]


def testing_enabled(options: Options) -> bool:
    """Whether files with services get a testing module: it needs their service and client."""
    return options.testing and options.service and options.client


def _service_context(file: File, plans: FilePlans) -> dict[str, Any]:
    view, imports = resolved(lambda names: views.rpc_module(file, names, servicer=True))
    return {
        "view": view,
        "imports": imports,
        "module_doc": Doc((f"Async gRPC servicer base classes for {file.proto_path}.",)),
    }


def _client_context(file: File, plans: FilePlans) -> dict[str, Any]:
    view, imports = resolved(lambda names: views.rpc_module(file, names, servicer=False))
    return {
        "view": view,
        "imports": imports,
        "module_doc": Doc((f"Typed async gRPC clients for {file.proto_path}.",)),
    }


def _validate_context(file: File, plans: FilePlans) -> dict[str, Any]:
    plan = plans.validation
    view, imports = resolved(lambda names: views.validate_module(plan, names), plan.module)
    return {
        "view": view,
        "imports": imports,
        "module_doc": Doc((f"Validators for the messages of {file.proto_path}.",)),
    }


def _testing_context(file: File, plans: FilePlans) -> dict[str, Any]:
    plan = plans.testing
    assert plan is not None
    module = naming.output_module(file.proto_path, "testing")
    view, imports = resolved(lambda names: views.testing_module(file, plan, names), module)
    return {
        "view": view,
        "imports": imports,
        "module_doc": Doc(
            (
                f"Test support for {file.proto_path}: its services in process, and requests",
                "that pass every rule or break exactly one.",
                "",
                "valid_<request>() builds a request that passes every rule; INVALID_<REQUEST>",
                "lists a case per rule that builds one breaking only that rule, with the field",
                "path and rule id its violation reports. SKIPPED_CASES lists the rules no",
                "request can break alone, and why.",
            )
        ),
    }


OUTPUT_KINDS = (
    _OutputKind(
        suffix="service",
        template="service.py.j2",
        enabled=lambda options: options.service,
        applies=lambda file, plans: bool(file.services),
        context=_service_context,
    ),
    _OutputKind(
        suffix="client",
        template="client.py.j2",
        enabled=lambda options: options.client,
        applies=lambda file, plans: bool(file.services),
        context=_client_context,
    ),
    _OutputKind(
        suffix="validate",
        template="validate.py.j2",
        enabled=lambda options: options.validate,
        # A file with no rules anywhere in its messages needs no module: the runtime treats
        # its types as valid when their `_validate` module does not exist.
        applies=lambda file, plans: bool(plans.validation.messages),
        context=_validate_context,
    ),
    _OutputKind(
        suffix="testing",
        template="testing.py.j2",
        enabled=testing_enabled,
        applies=lambda file, plans: plans.testing is not None and bool(file.services),
        context=_testing_context,
    ),
)


def render_file(
    file: File, plans: FilePlans, options: Options, parameter: str
) -> Iterator[RenderedFile]:
    """Every output the options ask for that applies to this proto file."""
    env = environment()
    for kind in OUTPUT_KINDS:
        if not (kind.enabled(options) and kind.applies(file, plans)):
            continue
        template = env.get_template(kind.template)
        content = template.render(
            file=file,
            options=options,
            version=__version__,
            parameter=parameter,
            runtime_api=RUNTIME_API,
            **kind.context(file, plans),
        )
        yield RenderedFile(name=naming.output_path(file.proto_path, kind.suffix), content=content)
