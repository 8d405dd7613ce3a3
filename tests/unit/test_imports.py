from protoc_gen_pyservice.model.nodes import TypeRef
from protoc_gen_pyservice.render.imports import ModuleScope, import_block


def ref(module: str, name: str = "M") -> TypeRef:
    return TypeRef(proto_name=name, module=module, qualname=name)


def test_short_aliases_when_unique() -> None:
    scope = ModuleScope(["user.v1.user_pb2", "google.protobuf.empty_pb2"])
    assert scope.local(ref("user.v1.user_pb2", "User")) == "user_pb2.User"
    assert scope.import_lines() == [
        "from google.protobuf import empty_pb2",
        "from user.v1 import user_pb2",
    ]


def test_clashing_basenames_use_the_whole_path() -> None:
    scope = ModuleScope(["alpha.common_pb2", "beta.common_pb2", "top_pb2"])
    assert scope.aliases == {
        "alpha.common_pb2": "alpha_common_pb2",
        "beta.common_pb2": "beta_common_pb2",
        "top_pb2": "top_pb2",
    }
    assert scope.import_lines() == [
        "from alpha import common_pb2 as alpha_common_pb2",
        "from beta import common_pb2 as beta_common_pb2",
        "import top_pb2",
    ]


def test_remaining_clash_gets_underscores() -> None:
    scope = ModuleScope(["a.b_c.x_pb2", "a_b.c.x_pb2"])
    assert sorted(scope.aliases.values()) == ["a_b_c_x_pb2", "a_b_c_x_pb2_"]


def test_import_block_is_isort_ordered() -> None:
    block = import_block(
        ["from collections.abc import AsyncIterator"],
        ["from protoc_gen_pyservice import runtime", "import grpc"],
        ModuleScope(["Zeta.z_pb2", "alpha.a_pb2", "top_pb2"]),
    )
    assert block.third_party == (
        "import grpc",
        "import top_pb2",
        "from alpha import a_pb2",
        "from protoc_gen_pyservice import runtime",
        "from Zeta import z_pb2",
    )


def test_names_from_one_module_share_a_statement_in_natural_order() -> None:
    scope = ModuleScope(["pkg.v10_pb2", "pkg.v2_pb2", "pkg.Upper_pb2", "other.v2_pb2"])
    block = import_block([], [], scope)
    assert block.third_party == (
        "from other import v2_pb2 as other_v2_pb2",
        "from pkg import Upper_pb2, v10_pb2",
        "from pkg import v2_pb2 as pkg_v2_pb2",
    )


def test_a_statement_longer_than_88_is_exploded_with_a_trailing_comma() -> None:
    deep = "layout.deep.a.b.c.d.e.f.g.h"
    block = import_block([], [], ModuleScope([f"{deep}.common_pb2", f"x.{deep}.common_pb2"]))
    assert block.third_party[0] == (
        f"from {deep} import (\n    common_pb2 as layout_deep_a_b_c_d_e_f_g_h_common_pb2,\n)"
    )
