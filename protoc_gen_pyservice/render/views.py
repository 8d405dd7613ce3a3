"""What each template receives: the model's nodes with every Python name already resolved.

A view is built against an ImportTracker, so the imports of a module are exactly the names its
view asked for. Templates print views; they call nothing back. Three names are fixed, and the
service, client and validate templates print them as they are: `runtime`, `grpc` and
`validation` (the `runtime`, `grpc` and `validation` fields ask for their imports and always
hold those names).
"""

from typing import NamedTuple

from protoc_gen_pyservice.model import examples, naming
from protoc_gen_pyservice.model.examples import Case, RequestExamples, ServiceTesting, TestingPlan
from protoc_gen_pyservice.model.nodes import Doc, File, Method, Service
from protoc_gen_pyservice.model.plan import Embedded, Literal, MessagePlan, ValidationPlan
from protoc_gen_pyservice.render import cel, filters, layout, protovalidate
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
    protovalidate: tuple[str, ...] = ()  # statements of the compiled protovalidate rules


class ValidateModuleView(NamedTuple):
    plan: ValidationPlan
    messages: tuple[MessageCheckView, ...]
    # Validators of other modules called directly: (module, function) -> local expression.
    callees: dict[tuple[str, str], str]
    runtime: str
    validation: str
    cel_patterns: tuple[tuple[str, str], ...] = ()  # (name, pattern)
    cel_sets: tuple[tuple[str, tuple[Literal, ...]], ...] = ()  # (name, members)


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
    callees = {
        (embedded.module, embedded.function): names.function(embedded.module, embedded.function)
        for embedded in _direct_calls(plan)
    }

    def embedded_call(callee: Embedded, source: str, prefix: str) -> str:
        if callee.dispatch:
            return f"validation.validate_into({source}, {prefix}, out)"
        return f"{callees[(callee.module, callee.function)]}({source}, {prefix}, out)"

    constants = cel.ModuleConstants()
    writer = protovalidate.BlockWriter(constants, embedded_call)
    messages = []
    for message in plan.messages:
        lines: tuple[str, ...] = ()
        if message.protovalidate is not None:
            embedded = dict(message.protovalidate_embedded)
            written = writer.message(message.protovalidate, embedded.get)
            lines = tuple(protovalidate.laid_out(written, 4))
        messages.append(
            MessageCheckView(
                plan=message,
                annotation=names.annotation(message.ref),
                doc=Doc((f"Append what breaks the rules of {message.ref.proto_name} to `out`.",)),
                protovalidate=lines,
            )
        )
    if any("cel." in line for view in messages for line in view.protovalidate):
        names.third_party("protoc_gen_pyservice.runtime", "cel")
    return ValidateModuleView(
        plan=plan,
        messages=tuple(messages),
        callees=callees,
        runtime=names.third_party("protoc_gen_pyservice", "runtime"),
        validation=names.third_party("protoc_gen_pyservice.runtime", "validation"),
        cel_patterns=tuple((name, text) for text, name in constants.patterns.items()),
        cel_sets=tuple(constants.set_members()),
    )


def _direct_calls(plan: ValidationPlan) -> list[Embedded]:
    found = []
    for message in plan.messages:
        found += [
            embedded for _, embedded in message.protovalidate_embedded if not embedded.dispatch
        ]
        for field in message.fields:
            for value in (field.value, field.key):
                if value is not None and value.embedded and not value.embedded.dispatch:
                    found.append(value.embedded)
    return found


# The testing module (x_testing.py): in-process servers, example requests, invalid cases.


class ServiceTestingView(NamedTuple):
    names: ServiceTesting
    base_class: str  # user_service.UserServiceBase
    client_class: str  # user_client.UserServiceClient
    doc: Doc
    fixture_doc: Doc
    serve_call: layout.Call  # runtime.testing.serve(add_..._to_server, servicer, Client, settings)
    fixture_call: layout.Call


class CaseView(NamedTuple):
    case: Case
    statements: tuple[layout.Statement, ...]


class RequestView(NamedTuple):
    examples: RequestExamples
    annotation: str  # the request type, or Any where no annotation can name it
    valid: layout.Expression
    doc: Doc
    cases: tuple[CaseView, ...]
    cases_value: layout.Expression  # runtime.testing.cases(Request, InvalidCase(...), ...)


class TestingModuleView(NamedTuple):
    services: tuple[ServiceTestingView, ...]
    requests: tuple[RequestView, ...]
    skipped: tuple[layout.Expression, ...]  # the items of SKIPPED_CASES
    context_manager: str  # contextlib.AbstractAsyncContextManager
    callable: str
    any: str
    serve: str  # the runtime.serve module
    testing: str  # the runtime.testing module
    runtime: str


# Field names a message constructor cannot take as keywords, even unpacked from a dict:
# protobuf's pure-Python constructor is `__init__(self, **kwargs)`.
_NOT_KEYWORDS = frozenset({"self"})


class _ValueCode:
    """Example values and changes as expressions and statements, names resolved."""

    def __init__(self, names: ImportTracker, testing: str) -> None:
        self._names = names
        self._testing = testing

    def value(self, value: examples.Value) -> layout.Expression:
        if isinstance(value, examples.Scalar):
            return layout.Value(value.value)
        if isinstance(value, examples.EnumConstant):
            if value.name is None:
                return layout.Call(
                    f"{self._testing}.enum_number", (("", layout.Value(value.number)),)
                )
            enum_type = self._names.type(value.enum)
            return layout.Name(filters.field_access(enum_type, value.name))
        if isinstance(value, examples.MessageValue):
            return self.message(value)
        if isinstance(value, examples.ListValue):
            return layout.ListOf(tuple(self.value(item) for item in value.items))
        if isinstance(value, examples.MapValue):
            return layout.DictOf(
                tuple((self.value(key), self.value(item)) for key, item in value.entries)
            )
        if isinstance(value, examples.TimestampFromNow):
            return layout.Call(
                f"{self._testing}.timestamp_from_now", (("", layout.Value(value.seconds)),)
            )
        return layout.Call(
            f"{self._testing}.example",
            tuple(("", layout.Value(text)) for text in (value.field, value.rule, value.detail)),
        )

    def message(self, value: examples.MessageValue) -> layout.Call:
        arguments: list[tuple[str, layout.Expression]] = [
            (field.name, self.value(field.value))
            for field in value.fields
            if not naming.is_keyword(field.name) and field.name not in _NOT_KEYWORDS
        ]
        # Fields named like keywords can only be passed unpacked from a dict.
        keywords = tuple(
            (layout.Value(field.name), self.value(field.value))
            for field in value.fields
            if naming.is_keyword(field.name) and field.name not in _NOT_KEYWORDS
        )
        if keywords:
            unpacked = _call_of(f"{self._testing}.keyword_fields", layout.DictOf(keywords))
            arguments.append(("**", unpacked))
        built = layout.Call(self._names.type(value.ref), tuple(arguments))
        # Nor unpacked: set on the message once it is built.
        later = tuple(
            (layout.Value(field.name), self.value(field.value))
            for field in value.fields
            if field.name in _NOT_KEYWORDS
        )
        if later:
            return _call_of(f"{self._testing}.with_fields", built, layout.DictOf(later))
        return built

    def change(self, change: examples.Change) -> tuple[layout.Statement, ...]:
        owner = "request"
        for step in change.container:
            owner = filters.field_access(owner, step.field)
            if step.item is not None:
                owner = f"{owner}[{filters.pyrepr(step.item.value)}]"
        target = filters.field_access(owner, change.field)
        kind = change.kind
        if kind is examples.ChangeKind.CLEAR:
            return (_call(f"{owner}.ClearField", layout.Value(change.field)),)
        assert change.value is not None
        if kind is examples.ChangeKind.ITEMS:
            assert isinstance(change.value, examples.ListValue)
            statements = [layout.Statement(f"{target}[:]", None, delete=True)]
            if change.value.items:
                statements.append(_call(f"{target}.extend", self.value(change.value)))
            return tuple(statements)
        if kind is examples.ChangeKind.ENTRIES:
            assert isinstance(change.value, examples.MapValue)
            statements = [_call(f"{target}.clear")]
            entries = change.value.entries
            if entries and isinstance(entries[0][1], examples.MessageValue):
                # Message values cannot be assigned: each is copied into its entry.
                statements += [
                    _call(f"{target}[{filters.pyrepr(_key(key))}].CopyFrom", self.value(item))
                    for key, item in entries
                ]
            elif entries:
                statements.append(_call(f"{target}.update", self.value(change.value)))
            return tuple(statements)
        value = self.value(change.value)
        if isinstance(change.value, examples.MessageValue | examples.TimestampFromNow):
            return (_call(f"{target}.CopyFrom", value),)
        if naming.is_keyword(change.field):
            return (_call("setattr", layout.Name(owner), layout.Value(change.field), value),)
        return (layout.Statement(target, value),)


def testing_module(file: File, plan: TestingPlan, names: ImportTracker) -> TestingModuleView:
    testing = names.third_party("protoc_gen_pyservice.runtime", "testing")
    builder = _ValueCode(names, testing)
    services = tuple(_service_testing(file, service, names, testing) for service in plan.services)
    requests = tuple(_request_view(request, names, builder, testing) for request in plan.requests)
    skipped = tuple(
        layout.Call(
            f"{testing}.SkippedCase",
            tuple(
                ("", layout.Value(text))
                for text in (request.ref.proto_name, skip.field_path, skip.rule_id, skip.reason)
            ),
        )
        for request in plan.requests
        for skip in request.skipped
    )
    return TestingModuleView(
        services=services,
        requests=requests,
        skipped=skipped,
        context_manager=names.stdlib("contextlib", "AbstractAsyncContextManager"),
        callable=names.stdlib("collections.abc", "Callable"),
        any=names.stdlib("typing", "Any"),
        serve=names.third_party("protoc_gen_pyservice.runtime", "serve"),
        testing=testing,
        runtime=names.third_party("protoc_gen_pyservice", "runtime"),
    )


def _service_testing(
    file: File, testing: ServiceTesting, names: ImportTracker, runtime_testing: str
) -> ServiceTestingView:
    service = testing.service
    service_module = naming.output_module(file.proto_path, "service")
    client_module = naming.output_module(file.proto_path, "client")
    client_class = names.function(client_module, service.client_class)
    register = names.function(service_module, service.register_function)
    return ServiceTestingView(
        names=testing,
        base_class=names.function(service_module, service.base_class),
        client_class=client_class,
        serve_call=layout.Call(
            f"{runtime_testing}.serve",
            tuple(
                ("", layout.Name(name)) for name in (register, "servicer", client_class, "settings")
            ),
        ),
        fixture_call=layout.Call(
            f"{runtime_testing}.client_fixture",
            tuple(
                ("", layout.Name(name)) for name in (testing.serve_function, "servicer", "settings")
            ),
        ),
        doc=Doc(
            (
                f"Serve `servicer` in process and yield the {service.client_class} connected"
                " to it.",
                "",
                "The server is built as in production, by serve.build_server from `settings`",
                "and so with the interceptors they configure, but listens on 127.0.0.1 at a",
                "port of its own. On exit the client closes and the server stops; a task the",
                "server started that is still running then fails the test.",
            )
        ),
        fixture_doc=Doc(
            (
                f"A pytest-asyncio fixture yielding the {service.client_class} of",
                f"{testing.serve_function}(servicer(), settings), for each test that asks for",
                "it. Assign it to a module-level name, which becomes the fixture's name:",
                f"`client = {testing.fixture_function}(MyService)`.",
            )
        ),
    )


def _request_view(
    request: RequestExamples, names: ImportTracker, builder: _ValueCode, testing: str
) -> RequestView:
    message_type = names.type(request.ref)
    cases = tuple(
        CaseView(case=case, statements=builder.change(case.change)) for case in request.cases
    )
    return RequestView(
        examples=request,
        annotation=names.annotation(request.ref),
        valid=builder.message(request.valid),
        doc=Doc((f"A {request.ref.proto_name} that passes every rule on it and inside it.",)),
        cases=cases,
        cases_value=layout.Call(
            f"{testing}.cases",
            (
                ("", layout.Name(message_type)),
                *(
                    (
                        "",
                        layout.Call(
                            f"{testing}.InvalidCase",
                            (
                                ("", layout.Value(case.name)),
                                ("", layout.Value(case.field_path)),
                                ("", layout.Value(case.rule_id)),
                                ("", layout.Name(case.function)),
                            ),
                        ),
                    )
                    for case in request.cases
                ),
            ),
        ),
    )


def _call(function: str, *arguments: layout.Expression) -> layout.Statement:
    return layout.Statement("", _call_of(function, *arguments))


def _call_of(function: str, *arguments: layout.Expression) -> layout.Call:
    return layout.Call(function, tuple(("", argument) for argument in arguments))


def _key(key: examples.Value) -> Literal:
    assert isinstance(key, examples.Scalar)
    return key.value
