"""The output kinds: which files each proto file yields, and what each template receives."""

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from protoc_gen_pyservice import __version__
from protoc_gen_pyservice.model import naming
from protoc_gen_pyservice.model.nodes import Doc, File, Kind, Method, Service
from protoc_gen_pyservice.model.plan import MessagePlan, ValidationPlan
from protoc_gen_pyservice.options import Options
from protoc_gen_pyservice.render.environment import environment
from protoc_gen_pyservice.render.imports import ModuleScope, import_block

# The runtime API generated code is written against; the runtime checks it at import.
RUNTIME_API = 1


class RenderedFile(NamedTuple):
    name: str
    content: str


class _OutputKind(NamedTuple):
    suffix: str
    template: str
    enabled: Callable[[Options], bool]
    applies: Callable[[File, ValidationPlan], bool]
    context: Callable[[File, ValidationPlan], dict[str, Any]]


def _methods(file: File) -> list[Method]:
    return [method for service in file.services for method in service.methods]


def _rpc_module_context(
    file: File, needs_async_iterator: Callable[[Method], bool], third_party: list[str]
) -> dict[str, Any]:
    """Scope and imports of an output built from the file's RPCs (service or client)."""
    methods = _methods(file)
    refs = [ref for m in methods for ref in (m.request, m.response)]
    scope = ModuleScope(ref.module for ref in refs)
    stdlib = []
    if any(needs_async_iterator(m) for m in methods):
        stdlib.append("from collections.abc import AsyncIterator")
    if scope.needs_any(refs):
        stdlib.append("from typing import Any")
    return {"scope": scope, "imports": import_block(stdlib, third_party, scope)}


def _service_context(file: File, validation: ValidationPlan) -> dict[str, Any]:
    # Servicer handlers take or return AsyncIterator for every streaming kind.
    return {
        **_rpc_module_context(
            file,
            lambda method: method.kind is not Kind.UNARY_UNARY,
            ["import grpc", "from protoc_gen_pyservice import runtime"],
        ),
        "module_doc": Doc((f"Async gRPC servicer base classes for {file.proto_path}.",)),
        "register_doc": _register_doc,
    }


def _register_doc(service: Service) -> Doc:
    return Doc(
        (
            f"Serve the RPCs of {service.full_name} from `servicer` on `server`.",
            "",
            "`errors` maps your domain exceptions to status codes; anything unmapped answers",
            "INTERNAL with a request id, and is logged in full.",
        )
    )


def _client_context(file: File, validation: ValidationPlan) -> dict[str, Any]:
    # Clients take request streams as runtime.RequestStream; only responses are AsyncIterator.
    return {
        **_rpc_module_context(
            file,
            lambda method: method.kind.server_streaming,
            # Unary responses catch grpc.aio.AioRpcError; streams leave that to the runtime.
            ["from protoc_gen_pyservice import runtime"]
            + (["import grpc"] if any(not m.kind.server_streaming for m in _methods(file)) else []),
        ),
        "module_doc": Doc((f"Typed async gRPC clients for {file.proto_path}.",)),
        "retryable": lambda service: tuple(m.name for m in service.methods if m.retryable),
    }


def _validate_context(file: File, plan: ValidationPlan) -> dict[str, Any]:
    refs = [message.ref for message in plan.messages]
    scope = ModuleScope([*(ref.module for ref in refs), *plan.imports], own_module=plan.module)
    third_party = [
        "from protoc_gen_pyservice import runtime",
        "from protoc_gen_pyservice.runtime import validation",
    ]
    return {
        "scope": scope,
        "imports": import_block(
            ["from typing import Any"] if scope.needs_any(refs) else [], third_party, scope
        ),
        "module_doc": Doc((f"Validators for the messages of {file.proto_path}.",)),
        "plan": plan,
        "doc_for": _validator_doc,
    }


def _validator_doc(message: MessagePlan) -> Doc:
    return Doc((f"Append the violations of a {message.ref.proto_name} to `out`.",))


OUTPUT_KINDS = (
    _OutputKind(
        suffix="service",
        template="service.py.j2",
        enabled=lambda options: options.service,
        applies=lambda file, plan: bool(file.services),
        context=_service_context,
    ),
    _OutputKind(
        suffix="client",
        template="client.py.j2",
        enabled=lambda options: options.client,
        applies=lambda file, plan: bool(file.services),
        context=_client_context,
    ),
    _OutputKind(
        suffix="validate",
        template="validate.py.j2",
        enabled=lambda options: options.validate,
        # A file with no rules anywhere in its messages needs no module: the runtime treats
        # its types as valid when their `_validate` module does not exist.
        applies=lambda file, plan: bool(plan.messages),
        context=_validate_context,
    ),
)


def render_file(
    file: File, validation: ValidationPlan, options: Options, parameter: str
) -> Iterator[RenderedFile]:
    """Every output the options ask for that applies to this proto file."""
    env = environment()
    for kind in OUTPUT_KINDS:
        if not (kind.enabled(options) and kind.applies(file, validation)):
            continue
        template = env.get_template(kind.template)
        content = template.render(
            file=file,
            options=options,
            version=__version__,
            parameter=parameter,
            runtime_api=RUNTIME_API,
            **kind.context(file, validation),
        )
        yield RenderedFile(name=naming.output_path(file.proto_path, kind.suffix), content=content)
