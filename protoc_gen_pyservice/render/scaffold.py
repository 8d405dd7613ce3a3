"""What `pyservice scaffold` renders for one service: the user-owned implementation module and
its pytest module, fresh, as they would be written into an empty project.

They print the same views and the same handler macro as the generated base class, so a stub's
signature is the base class's. Updating a module the user already has is cli/merge.py's job;
it reads what to add from these renderings and from `Rendered.groups`.
"""

from typing import NamedTuple

from protoc_gen_pyservice.model import naming
from protoc_gen_pyservice.model.examples import RequestExamples, TestingPlan
from protoc_gen_pyservice.model.nodes import Doc, File, Method, Service
from protoc_gen_pyservice.render import views
from protoc_gen_pyservice.render.environment import environment
from protoc_gen_pyservice.render.imports import ImportBlock, ImportTracker, resolved

# The class attribute listing the RPCs (proto names) a class leaves unimplemented on purpose:
# scaffold adds no stub for them and `pyservice check` does not ask for them.
UNIMPLEMENTED_ATTRIBUTE = "UNIMPLEMENTED_RPCS"
# The deadline, in seconds, of the calls scaffolded tests make on response streams: a stream
# that sends nothing fails its test rather than hanging it.
STREAM_DEADLINE = 5


class Group(NamedTuple):
    """The top-level names (methods of the class, or test functions) written for one RPC."""

    rpc: str  # proto name: GetUser
    names: tuple[str, ...]


class Rendered(NamedTuple):
    text: str
    groups: tuple[Group, ...]  # in proto order


class RpcCall(NamedTuple):
    """How the scaffolded tests of one RPC call it, for telling a test module's calls that
    no longer fit the proto."""

    rpc: str  # proto name
    client_name: str  # the client's method: get_user
    client_streaming: bool
    server_streaming: bool
    builder: str  # the testing module's valid-request builder: valid_get_user_request
    cases: str  # and its invalid cases: INVALID_GET_USER_REQUEST


class SupportModule(NamedTuple):
    """What a test module may use of the generated testing module, and how it calls the RPCs."""

    testing_module: str  # user.v1.user_testing
    defined: frozenset[str]  # the valid_* builders and INVALID_* cases it defines
    rpcs: tuple[RpcCall, ...]  # every RPC of the service, listed ones too


class RenderedTests(NamedTuple):
    text: str
    groups: tuple[Group, ...]  # in proto order, without the RPCs left unimplemented
    support: SupportModule


class ImplementationView(NamedTuple):
    service: views.ServiceView
    class_name: str
    base: str  # the generated base class as this module names it: user_service.UserServiceBase
    class_var: str
    unimplemented_attribute: str


class RpcTestView(NamedTuple):
    method: Method
    test: str  # the test function's name: test_get_user
    negative_test: str  # "" when the RPC does not validate its requests or no rule can break
    request: str  # the request type, as an annotation
    response: str  # the response type, as an expression
    invalid_cases: str  # user_testing.INVALID_GET_USER_REQUEST
    # The call's arguments with a valid request, and with an invalid case's: a stream of one
    # request for client streams; a deadline for response streams, so that a stream which
    # sends nothing fails the test rather than hanging it.
    valid_arguments: tuple[str, ...]
    invalid_arguments: tuple[str, ...]


class TestModuleView(NamedTuple):
    service: Service
    rpcs: tuple[RpcTestView, ...]
    client: str  # the client class, as an annotation
    client_fixture: str  # user_testing.user_service_client_fixture
    implementation: str  # the implementation class, imported by `first_party`
    first_party: tuple[str, ...]
    runtime: str
    testing: str  # protoc_gen_pyservice.runtime.testing
    pytest: str
    async_generator: str  # where streamed responses are closed


def implementation_class(service: Service) -> str:
    """The name of the user's class: the service's own name (its base is `<name>Base`)."""
    return naming.class_name(service.name)


def implementation_module(file: File, service: Service) -> Rendered:
    """The implementation module of `service`: a class deriving from the generated base class,
    one stub per RPC."""
    own_file = file._replace(services=(service,))
    base_module = naming.output_module(file.proto_path, "service")

    def build(names: ImportTracker) -> ImplementationView:
        (service_view,) = views.rpc_module(own_file, names, servicer=True).services
        return ImplementationView(
            service=service_view,
            class_name=implementation_class(service),
            base=f"{_module(names, base_module)}.{service.base_class}",
            class_var=names.stdlib("typing", "ClassVar"),
            unimplemented_attribute=UNIMPLEMENTED_ATTRIBUTE,
        )

    view, imports = resolved(build)
    text = _render(
        "scaffold_implementation.py.j2",
        view,
        imports,
        f"{view.class_name}: the implementation of {service.full_name} ({file.proto_path}).",
        "adds a stub for each RPC the proto gains and changes nothing else; `pyservice check` "
        "fails while an RPC has no method here.",
    )
    return Rendered(text, tuple(Group(m.name, (m.servicer_name,)) for m in service.methods))


def test_module(
    file: File,
    service: Service,
    testing: TestingPlan,
    implementation_module_name: str,
    unimplemented: frozenset[str] = frozenset(),
) -> RenderedTests:
    """The pytest module of `service`'s implementation, written against the fixture, valid
    requests and invalid cases `testing` plans for the file's generated `_testing` module.
    RPCs in `unimplemented` (proto names the class lists in UNIMPLEMENTED_RPCS) get no tests."""
    testing_module = naming.output_module(file.proto_path, "testing")
    client_module = naming.output_module(file.proto_path, "client")
    class_name = implementation_class(service)
    (fixture,) = (
        s.fixture_function for s in testing.services if s.service.full_name == service.full_name
    )
    examples = {request.ref.proto_name: request for request in testing.requests}
    tested = [method for method in service.methods if method.name not in unimplemented]
    test_names = _test_names(service.methods, examples)

    def build(names: ImportTracker, implementation: str) -> TestModuleView:
        testing_support = _module(names, testing_module)
        rpcs = tuple(
            _rpc_test(
                method,
                examples[method.request.proto_name],
                testing_support,
                names,
                test_names[method.name],
            )
            for method in tested
        )
        streams = any(method.kind.server_streaming for method in tested)
        imported = "" if implementation == class_name else f" as {implementation}"
        return TestModuleView(
            service=service,
            rpcs=rpcs,
            client=f"{_module(names, client_module)}.{service.client_class}",
            client_fixture=f"{testing_support}.{fixture}",
            implementation=implementation,
            first_party=(f"from {implementation_module_name} import {class_name}{imported}",),
            runtime=names.third_party("protoc_gen_pyservice", "runtime"),
            testing=names.third_party("protoc_gen_pyservice.runtime", "testing"),
            pytest=names.third_party("pytest"),
            async_generator=names.stdlib("collections.abc", "AsyncGenerator") if streams else "",
        )

    learned, learned_imports = resolved(lambda names: build(names, class_name))
    # The class is imported by the same rule as every other name: a clash with a name the
    # module imports or defines gets underscores appended.
    taken = _bound_names(learned_imports) | {"client"}
    taken |= {name for rpc in learned.rpcs for name in (rpc.test, rpc.negative_test)}
    local_class = naming.unique(class_name, taken)
    view, imports = resolved(lambda names: build(names, local_class))
    text = _render(
        "scaffold_tests.py.j2",
        view,
        imports,
        f"Tests of {class_name}, the implementation of {service.full_name}.",
        "adds the tests of each RPC the proto gains and changes nothing else. A test that calls "
        "an RPC skips while its handler is a stub.",
    )
    support = SupportModule(
        testing_module=testing_module,
        defined=frozenset(
            name for request in testing.requests for name in (request.builder, request.cases_name)
        ),
        rpcs=tuple(
            RpcCall(
                rpc=method.name,
                client_name=method.client_name,
                client_streaming=method.kind.client_streaming,
                server_streaming=method.kind.server_streaming,
                builder=examples[method.request.proto_name].builder,
                cases=examples[method.request.proto_name].cases_name,
            )
            for method in service.methods
        ),
    )
    groups = tuple(
        Group(rpc.method.name, tuple(name for name in (rpc.test, rpc.negative_test) if name))
        for rpc in view.rpcs
    )
    return RenderedTests(text, groups, support)


def _test_names(
    methods: tuple[Method, ...], examples: dict[str, RequestExamples]
) -> dict[str, tuple[str, str]]:
    """The positive and negative test names of each RPC (proto name), "" where it has no
    negative test: from the handler's name, unique across the module. Every RPC takes part,
    listed ones too, and positive names are taken first, so that a name depends only on the
    proto and a rerun finds the tests it wrote."""
    taken: set[str] = set()
    positive = {m.name: naming.unique(f"test_{m.servicer_name}", taken) for m in methods}
    return {
        m.name: (
            positive[m.name],
            naming.unique(f"{positive[m.name]}_rejects_invalid_requests", taken)
            if m.validate_request and examples[m.request.proto_name].cases
            else "",
        )
        for m in methods
    }


def _bound_names(imports: ImportBlock) -> set[str]:
    """The local names an import block binds."""
    names: set[str] = set()
    for statement in (*imports.stdlib, *imports.third_party):
        if statement.startswith("import "):
            for part in statement.removeprefix("import ").split(","):
                module, _, alias = part.strip().partition(" as ")
                names.add(alias or module.split(".")[0])
            continue
        imported = statement.partition(" import ")[2].strip("()\n ")
        for member in imported.split(","):
            if member.strip():
                names.add(member.split(" as ")[-1].strip())
    return names


def _rpc_test(
    method: Method,
    examples: RequestExamples,
    testing_support: str,
    names: ImportTracker,
    test_names: tuple[str, str],
) -> RpcTestView:
    def arguments(request: str) -> tuple[str, ...]:
        sent = f"iter([{request}])" if method.kind.client_streaming else request
        if method.kind.server_streaming:
            return (sent, f"timeout={STREAM_DEADLINE}")
        return (sent,)

    test, negative_test = test_names
    return RpcTestView(
        method=method,
        test=test,
        negative_test=negative_test,
        request=names.annotation(method.request),
        response=names.type(method.response),
        invalid_cases=f"{testing_support}.{examples.cases_name}",
        valid_arguments=arguments(f"{testing_support}.{examples.builder}()"),
        invalid_arguments=arguments("case.build()"),
    )


def _module(names: ImportTracker, module: str) -> str:
    """A generated module, imported as `from package import module`; its local name."""
    package, _, name = module.rpartition(".")
    return names.third_party(package, name) if package else names.third_party(name)


def _render(
    template: str, view: object, imports: ImportBlock, summary: str, what_scaffold_does: str
) -> str:
    """A user-owned module; its docstring says what it is and what scaffold does to it."""
    module_doc = Doc((summary, "", f"Yours to edit. `pyservice scaffold` {what_scaffold_does}"))
    loaded = environment().get_template(template)
    return loaded.render(view=view, imports=imports, module_doc=module_doc)
