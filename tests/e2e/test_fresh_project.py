"""A new user's project, outside this repository, from a wheel of this checkout.

The wheel is installed into a fresh virtual environment (dependencies from the package index,
pinned as this repository pins them), the way the README says; `pyservice init` sets the
project up; buf and plain protoc generate; ruff, mypy --strict, a real server and client run
on the result; `pyservice check` passes, then fails naming each kind of drift.
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

README = (ROOT / "README.md").read_text()

SHOP_PROTO = """\
syntax = "proto3";

package shop.v1;

import "buf/validate/validate.proto";
import "google/protobuf/empty.proto";
import "pyservice/options.proto";
import "validate/validate.proto";

// An item for sale.
message Item {
  // Shop-wide unique.
  string id = 1 [(validate.rules).string = {min_len: 1, max_len: 64}];
  int32 quantity = 2 [(validate.rules).int32 = {gte: 0, lte: 1000}];
  repeated string tags = 3 [(validate.rules).repeated.max_items = 5];
}

message GetItemRequest {
  string id = 1 [(validate.rules).string.min_len = 1];
}

message GetItemResponse {
  Item item = 1;
}

message WatchItemsRequest {
  string prefix = 1;
}

message UploadItemsRequest {
  Item item = 1 [(validate.rules).message.required = true];
}

message UploadItemsResponse {
  int32 count = 1;
}

// A review, checked with protovalidate's rules (the file mixes both rule languages).
message Review {
  option (buf.validate.message).cel = {
    id: "review.low_stars_need_a_comment"
    message: "a one-star review needs a comment"
    expression: "this.stars > 1 || this.comment.size() > 0"
  };
  string item_id = 1 [(buf.validate.field).string = {min_len: 1, max_len: 64}];
  int32 stars = 2 [(buf.validate.field).int32 = {gte: 1, lte: 5}];
  string comment = 3 [(buf.validate.field).string.max_len = 500];
  repeated string photos = 4 [(buf.validate.field).repeated = {
    max_items: 3
    items: {string: {uri: true}}
  }];
}

// Sells things.
service ShopService {
  // One item.
  rpc GetItem(GetItemRequest) returns (GetItemResponse) {
    option idempotency_level = NO_SIDE_EFFECTS;
    option (pyservice.method).timeout = {seconds: 5};
  }
  // Items whose id starts with a prefix.
  rpc WatchItems(WatchItemsRequest) returns (stream Item);
  // Many items in, a count out.
  rpc UploadItems(stream UploadItemsRequest) returns (UploadItemsResponse);
  // Each item back as it arrives.
  rpc SyncItems(stream Item) returns (stream Item);
  // Left to the generated base class.
  rpc Ping(google.protobuf.Empty) returns (google.protobuf.Empty);
  // Validated with protovalidate's rules, custom CEL included.
  rpc PostReview(Review) returns (google.protobuf.Empty);
}
"""

APP = '''\
"""The user's own server and client, on the generated code."""

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
from buf.validate import validate_pb2
from google.protobuf import empty_pb2
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import serve
from shop.v1 import shop_client, shop_pb2, shop_service

ITEMS = {"a1": shop_pb2.Item(id="a1", quantity=3), "b2": shop_pb2.Item(id="b2", quantity=0)}


class Shop(shop_service.ShopServiceBase):
    async def get_item(
        self,
        request: shop_pb2.GetItemRequest,
        context: grpc.aio.ServicerContext[shop_pb2.GetItemRequest, shop_pb2.GetItemResponse],
    ) -> shop_pb2.GetItemResponse:
        if request.id not in ITEMS:
            raise runtime.NotFound(f"no item {request.id!r}")
        return shop_pb2.GetItemResponse(item=ITEMS[request.id])

    async def watch_items(
        self,
        request: shop_pb2.WatchItemsRequest,
        context: grpc.aio.ServicerContext[shop_pb2.WatchItemsRequest, shop_pb2.Item],
    ) -> AsyncIterator[shop_pb2.Item]:
        for item_id, item in sorted(ITEMS.items()):
            if item_id.startswith(request.prefix):
                yield item

    async def upload_items(
        self,
        requests: AsyncIterator[shop_pb2.UploadItemsRequest],
        context: grpc.aio.ServicerContext[
            shop_pb2.UploadItemsRequest, shop_pb2.UploadItemsResponse
        ],
    ) -> shop_pb2.UploadItemsResponse:
        count = 0
        async for _ in requests:
            count += 1
        return shop_pb2.UploadItemsResponse(count=count)

    async def sync_items(
        self,
        requests: AsyncIterator[shop_pb2.Item],
        context: grpc.aio.ServicerContext[shop_pb2.Item, shop_pb2.Item],
    ) -> AsyncIterator[shop_pb2.Item]:
        async for item in requests:
            yield item

    async def post_review(
        self,
        request: shop_pb2.Review,
        context: grpc.aio.ServicerContext[shop_pb2.Review, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        return empty_pb2.Empty()


async def uploads() -> AsyncIterator[shop_pb2.UploadItemsRequest]:
    for item in ITEMS.values():
        yield shop_pb2.UploadItemsRequest(item=item)


async def items() -> AsyncIterator[shop_pb2.Item]:
    for item in ITEMS.values():
        yield item


async def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    service = serve.build_server(
        [(shop_service.add_shop_service_to_server, Shop())],
        serve.ServerSettings(address="127.0.0.1:0"),
    )
    await service.start()
    target = f"127.0.0.1:{service.port}"
    async with shop_client.ShopServiceClient.connect(target) as client:
        reply = await client.get_item(shop_pb2.GetItemRequest(id="a1"))
        print("get", reply.item.id, reply.item.quantity)
        watched = [item.id async for item in client.watch_items(shop_pb2.WatchItemsRequest())]
        print("watch", ",".join(watched))
        summary = await client.upload_items(uploads())
        print("upload", summary.count)
        synced = [item.id async for item in client.sync_items(items())]
        print("sync", ",".join(synced))
        try:
            await client.get_item(shop_pb2.GetItemRequest(id="zz"))
        except runtime.NotFound as error:
            print("not found", error.rpc_error.code().name)
        try:
            await client.get_item(shop_pb2.GetItemRequest())
        except runtime.InvalidArgument as error:
            assert error.bad_request is not None
            print("invalid", error.bad_request.field_violations[0].field)
        try:
            await client.ping(empty_pb2.Empty())
        except runtime.Unimplemented:
            print("ping unimplemented")
        await client.post_review(shop_pb2.Review(item_id="a1", stars=1, comment="meh"))
        try:
            await client.post_review(shop_pb2.Review(item_id="a1", stars=1, photos=["x y"]))
        except runtime.InvalidArgument as error:
            found = error.detail(validate_pb2.Violations)
            assert found is not None
            print("review", sorted(v.rule_id for v in found.violations))
    async with shop_client.ShopServiceClient.connect(target, validate=True) as checking:
        try:
            await checking.get_item(shop_pb2.GetItemRequest())
        except runtime.InvalidArgument as error:
            assert error.bad_request is not None
            print("refused before sending", error.bad_request.field_violations[0].field)
    await service.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
'''

APP_OUTPUT = [
    "get a1 3",
    "watch a1,b2",
    "upload 2",
    "sync a1,b2",
    "not found NOT_FOUND",
    "invalid id",
    "ping unimplemented",
    "review ['review.low_stars_need_a_comment', 'string.uri']",
    "refused before sending id",
]


def readme_block(after: str, language: str) -> str:
    """The first fenced block of `language` after the line containing `after`."""
    start = README.index(after)
    match = re.compile(rf"```{language}\n(.*?)```", re.DOTALL).search(README, start)
    assert match, f"no {language} block after {after!r} in the README"
    return match.group(1)


def readme_install_extras() -> str:
    """The extras of the README's compiler install line: `pip install '...[compiler,typing]'`."""
    match = re.search(r"pip install '?protoc-gen-pyservice\[([a-z,]+)\]'?", README)
    assert match, "the README has no `pip install 'protoc-gen-pyservice[...]'` line"
    return match.group(1)


def dev_pins() -> list[str]:
    """The versions this repository pins, so the fresh install resolves as CI's does."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [spec for spec in project["optional-dependencies"]["dev"] if "==" in spec]
    return [re.sub(r"\[.*?\]", "", spec) for spec in pins]


class Fresh:
    """A virtual environment with the wheel installed, and commands run in it."""

    def __init__(self, venv: Path) -> None:
        self.bin = venv / "bin"
        path = os.pathsep.join([str(self.bin), "/usr/local/bin", "/usr/bin", "/bin"])
        self.env = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}

    def run(
        self, cwd: Path, *command: str, check: bool = True, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(command),
            cwd=cwd,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
        return result


def checkout_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return [name for name in listed.stdout.decode().split("\0") if (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fresh]:
    base = tmp_path_factory.mktemp("fresh")
    source = base / "checkout"
    for name in checkout_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    wheel_dir = base / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(wheel_dir), str(source)], check=True, capture_output=True)
    (wheel,) = wheel_dir.glob("*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True)
    constraints = base / "constraints.txt"
    constraints.write_text("\n".join(dev_pins()) + "\n")
    environment = Fresh(base / "venv")
    environment.run(
        base,
        str(environment.bin / "pip"),
        "install",
        "-q",
        "--disable-pip-version-check",
        "-c",
        str(constraints),
        f"protoc-gen-pyservice[{readme_install_extras()}] @ {wheel.as_uri()}",
        "ruff",
        "mypy",
        "pytest",  # for the scaffolded tests, which need pytest and pytest-asyncio only
        "pytest-asyncio",
    )
    yield environment


@pytest.fixture(scope="module")
def project(fresh: Fresh, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    fresh.run(root, "pyservice", "init")
    (root / "proto" / "shop" / "v1").mkdir(parents=True)
    (root / "proto" / "shop" / "v1" / "shop.proto").write_text(SHOP_PROTO)
    fresh.run(root, "pyservice", "generate")
    (root / "app.py").write_text(APP)
    return root


def generated_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_init_and_generate_write_only_the_projects_own_code(project: Path) -> None:
    assert generated_files(project / "gen") == [
        "shop/v1/shop_client.py",
        "shop/v1/shop_pb2.py",
        "shop/v1/shop_pb2.pyi",
        "shop/v1/shop_service.py",
        "shop/v1/shop_testing.py",
        "shop/v1/shop_validate.py",
    ]


def test_the_readme_shows_the_buf_gen_yaml_init_writes(project: Path) -> None:
    shown = readme_block("pyservice init` writes", "yaml")
    assert shown == (project / "buf.gen.yaml").read_text()


def test_the_readme_shows_the_mypy_settings_init_writes(project: Path) -> None:
    shown = tomllib.loads(readme_block("this is the configuration `init` writes", "toml"))
    written = tomllib.loads((project / "pyproject.toml").read_text())
    assert shown["tool"]["mypy"] == written["tool"]["mypy"]


def test_plain_buf_generate_works_straight_after_init(fresh: Fresh, project: Path) -> None:
    before = {
        name: (project / "gen" / name).read_bytes() for name in generated_files(project / "gen")
    }
    fresh.run(project, "buf", "generate")
    after = {
        name: (project / "gen" / name).read_bytes() for name in generated_files(project / "gen")
    }
    assert after == before


def test_the_readmes_protoc_command_generates_code_that_imports(
    fresh: Fresh, project: Path, tmp_path: Path
) -> None:
    command = readme_block("With plain protoc", "sh").strip()
    assert "--pyservice_out=gen" in command
    out = tmp_path / "protoc"
    work = tmp_path / "work"
    shutil.copytree(project / "proto", work / "proto")
    (work / "gen").mkdir()
    fresh.run(work, "bash", "-ec", command)
    shutil.move(work / "gen", out)
    assert generated_files(out) == generated_files(project / "gen")
    script = "import shop.v1.shop_client, shop.v1.shop_service, shop.v1.shop_validate"
    fresh.run(out, "python", "-c", script, extra_env={"PYTHONPATH": str(out)})


def test_ruff_defaults_pass_and_ruff_format_leaves_generated_code_alone(
    fresh: Fresh, project: Path
) -> None:
    result = fresh.run(project, "ruff", "check", ".", check=False)
    assert result.returncode == 0, result.stdout
    fresh.run(project, "ruff", "format", "app.py")  # the project's own code, at its length
    formatted = fresh.run(project, "ruff", "format", "--check", ".", check=False)
    assert formatted.returncode == 0, formatted.stdout


def test_mypy_strict_passes_with_the_configuration_init_writes(fresh: Fresh, project: Path) -> None:
    result = fresh.run(project, "mypy", ".", check=False)
    assert result.returncode == 0, result.stdout


def test_mypy_protobuf_stubs_pass_strict_too(fresh: Fresh, tmp_path: Path) -> None:
    fresh.run(tmp_path, "pyservice", "init", "--stubs", "mypy-protobuf", "--out", "generated")
    (tmp_path / "proto" / "shop" / "v1").mkdir(parents=True)
    (tmp_path / "proto" / "shop" / "v1" / "shop.proto").write_text(SHOP_PROTO)
    generated = fresh.run(tmp_path, "pyservice", "generate")
    assert "Writing mypy" not in generated.stderr
    (tmp_path / "app.py").write_text(APP)
    result = fresh.run(tmp_path, "mypy", ".", check=False)
    assert result.returncode == 0, result.stdout
    assert (
        "@generated by mypy-protobuf"
        in (tmp_path / "generated" / "shop" / "v1" / "shop_pb2.pyi").read_text()
    )


def test_a_server_and_client_on_the_generated_code(fresh: Fresh, project: Path) -> None:
    result = fresh.run(project, "python", "app.py", extra_env={"PYTHONPATH": "gen"})
    assert result.stdout.splitlines() == APP_OUTPUT
    assert "shop.v1.ShopService: 1 of 6 RPCs not implemented" in result.stderr
    assert "Traceback" not in result.stderr


def test_scaffolded_implementation_and_tests_run_under_plain_pytest(
    fresh: Fresh, project: Path
) -> None:
    scaffold = fresh.run(project, "pyservice", "scaffold")
    assert "services/shop_service.py" in scaffold.stdout + scaffold.stderr
    implementation = project / "services" / "shop_service.py"
    assert "class ShopService(shop_service.ShopServiceBase):" in implementation.read_text()
    pytest_run = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    stubs = fresh.run(project, *pytest_run, check=False)
    assert stubs.returncode == 0, stubs.stdout
    assert " failed" not in stubs.stdout
    assert re.search(r"\d+ passed", stubs.stdout), stubs.stdout  # the negative cases
    assert re.search(r"\d+ skipped", stubs.stdout), stubs.stdout  # stubs still UNIMPLEMENTED
    assert "Warning" not in stubs.stdout, stubs.stdout

    # The developer writes GetItem; its test stops skipping and passes.
    stub_body = 'raise runtime.unimplemented("/shop.v1.ShopService/GetItem")'
    source = implementation.read_text()
    assert stub_body in source
    implementation.write_text(
        source.replace(
            stub_body, "return shop_pb2.GetItemResponse(item=shop_pb2.Item(id=request.id))"
        )
    )
    written = fresh.run(project, *pytest_run, "-k", "test_get_item", "-rs", check=False)
    assert written.returncode == 0, written.stdout
    assert "skipped" not in written.stdout, written.stdout
    assert fresh.run(project, "pyservice", "scaffold").stdout.count("wrote") == 0
    assert fresh.run(project, "ruff", "check", ".", check=False).returncode == 0
    typed = fresh.run(project, "mypy", ".", check=False)
    assert typed.returncode == 0, typed.stdout


def test_check_passes_then_names_each_kind_of_drift(fresh: Fresh, project: Path) -> None:
    def check() -> subprocess.CompletedProcess[str]:
        return fresh.run(project, "pyservice", "check", check=False)

    assert check().returncode == 0
    service = project / "gen" / "shop" / "v1" / "shop_service.py"
    original = service.read_text()
    service.write_text(original + "# edited\n")
    edited = check()
    assert edited.returncode == 1
    assert "  edited:  gen/shop/v1/shop_service.py" in edited.stderr
    service.write_text(original)

    (project / "gen" / "shop" / "v1" / "shop_client.py").unlink()
    deleted = check()
    assert deleted.returncode == 1
    assert "  missing: gen/shop/v1/shop_client.py" in deleted.stderr
    fresh.run(project, "pyservice", "generate")

    proto = project / "proto" / "shop" / "v1" / "shop.proto"
    renamed = proto.with_name("store.proto")
    proto.rename(renamed)
    stale = check()
    assert stale.returncode == 1
    assert "  stale:   gen/shop/v1/shop_service.py" in stale.stderr
    assert "  missing: gen/shop/v1/store_service.py" in stale.stderr
    fresh.run(project, "pyservice", "generate")
    assert not (project / "gen" / "shop" / "v1" / "shop_service.py").exists()  # clean: true
    assert check().returncode == 0

    renamed.write_text(renamed.read_text().replace("// One item.", "// Exactly one item."))
    changed = check()
    assert changed.returncode == 1
    assert "  edited:  gen/shop/v1/store_service.py" in changed.stderr
    assert '+        """Exactly one item."""' in changed.stderr
    renamed.rename(proto)
    proto.write_text(SHOP_PROTO)
    fresh.run(project, "pyservice", "generate")
