"""What each template receives: the model's nodes with every Python name already resolved.

A view is built against an ImportTracker, so the imports of a module are exactly the names its
view asked for. Templates print views; they call nothing back.
"""

from typing import NamedTuple

from protoc_gen_pyservice.model.nodes import Doc, File, Method, Service
from protoc_gen_pyservice.model.plan import Embedded, MessagePlan, ValidationPlan
from protoc_gen_pyservice.render.imports import ImportTracker


class MethodView(NamedTuple):
    method: Method
    request: str  # the request type as an expression: user_pb2.GetUserRequest
    response: str
    request_annotation: str  # the same, or `Any` where no annotation can name it
    response_annotation: str
    async_iterator: str  # the local name of collections.abc.AsyncIterator, where streams need it
    grpc: str  # the local name of the grpc module, where the method needs it


class ServiceView(NamedTuple):
    service: Service
    methods: tuple[MethodView, ...]
    register_doc: Doc
    retryable: tuple[str, ...]  # proto names of the methods clients may retry


class RpcModuleView(NamedTuple):
    """A service or client module: every service of one proto file."""

    services: tuple[ServiceView, ...]
    runtime: str


class MessageCheckView(NamedTuple):
    plan: MessagePlan
    annotation: str
    doc: Doc


class ValidateModuleView(NamedTuple):
    plan: ValidationPlan
    messages: tuple[MessageCheckView, ...]
    # Validators of other modules called directly: (module, function) -> local expression.
    callees: dict[tuple[str, str], str]
    runtime: str
    validation: str


def _method(method: Method, names: ImportTracker, *, servicer: bool) -> MethodView:
    streams = method.kind.client_streaming or method.kind.server_streaming
    # Servicers take or return AsyncIterator for every streaming kind; clients take request
    # streams as runtime.RequestStream, and only responses are AsyncIterator.
    needs_iterator = streams if servicer else method.kind.server_streaming
    # Servicer contexts are typed with grpc; clients catch grpc's error for unary responses.
    needs_grpc = servicer or not method.kind.server_streaming
    return MethodView(
        method=method,
        request=names.type(method.request),
        response=names.type(method.response),
        request_annotation=names.annotation(method.request),
        response_annotation=names.annotation(method.response),
        async_iterator=(names.stdlib("collections.abc", "AsyncIterator") if needs_iterator else ""),
        grpc=names.third_party("grpc") if needs_grpc else "",
    )


def _register_doc(service: Service) -> Doc:
    return Doc(
        (
            f"Serve the RPCs of {service.full_name} from `servicer` on `server`.",
            "",
            "`errors` maps your domain exceptions to status codes; anything unmapped answers",
            "INTERNAL with a request id, and is logged in full.",
        )
    )


def rpc_module(file: File, names: ImportTracker, *, servicer: bool) -> RpcModuleView:
    """The view of a file's service module (`servicer`) or client module."""
    if servicer:
        names.third_party("grpc")  # add_*_to_server takes a grpc.aio.Server
    return RpcModuleView(
        services=tuple(
            ServiceView(
                service=service,
                methods=tuple(_method(m, names, servicer=servicer) for m in service.methods),
                register_doc=_register_doc(service),
                retryable=tuple(m.name for m in service.methods if m.retryable),
            )
            for service in file.services
        ),
        runtime=names.third_party("protoc_gen_pyservice", "runtime"),
    )


def validate_module(plan: ValidationPlan, names: ImportTracker) -> ValidateModuleView:
    return ValidateModuleView(
        plan=plan,
        messages=tuple(
            MessageCheckView(
                plan=message,
                annotation=names.annotation(message.ref),
                doc=Doc((f"Append what breaks the rules of {message.ref.proto_name} to `out`.",)),
            )
            for message in plan.messages
        ),
        callees={
            (embedded.module, embedded.function): names.function(embedded.module, embedded.function)
            for embedded in _direct_calls(plan)
        },
        runtime=names.third_party("protoc_gen_pyservice", "runtime"),
        validation=names.third_party("protoc_gen_pyservice.runtime", "validation"),
    )


def _direct_calls(plan: ValidationPlan) -> list[Embedded]:
    found = []
    for message in plan.messages:
        for field in message.fields:
            for value in (field.value, field.key):
                if value is not None and value.embedded and not value.embedded.dispatch:
                    found.append(value.embedded)
    return found
