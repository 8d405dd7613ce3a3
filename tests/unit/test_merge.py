"""Updating user-owned modules in place: cli/merge.py on small inline sources."""

import difflib
import textwrap

import pytest
from protoc_gen_pyservice.cli import merge
from protoc_gen_pyservice.render.scaffold import Group, RpcCall, SupportModule

BASE = "ShopBase"
GROUPS = (Group("GetItem", ("get_item",)), Group("ListItems", ("list_items",)))


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


FRESH = source(
    '''
    """Shop."""

    from __future__ import annotations

    from typing import ClassVar

    import grpc
    from protoc_gen_pyservice import runtime
    from shop.v1 import shop_pb2, shop_service


    class Shop(shop_service.ShopBase):
        """Shop service."""

        UNIMPLEMENTED_RPCS: ClassVar[frozenset[str]] = frozenset()

        async def get_item(
            self,
            request: shop_pb2.GetItemRequest,
            context: grpc.aio.ServicerContext[shop_pb2.GetItemRequest, shop_pb2.Item],
        ) -> shop_pb2.Item:
            """Get one item."""
            raise runtime.unimplemented("/shop.v1.Shop/GetItem")

        async def list_items(
            self,
            request: shop_pb2.ListItemsRequest,
            context: grpc.aio.ServicerContext[shop_pb2.ListItemsRequest, shop_pb2.Items],
        ) -> shop_pb2.Items:
            """List items."""
            raise runtime.unimplemented("/shop.v1.Shop/ListItems")
    '''
)

# What a developer made of an older scaffold: ListItems did not exist yet, get_item is written.
WRITTEN = source(
    '''
    """Shop."""

    from __future__ import annotations

    from typing import ClassVar

    import grpc
    from protoc_gen_pyservice import runtime  # the stubs need it
    from shop.v1 import shop_pb2, shop_service


    class Shop(shop_service.ShopBase):
        """Shop service, kept in a dict."""

        UNIMPLEMENTED_RPCS: ClassVar[frozenset[str]] = frozenset()

        def __init__(self) -> None:
            self.items = {}  # by id

        async def get_item(
            self,
            request: shop_pb2.GetItemRequest,
            context: grpc.aio.ServicerContext[shop_pb2.GetItemRequest, shop_pb2.Item],
        ) -> shop_pb2.Item:
            # Unknown ids answer an empty item, on purpose.
            return self.items.get(request.id,   shop_pb2.Item())
    '''
)


def only_inserted(before: str, after: str) -> str:
    """What `after` adds to `before`, asserting that nothing of `before` changed."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    added = []
    for tag, _, _, start, end in difflib.SequenceMatcher(a=old, b=new).get_opcodes():
        assert tag in ("equal", "insert"), "".join(difflib.unified_diff(old, new))
        if tag == "insert":
            added.extend(new[start:end])
    return "".join(added)


def test_a_new_rpc_gets_a_stub_and_everything_else_stays_byte_for_byte() -> None:
    merged = merge.update_implementation(WRITTEN, FRESH, GROUPS, BASE)
    added = only_inserted(WRITTEN, merged.text)
    assert added == "\n" + FRESH[FRESH.index("    async def list_items") :]
    assert merged.changes == ("added stub list_items",)
    assert merged.warnings == ()
    again = merge.update_implementation(merged.text, FRESH, GROUPS, BASE)
    assert again.text == merged.text
    assert again.changes == ()


def test_stubs_go_in_proto_order() -> None:
    groups = (Group("A", ("a",)), Group("B", ("b",)), Group("C", ("c",)))
    fresh = source(
        """
        class S(m.SBase):
            def a(self, request, context):
                pass

            def b(self, request, context):
                pass

            def c(self, request, context):
                pass
        """
    )
    written = source(
        """
        class S(m.SBase):
            def c(self, request, context):
                return 3

            def a(self, request, context):
                return 1
        """
    )
    merged = merge.update_implementation(written, fresh, groups, "SBase")
    assert merged.text == source(
        """
        class S(m.SBase):
            def c(self, request, context):
                return 3

            def a(self, request, context):
                return 1

            def b(self, request, context):
                pass
        """
    )
    first_missing = merge.update_implementation(
        written.replace("a(self", "z(self"), fresh, groups, "SBase"
    )
    # No earlier RPC has a method: A goes before the first method of a later RPC.
    assert first_missing.text.index("def a(") < first_missing.text.index("def c(")


def test_stubs_follow_the_modules_indentation() -> None:
    written = "class Shop(shop_service.ShopBase):\n  x = 1\n"
    merged = merge.update_implementation(written, FRESH, GROUPS[:1], BASE)
    assert "\n  async def get_item(\n      self,\n" in merged.text
    assert '\n    raise runtime.unimplemented("/shop.v1.Shop/GetItem")\n' in merged.text


def test_the_first_imports_of_a_module_are_laid_out_as_ruff_would() -> None:
    written = '"""Doc."""\nclass Shop(shop_service.ShopBase):\n    x = 1\n'
    merged = merge.update_implementation(written, FRESH, GROUPS[:1], BASE)
    assert merged.text.startswith(
        '"""Doc."""\n\nimport grpc\nfrom protoc_gen_pyservice import runtime\n'
        "from shop.v1 import shop_pb2, shop_service\n\n\nclass Shop(shop_service.ShopBase):\n"
    )


def test_listed_rpcs_get_no_stub_and_names_no_rpc_warns() -> None:
    written = WRITTEN.replace("frozenset()", 'frozenset({"ListItems", "Gone"})  # later')
    merged = merge.update_implementation(written, FRESH, GROUPS, BASE)
    assert merged.text == written
    assert merged.warnings == (
        "Shop.UNIMPLEMENTED_RPCS names 'Gone', which is no RPC of the proto",
    )


def test_a_listed_value_that_is_not_a_literal_warns() -> None:
    written = WRITTEN.replace("frozenset()", "frozenset(LATER)")
    merged = merge.update_implementation(written, FRESH, GROUPS, BASE)
    assert "only its string literals are read" in merged.warnings[0]


def test_a_handler_whose_rpc_is_gone_is_kept_with_a_warning() -> None:
    written = WRITTEN + (
        "\n    async def remove_item(self, request, context):\n        return None\n"
        "\n    def helper(self, value):\n        return value\n"
    )
    merged = merge.update_implementation(written, FRESH, GROUPS, BASE)
    assert "async def remove_item(self, request, context):" in merged.text
    assert merged.warnings == (
        "Shop.remove_item: no RPC of the proto has this handler any more (removed or renamed?); "
        "left in place",
    )


def test_a_changed_request_type_is_retyped_and_imported() -> None:
    fresh = FRESH.replace("shop_pb2.GetItemRequest", "catalog_pb2.ItemQuery").replace(
        "from shop.v1 import shop_pb2, shop_service\n",
        "from catalog.v1 import catalog_pb2\nfrom shop.v1 import shop_pb2, shop_service\n",
    )
    merged = merge.update_implementation(WRITTEN, fresh, GROUPS[:1], BASE)
    assert merged.changes == ("retyped get_item", "imported catalog_pb2")
    assert (
        "from protoc_gen_pyservice import runtime  # the stubs need it\n"
        "from catalog.v1 import catalog_pb2\n" not in merged.text
    )
    assert (
        "import grpc\nfrom catalog.v1 import catalog_pb2\n"
        "from protoc_gen_pyservice import runtime  # the stubs need it\n" in merged.text
    )
    assert "        request: catalog_pb2.ItemQuery,\n" in merged.text
    assert "ServicerContext[catalog_pb2.ItemQuery, shop_pb2.Item]" in merged.text
    assert "return self.items.get(request.id,   shop_pb2.Item())" in merged.text


def test_an_import_only_the_old_types_used_is_dropped() -> None:
    written = WRITTEN.replace(
        "from shop.v1 import shop_pb2, shop_service\n",
        "from old.v1 import old_pb2\nfrom shop.v1 import shop_pb2, shop_service\n",
    ).replace("request: shop_pb2.GetItemRequest", "request: old_pb2.Query")
    merged = merge.update_implementation(written, FRESH, GROUPS[:1], BASE)
    assert "old_pb2" not in merged.text
    assert merged.text == WRITTEN
    assert merged.changes == ("retyped get_item", "dropped the import of old_pb2")


def test_a_new_name_joins_an_existing_from_import_in_order() -> None:
    fresh = FRESH.replace("shop_pb2.Item]", "shop_types.Item]").replace(
        "import shop_pb2, shop_service", "import shop_pb2, shop_service, shop_types"
    )
    written = WRITTEN.replace("import shop_pb2, shop_service", "import shop_service, shop_pb2")
    merged = merge.update_implementation(written, fresh, GROUPS[:1], BASE)
    assert "from shop.v1 import shop_pb2, shop_service, shop_types\n" in merged.text


def test_a_new_section_is_set_apart_by_blank_lines() -> None:
    written = source(
        '''
        """Doc."""

        from __future__ import annotations

        import grpc
        from shop.v1 import shop_pb2, shop_service


        class Shop(shop_service.ShopBase):
            pass
        '''
    )
    fresh = source(
        """
        from collections.abc import AsyncIterator

        import grpc
        from shop.v1 import shop_pb2, shop_service


        class Shop(shop_service.ShopBase):
            def get_item(self, request, context) -> AsyncIterator[shop_pb2.Item]:
                pass
        """
    )
    merged = merge.update_implementation(written, fresh, GROUPS[:1], BASE)
    assert merged.text.startswith(
        '"""Doc."""\n\nfrom __future__ import annotations\n\n'
        "from collections.abc import AsyncIterator\n\nimport grpc\n"
    )


def test_annotations_the_user_wrote_differently_are_left_alone() -> None:
    written = source(
        """
        from shop.v1 import shop_pb2, shop_service


        class Shop(shop_service.ShopBase):
            async def get_item(self, request, context: Context[object, object]) -> Any:
                return None

            async def list_items(  # type: ignore[override]
                self, request: shop_pb2.Old, context
            ) -> "shop_pb2.Items":
                return None
        """
    )
    merged = merge.update_implementation(written, FRESH, GROUPS, BASE)
    # Only a message named through its _pb2 module is a type the proto gave.
    assert merged.changes == ("retyped list_items",)
    assert merged.text == written.replace("shop_pb2.Old", "shop_pb2.ListItemsRequest")


def test_a_changed_streaming_kind_is_reported_not_rewritten() -> None:
    fresh = FRESH.replace(
        "        request: shop_pb2.GetItemRequest,",
        "        request_iterator: AsyncIterator[shop_pb2.GetItemRequest],",
    )
    merged = merge.update_implementation(WRITTEN, fresh, GROUPS[:1], BASE)
    assert merged.text == WRITTEN
    assert merged.warnings == (
        "Shop.get_item: the RPC's streaming kind changed; change the method to match "
        "ShopBase.get_item by hand",
    )


def test_a_module_without_the_class_is_left_alone() -> None:
    written = "class Other:\n    pass\n"
    merged = merge.update_implementation(written, FRESH, GROUPS, BASE)
    assert merged.text == written
    assert merged.warnings == ("no class derives from ShopBase: nothing added to this module",)


def test_a_module_that_does_not_parse_is_an_error() -> None:
    with pytest.raises(merge.MergeError) as raised:
        merge.update_implementation("x = 1\n" * 39 + "class (:\n", FRESH, GROUPS, BASE)
    # One position, said once (libcst's message has one of its own, counted from 0).
    assert str(raised.value) == "cannot be parsed: line 40, column 7: expected NAME"


def test_line_endings_survive() -> None:
    written = WRITTEN.replace("\n", "\r\n")
    merged = merge.update_implementation(written, FRESH, GROUPS, BASE)
    assert "\n" not in merged.text.replace("\r\n", "")
    assert only_inserted(written, merged.text)


def test_find_implementation_reads_methods_and_the_listed_rpcs() -> None:
    module = merge.parse(WRITTEN.replace("frozenset()", 'frozenset({"ListItems"})'))
    found = merge.find_implementation(module, BASE)
    assert found is not None
    assert found.name == "Shop"
    assert {"get_item", "__init__", "UNIMPLEMENTED_RPCS"} <= found.methods
    assert found.unimplemented == frozenset({"ListItems"})
    assert merge.find_implementation(module, "OtherBase") is None


TEST_GROUPS = (
    Group("GetItem", ("test_get_item", "test_get_item_rejects_invalid_requests")),
    Group("ListItems", ("test_list_items",)),
)
SUPPORT = SupportModule(
    testing_module="shop.v1.shop_testing",
    defined=frozenset(
        {
            "valid_get_item_request",
            "INVALID_GET_ITEM_REQUEST",
            "valid_list_items_request",
            "INVALID_LIST_ITEMS_REQUEST",
        }
    ),
    rpcs=(
        RpcCall(
            "GetItem",
            "get_item",
            False,
            False,
            "valid_get_item_request",
            "INVALID_GET_ITEM_REQUEST",
        ),
        RpcCall(
            "ListItems",
            "list_items",
            False,
            False,
            "valid_list_items_request",
            "INVALID_LIST_ITEMS_REQUEST",
        ),
    ),
)
FRESH_TESTS = source(
    '''
    """Tests."""

    from __future__ import annotations

    import pytest
    from shop.v1 import shop_testing

    from services.shop import Shop

    client = shop_testing.shop_client_fixture(Shop)


    @pytest.mark.asyncio
    async def test_get_item(client) -> None:
        pass


    @pytest.mark.asyncio
    async def test_get_item_rejects_invalid_requests(client) -> None:
        pass


    @pytest.mark.asyncio
    async def test_list_items(client) -> None:
        assert shop_testing.valid_list_items_request()
    '''
)


def test_tests_of_a_new_rpc_are_added_and_edited_tests_kept() -> None:
    written = source(
        '''
        """Tests."""

        from services.shop import Shop

        client = shop_testing.shop_client_fixture(Shop)


        # Mine: the negative test went, the positive one checks more.
        async def test_get_item(client) -> None:
            assert (await client.get_item(Item(id="1"))).id == "1"
        '''
    )
    merged = merge.update_tests(written, FRESH_TESTS, TEST_GROUPS, ["services"], SUPPORT)
    added = only_inserted(written, merged.text)
    # The RPC that has one of its tests keeps what it has; the new RPC gets its tests, and the
    # imports they need go into the sections isort has them in.
    assert "test_get_item_rejects_invalid_requests" not in added
    assert "async def test_list_items(client) -> None:" in added
    assert merged.text.startswith(
        '"""Tests."""\n\nimport pytest\nfrom shop.v1 import shop_testing\n\n'
        "from services.shop import Shop\n"
    )
    assert (
        merge.update_tests(merged.text, FRESH_TESTS, TEST_GROUPS, ["services"], SUPPORT).changes
        == ()
    )


def test_dropping_one_name_of_an_import_keeps_the_others() -> None:
    written = WRITTEN.replace(
        "from shop.v1 import shop_pb2, shop_service\n",
        "from shop.v1 import old_pb2, shop_pb2, shop_service\n",
    ).replace("request: shop_pb2.GetItemRequest", "request: old_pb2.Query")
    merged = merge.update_implementation(written, FRESH, GROUPS[:1], BASE)
    assert merged.text == WRITTEN


def test_a_name_joining_a_long_import_is_laid_out_one_a_line() -> None:
    long_module = "shop.v1.a_rather_long_package_name_for_the_shop_service_to_live_in"
    fresh = FRESH.replace("shop_pb2.Item]", "shop_types.Item]").replace(
        "from shop.v1 import shop_pb2, shop_service\n",
        f"from {long_module} import shop_pb2, shop_service, shop_types\n",
    )
    written = WRITTEN.replace(
        "from shop.v1 import shop_pb2, shop_service\n",
        f"from {long_module} import shop_pb2, shop_service\n",
    )
    merged = merge.update_implementation(written, fresh, GROUPS[:1], BASE)
    assert (
        f"from {long_module} import (\n    shop_pb2,\n    shop_service,\n    shop_types,\n)\n"
        in merged.text
    )


def test_an_annotation_scaffold_cannot_rewrite_is_named_when_the_types_change() -> None:
    written = WRITTEN.replace(
        "from shop.v1 import shop_pb2, shop_service\n",
        "from shop.v1 import shop_pb2, shop_service\nfrom shop.v1.shop_pb2 import GetItemRequest\n",
    ).replace("request: shop_pb2.GetItemRequest", "request: GetItemRequest")
    fresh = FRESH.replace("shop_pb2.GetItemRequest", "shop_pb2.ItemQuery")
    merged = merge.update_implementation(written, fresh, GROUPS[:1], BASE)
    assert "ServicerContext[shop_pb2.ItemQuery, shop_pb2.Item]" in merged.text
    assert "request: GetItemRequest," in merged.text
    assert merged.warnings == (
        "Shop.get_item: the RPC's types changed; change `request` to shop_pb2.ItemQuery by hand",
    )
    # A string annotation the same; and nothing to say while the types are those of the proto.
    quoted = WRITTEN.replace("-> shop_pb2.Item:", '-> "shop_pb2.Item":')
    assert merge.update_implementation(quoted, FRESH, GROUPS[:1], BASE).warnings == ()
    changed = FRESH.replace("-> shop_pb2.Item:", "-> shop_pb2.Thing:")
    assert merge.update_implementation(quoted, changed, GROUPS[:1], BASE).warnings == (
        "Shop.get_item: the RPC's types changed; change the return annotation to "
        "shop_pb2.Thing by hand",
    )
    assert merge.update_implementation(written, FRESH, GROUPS[:1], BASE).warnings == ()


@pytest.mark.parametrize(
    ("imports", "base"),
    [
        ("from shop.v1.shop_service import ShopBase as Base\n", "Base"),
        ("from shop.v1 import shop_service as svc\n", "svc.ShopBase"),
        ("from shop.v1 import shop_service\n\nBase = shop_service.ShopBase\n", "Base"),
    ],
)
def test_an_aliased_base_class_is_found(imports: str, base: str) -> None:
    written = f"{imports}\n\nclass Shop({base}):\n    x = 1\n"
    found = merge.find_implementation(merge.parse(written), BASE)
    assert found is not None and found.name == "Shop"
    merged = merge.update_implementation(written, FRESH, GROUPS[:1], BASE)
    assert merged.changes[0] == "added stub get_item"


MIXIN_GROUPS = (Group("GetItem", ("get_item",)),)


def test_a_parent_from_elsewhere_may_have_the_method_so_no_stub_shadows_it() -> None:
    written = source(
        """
        from auth import AuthMixin
        from shop.v1 import shop_service


        class Shop(AuthMixin, shop_service.ShopBase):
            x = 1
        """
    )
    merged = merge.update_implementation(written, FRESH, MIXIN_GROUPS, BASE)
    assert merged.text == written
    assert merged.warnings == (
        "Shop has other base classes (AuthMixin); add get_item yourself or list 'GetItem' in "
        "UNIMPLEMENTED_RPCS",
    )
    listed = written.replace("    x = 1\n", '    UNIMPLEMENTED_RPCS = frozenset({"GetItem"})\n')
    assert merge.update_implementation(listed, FRESH, MIXIN_GROUPS, BASE).warnings == ()


def test_a_parent_of_the_module_is_read() -> None:
    written = source(
        """
        from shop.v1 import shop_service


        class Base:
            async def get_item(self, request, context):
                return None


        class Mixin(Base):
            pass


        class Shop(Mixin, shop_service.ShopBase):
            x = 1
        """
    )
    merged = merge.update_implementation(written, FRESH, MIXIN_GROUPS, BASE)
    assert (merged.text, merged.warnings) == (written, ())
    found = merge.find_implementation(merge.parse(written), BASE)
    assert found is not None and "get_item" in found.methods
    without = written.replace("get_item(self", "helper(self")
    merged = merge.update_implementation(without, FRESH, MIXIN_GROUPS, BASE)
    assert merged.changes[0] == "added stub get_item"


NEW_REQUEST_SUPPORT = SUPPORT._replace(
    defined=frozenset({"valid_item_query", "INVALID_ITEM_QUERY"}),
    rpcs=(SUPPORT.rpcs[0]._replace(builder="valid_item_query", cases="INVALID_ITEM_QUERY"),),
)
GET_ITEM_TESTS = source(
    '''
    """Tests."""

    import pytest
    from protoc_gen_pyservice.runtime import testing
    from shop.v1 import shop_pb2, shop_testing

    from services.shop import Shop

    client = shop_testing.shop_client_fixture(Shop)


    @pytest.mark.asyncio
    async def test_get_item(client) -> None:
        response = await client.get_item(shop_testing.valid_get_item_request())
        assert response  # mine


    @pytest.mark.parametrize("case", shop_testing.INVALID_GET_ITEM_REQUEST)
    async def test_get_item_rejects_invalid_requests(
        client, case: testing.InvalidCase[shop_pb2.GetItemRequest]
    ) -> None:
        await client.get_item(case.build())
    '''
)


def test_tests_of_a_changed_request_type_are_rewritten_where_scaffold_wrote_them() -> None:
    fresh = (
        GET_ITEM_TESTS.replace("valid_get_item_request", "valid_item_query")
        .replace("INVALID_GET_ITEM_REQUEST", "INVALID_ITEM_QUERY")
        .replace("shop_pb2.GetItemRequest", "shop_pb2.ItemQuery")
    )
    merged = merge.update_tests(
        GET_ITEM_TESTS, fresh, TEST_GROUPS[:1], ["services"], NEW_REQUEST_SUPPORT
    )
    assert merged.warnings == ()
    assert merged.text == fresh
    assert merged.changes == (
        "updated test_get_item for the new request type",
        "updated test_get_item_rejects_invalid_requests for the new request type",
    )
    # Spelled otherwise (through another alias, with arguments): said, not rewritten.
    written = GET_ITEM_TESTS.replace(
        "shop_testing.valid_get_item_request()", "shop_testing.valid_get_item_request(id=1)"
    )
    merged = merge.update_tests(written, fresh, TEST_GROUPS[:1], ["services"], NEW_REQUEST_SUPPORT)
    assert merged.warnings == (
        "test_get_item uses shop_testing.valid_get_item_request, which shop.v1.shop_testing no "
        "longer defines (the RPC's request type changed?); change it by hand",
    )
    imported = GET_ITEM_TESTS.replace(
        "from shop.v1 import shop_pb2, shop_testing\n",
        "from shop.v1 import shop_pb2, shop_testing\n"
        "from shop.v1.shop_testing import valid_get_item_request\n",
    )
    merged = merge.update_tests(imported, fresh, TEST_GROUPS[:1], ["services"], NEW_REQUEST_SUPPORT)
    assert merged.warnings[0] == (
        "imports valid_get_item_request from shop.v1.shop_testing, which no longer defines it "
        "(its request type changed?)"
    )


def test_tests_of_a_removed_rpc_or_a_changed_streaming_kind_are_reported() -> None:
    gone = SUPPORT._replace(rpcs=SUPPORT.rpcs[1:])
    merged = merge.update_tests(GET_ITEM_TESTS, FRESH_TESTS, TEST_GROUPS[1:], ["services"], gone)
    assert merged.warnings == tuple(
        f"{test} calls client.get_item, which the client no longer has (its RPC removed or "
        "renamed?); change or remove the test by hand"
        for test in ("test_get_item", "test_get_item_rejects_invalid_requests")
    )
    streams = SUPPORT._replace(rpcs=(SUPPORT.rpcs[0]._replace(server_streaming=True),))
    merged = merge.update_tests(GET_ITEM_TESTS, FRESH_TESTS, TEST_GROUPS[:1], ["services"], streams)
    assert merged.warnings == tuple(
        f"{test}: the streaming kind of GetItem changed; change its call of client.get_item by hand"
        for test in ("test_get_item", "test_get_item_rejects_invalid_requests")
    )
    assert (
        merge.update_tests(
            GET_ITEM_TESTS, FRESH_TESTS, TEST_GROUPS[:1], ["services"], SUPPORT
        ).warnings
        == ()
    )
