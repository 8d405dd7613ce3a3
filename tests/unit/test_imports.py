from protoc_gen_pyservice.model.nodes import TypeRef
from protoc_gen_pyservice.render.imports import ModuleScope, import_block


def ref(module: str, name: str = "M") -> TypeRef:
    return TypeRef(proto_name=name, module=module, qualname=name)


def test_short_aliases_when_unique() -> None:
    scope = ModuleScope(["user.v1.user_pb2", "google.protobuf.empty_pb2"])
    assert scope.local(ref("user.v1.user_pb2", "User")) == "user_pb2.User"
    assert scope.import_lines() == [
        "import google.protobuf.empty_pb2 as empty_pb2",
        "import user.v1.user_pb2 as user_pb2",
    ]


def test_clashing_basenames_use_the_whole_path() -> None:
    scope = ModuleScope(["alpha.common_pb2", "beta.common_pb2", "top_pb2"])
    assert scope.aliases == {
        "alpha.common_pb2": "alpha_common_pb2",
        "beta.common_pb2": "beta_common_pb2",
        "top_pb2": "top_pb2",
    }
    assert "import top_pb2" in scope.import_lines()


def test_remaining_clash_gets_underscores() -> None:
    scope = ModuleScope(["a.b_c.x_pb2", "a_b.c.x_pb2"])
    assert sorted(scope.aliases.values()) == ["a_b_c_x_pb2", "a_b_c_x_pb2_"]


def test_import_block_is_isort_ordered() -> None:
    block = import_block(
        ["from collections.abc import AsyncIterator"],
        ["from protoc_gen_pyservice import runtime", "import grpc"],
        ModuleScope(["Zeta.z_pb2", "alpha.a_pb2"]),
    )
    assert block.third_party == (
        "import alpha.a_pb2 as a_pb2",
        "import grpc",
        "import Zeta.z_pb2 as z_pb2",
        "from protoc_gen_pyservice import runtime",
    )
