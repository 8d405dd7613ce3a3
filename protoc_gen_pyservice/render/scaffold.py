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


class ImplementationView(NamedTuple):
    service: views.ServiceView
    class_name: str
    base: str  # the generated base class as this module names it: user_service.UserServiceBase
    class_var: str
    unimplemented_attribute: str


class RpcTestView(NamedTuple):
    method: Method
    test: str  # the test function's name: test_get_user
    negative_test: str  # "" when the RPC does not validate its requests
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
    file: File, service: Service, testing: TestingPlan, implementation_module_name: str
) -> Rendered:
    """The pytest module of `service`'s implementation, written against the fixture, valid
    requests and invalid cases `testing` plans for the file's generated `_testing` module."""
    testing_module = naming.output_module(file.proto_path, "testing")
    client_module = naming.output_module(file.proto_path, "client")
    class_name = implementation_class(service)
    (fixture,) = (
        s.fixture_function for s in testing.services if s.service.full_name == service.full_name
    )
    examples = {request.ref.proto_name: request for request in testing.requests}

    def build(names: ImportTracker) -> TestModuleView:
        testing_support = _module(names, testing_module)
        rpcs = tuple(
            _rpc_test(method, examples[method.request.proto_name], testing_support, names)
            for method in service.methods
        )
        streams = any(method.kind.server_streaming for method in service.methods)
        return TestModuleView(
            service=service,
            rpcs=rpcs,
            client=f"{_module(names, client_module)}.{service.client_class}",
            client_fixture=f"{testing_support}.{fixture}",
            implementation=class_name,
            first_party=(f"from {implementation_module_name} import {class_name}",),
            runtime=names.third_party("protoc_gen_pyservice", "runtime"),
            testing=names.third_party("protoc_gen_pyservice.runtime", "testing"),
            pytest=names.third_party("pytest"),
            async_generator=names.stdlib("collections.abc", "AsyncGenerator") if streams else "",
        )

    view, imports = resolved(build)
    text = _render(
        "scaffold_tests.py.j2",
        view,
        imports,
        f"Tests of {class_name}, the implementation of {service.full_name}.",
        "adds the tests of each RPC the proto gains and changes nothing else. A test that calls "
        "an RPC skips while its handler is a stub.",
    )
    return Rendered(
        text,
        tuple(
            Group(rpc.method.name, tuple(name for name in (rpc.test, rpc.negative_test) if name))
            for rpc in view.rpcs
        ),
    )


def _rpc_test(
    method: Method, examples: RequestExamples, testing_support: str, names: ImportTracker
) -> RpcTestView:
    test = f"test_{naming.snake_case(method.name)}"

    def arguments(request: str) -> tuple[str, ...]:
        sent = f"iter([{request}])" if method.kind.client_streaming else request
        if method.kind.server_streaming:
            return (sent, f"timeout={STREAM_DEADLINE}")
        return (sent,)

    return RpcTestView(
        method=method,
        test=test,
        negative_test=f"{test}_rejects_invalid_requests" if method.validate_request else "",
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
