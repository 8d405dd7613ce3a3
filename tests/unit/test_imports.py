from protoc_gen_pyservice.model.nodes import TypeRef
from protoc_gen_pyservice.render.imports import Import, ImportTracker, ModuleScope, resolved


def ref(module: str, name: str = "M") -> TypeRef:
    return TypeRef(proto_name=name, module=module, qualname=name)


def test_short_aliases_when_unique() -> None:
    scope = ModuleScope(["user.v1.user_pb2", "google.protobuf.empty_pb2"])
    assert scope.local(ref("user.v1.user_pb2", "User")) == "user_pb2.User"
    assert scope.imports() == [
        Import("google.protobuf", "empty_pb2"),
        Import("user.v1", "user_pb2"),
    ]


def test_clashing_basenames_use_the_whole_path() -> None:
    scope = ModuleScope(["alpha.common_pb2", "beta.common_pb2", "top_pb2"])
    assert scope.aliases == {
        "alpha.common_pb2": "alpha_common_pb2",
        "beta.common_pb2": "beta_common_pb2",
        "top_pb2": "top_pb2",
    }
    assert scope.imports() == [
        Import("alpha", "common_pb2 as alpha_common_pb2"),
        Import("beta", "common_pb2 as beta_common_pb2"),
        Import("top_pb2"),
    ]


def test_remaining_clash_gets_underscores() -> None:
    scope = ModuleScope(["a.b_c.x_pb2", "a_b.c.x_pb2"])
    assert sorted(scope.aliases.values()) == ["a_b_c_x_pb2", "a_b_c_x_pb2_"]


def block_for(refs: list[TypeRef], *extra: tuple[str, str]) -> tuple[str, ...]:
    def build(names: ImportTracker) -> None:
        for ref in refs:
            names.type(ref)
        for module, name in extra:
            names.third_party(module, name)

    return resolved(build)[1].third_party


def test_imports_are_what_the_view_asked_for_in_isort_order() -> None:
    def build(names: ImportTracker) -> str:
        names.stdlib("collections.abc", "AsyncIterator")
        names.third_party("grpc")
        names.third_party("protoc_gen_pyservice", "runtime")
        return names.type(ref("Zeta.z_pb2")) + names.type(ref("alpha.a_pb2"))

    view, block = resolved(build)
    assert view == "z_pb2.Ma_pb2.M"
    assert block.stdlib == ("from collections.abc import AsyncIterator",)
    assert block.third_party == (
        "import grpc",
        "from alpha import a_pb2",
        "from protoc_gen_pyservice import runtime",
        "from Zeta import z_pb2",
    )


def test_keyword_named_types_are_annotated_any_and_reached_with_getattr() -> None:
    keyword = TypeRef(proto_name="p.lambda", module="p.k_pb2", qualname="lambda")
    view, block = resolved(lambda names: (names.annotation(keyword), names.type(keyword)))
    assert view == ("Any", 'getattr(k_pb2, "lambda")')
    assert block.stdlib == ("from typing import Any",)


def test_a_validators_own_functions_are_bare_and_others_imported() -> None:
    view, block = resolved(
        lambda names: (
            names.function("a.x_validate", "check_m"),
            names.function("b.y_validate", "check_n"),
        ),
        own_module="a.x_validate",
    )
    assert view == ("check_m", "y_validate.check_n")
    assert block.third_party == ("from b import y_validate",)


def test_names_from_one_module_share_a_statement_in_natural_order() -> None:
    modules = ["pkg.v10_pb2", "pkg.v2_pb2", "pkg.Upper_pb2", "other.v2_pb2"]
    assert block_for([ref(module) for module in modules]) == (
        "from other import v2_pb2 as other_v2_pb2",
        "from pkg import Upper_pb2, v10_pb2",
        "from pkg import v2_pb2 as pkg_v2_pb2",
    )


def test_a_statement_longer_than_88_is_exploded_with_a_trailing_comma() -> None:
    deep = "layout.deep.a.b.c.d.e.f.g.h"
    block = block_for([ref(f"{deep}.common_pb2"), ref(f"x.{deep}.common_pb2")])
    assert block[0] == (
        f"from {deep} import (\n    common_pb2 as layout_deep_a_b_c_d_e_f_g_h_common_pb2,\n)"
    )
