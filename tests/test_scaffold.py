"""`pyservice scaffold` and the implementation check of `pyservice check`, in a project of a
user's own set up by `pyservice init` with a copy of this repository's user.proto."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_cli import BIN, pyservice
from tests.unit.test_merge import only_inserted

IMPLEMENTATION = "services/user_service.py"
TESTS = "tests/test_user_service.py"

# What a developer writes into the stubs: a body with comments, and an edited test.
GET_USER_STUB = '''        """Get a user by ID"""
        raise runtime.unimplemented("/user.v1.UserService/GetUser")
'''
GET_USER_WRITTEN = '''        """Get a user by ID"""
        # Every id is a user here;   the layout of this line is mine.
        return user_pb2.GetUserResponse(user=user_pb2.User(id=request.id))
'''
NEW_RPC = """
  // Ban a user.
  rpc BanUser(BanUserRequest) returns (google.protobuf.Empty);
"""
NEW_MESSAGE = """
// Request for UserService.BanUser.
message BanUserRequest {
  string id = 1 [(validate.rules).string.min_len = 1];
}
"""


CLIENT_STREAMS = """
  // Create many users.
  rpc ImportUsers(stream CreateUserRequest) returns (ImportUsersResponse);

  // Look users up as their ids arrive.
  rpc LookUp(stream GetUserRequest) returns (stream GetUserResponse);
"""
CLIENT_STREAMS_RESPONSE = """
// Response of UserService.ImportUsers.
message ImportUsersResponse {
  int32 count = 1;
}
"""
# Stubs and what replaces them, for each kind of RPC.
IMPLEMENTED = (
    (GET_USER_STUB, GET_USER_WRITTEN),
    (
        'return runtime.unimplemented_stream("/user.v1.UserService/StreamUserUpdates")\n',
        'yield user_pb2.UserUpdate(user=user_pb2.User(id="1"))\n'
        "        await asyncio.Event().wait()  # until the client cancels\n",
    ),
    (
        'raise runtime.unimplemented("/user.v1.UserService/ImportUsers")\n',
        "return user_pb2.ImportUsersResponse(count=len([r async for r in request_iterator]))\n",
    ),
    (
        'return runtime.unimplemented_stream("/user.v1.UserService/LookUp")\n',
        "async for request in request_iterator:\n"
        "            yield user_pb2.GetUserResponse(user=user_pb2.User(id=request.id))\n",
    ),
    ("    def stream_user_updates(", "    async def stream_user_updates("),
    ("    def look_up(", "    async def look_up("),
    (
        "from __future__ import annotations\n",
        "from __future__ import annotations\nimport asyncio\n",
    ),
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project made by `pyservice init`, with user.v1 and common.v1 generated."""
    root = tmp_path / "project"
    root.mkdir()
    assert pyservice(root, "init").returncode == 0
    for proto in ("user/v1/user.proto", "common/v1/errors.proto"):
        (root / "proto" / proto).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "proto" / proto, root / "proto" / proto)
    generated = pyservice(root, "generate")
    assert generated.returncode == 0, generated.stderr
    return root


def scaffold(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = pyservice(root, "scaffold", *args)
    assert result.returncode == 0, result.stderr
    return result


def edit_proto(root: Path, old: str, new: str) -> None:
    proto = root / "proto" / "user" / "v1" / "user.proto"
    text = proto.read_text()
    assert old in text
    proto.write_text(text.replace(old, new, 1))


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for folder in ("services", "tests")
        for path in sorted((root / folder).rglob("*.py"))
    }


def methods(source: str, class_name: str) -> dict[str, str]:
    """The source text of each method of a class."""
    (found,) = (
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef) and node.name == class_name
    )
    return {
        node.name: ast.get_source_segment(source, node) or ""
        for node in found.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def lint_and_type_check(root: Path) -> None:
    """The scaffolded modules pass ruff's default rules, this repository's stricter ones, and
    mypy --strict with the project's own settings (the runtime package from this checkout:
    an editable install hides it from mypy)."""
    for config in (["--isolated"], ["--config", str(ROOT / "pyproject.toml")]):
        linted = subprocess.run(
            [BIN / "ruff", "check", *config, "services", "tests"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        assert linted.returncode == 0, linted.stdout
    packages = root.parent / "typed-packages"
    packages.mkdir(exist_ok=True)
    link = packages / "protoc_gen_pyservice"
    if not link.exists():
        link.symlink_to(ROOT / "protoc_gen_pyservice")
    typed = subprocess.run(
        [BIN / "mypy", "--strict", "services", "tests"],
        cwd=root,
        env={**os.environ, "MYPYPATH": str(packages)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert typed.returncode == 0, typed.stdout


def test_stubs_are_written_beside_the_project_and_import_lint_and_type_check(
    project: Path,
) -> None:
    result = scaffold(project)
    assert result.stdout.splitlines()[:3] == [
        "   wrote services/__init__.py",
        f"   wrote {IMPLEMENTATION}",
        f"   wrote {TESTS}",
    ]
    assert "note:" not in result.stdout  # init put the project root on pytest's path
    implementation = (project / IMPLEMENTATION).read_text()
    base = (project / "gen" / "user" / "v1" / "user_service.py").read_text()
    # Each stub is the base class's method: signature, docstring and body.
    assert methods(implementation, "UserService") == methods(base, "UserServiceBase")
    assert "class UserService(user_service.UserServiceBase):" in implementation
    assert "    UNIMPLEMENTED_RPCS: ClassVar[frozenset[str]] = frozenset()\n" in implementation
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "from services.user_service import UserService; "
            "from user.v1 import user_service; "
            "assert issubclass(UserService, user_service.UserServiceBase); "
            "assert UserService.get_user is not user_service.UserServiceBase.get_user",
        ],
        cwd=project,
        env={**os.environ, "PYTHONPATH": f"gen{os.pathsep}."},
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    lint_and_type_check(project)


def run_tests(root: Path) -> str:
    """The project's tests under pytest with no configuration at all: no pyproject settings,
    no asyncio mode; only pytest-asyncio installed."""
    result = subprocess.run(
        [BIN / "pytest", "-c", os.devnull, "-p", "no:cacheprovider", "-v", "-rs", "tests"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"gen{os.pathsep}."},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_scaffolded_tests_skip_stubs_and_check_validation_under_plain_pytest(
    project: Path,
) -> None:
    edit_proto(
        project,
        "rpc StreamUserUpdates(",
        CLIENT_STREAMS.lstrip("\n") + "\n  rpc StreamUserUpdates(",
    )
    (project / "proto" / "user" / "v1" / "user.proto").open("a").write(CLIENT_STREAMS_RESPONSE)
    assert pyservice(project, "generate").returncode == 0
    scaffold(project)
    lint_and_type_check(project)
    output = run_tests(project)
    for rpc in ("GetUser", "ListUsers", "CreateUser", "UpdateUser", "DeleteUser", "LookUp"):
        assert f"{rpc} is still a stub: it answers UNIMPLEMENTED" in output
    # Validation runs before a unary or server-streaming handler: those negative tests pass
    # while it is a stub; a client stream's requests are checked as its handler reads them.
    assert f"{TESTS}::test_get_user_rejects_invalid_requests[id-string.min_len] PASSED" in output
    assert f"{TESTS}::test_stream_user_updates SKIPPED" in output
    invalid_import = "test_import_users_rejects_invalid_requests[email-string.email]"
    assert f"{TESTS}::{invalid_import} SKIPPED" in output

    implementation = project / IMPLEMENTATION
    text = implementation.read_text()
    for stub, written in IMPLEMENTED:
        assert stub in text
        text = text.replace(stub, written)
    implementation.write_text(text)
    output = run_tests(project)
    for test in ("test_get_user", "test_import_users", "test_look_up", invalid_import):
        assert f"{TESTS}::{test} PASSED" in output
    # The stream answers, is closed, and its handler is cancelled: the fixture finds no task
    # left running.
    assert f"{TESTS}::test_stream_user_updates PASSED" in output


def test_a_proto_change_adds_stubs_and_tests_and_keeps_what_the_developer_wrote(
    project: Path,
) -> None:
    scaffold(project)
    implementation = project / IMPLEMENTATION
    implementation.write_text(implementation.read_text().replace(GET_USER_STUB, GET_USER_WRITTEN))
    tests = project / TESTS
    tests.write_text(
        tests.read_text().replace(
            "    assert isinstance(response, user_pb2.GetUserResponse)\n",
            "    assert response.user.id  # mine\n",
        )
    )
    before = snapshot(project)
    edit_proto(
        project, "rpc StreamUserUpdates(", NEW_RPC.lstrip("\n") + "\n  rpc StreamUserUpdates("
    )
    edit_proto(
        project, "message GetUserRequest {\n", "message GetUserRequest {\n  bool deleted = 2;\n"
    )
    (project / "proto" / "user" / "v1" / "user.proto").open("a").write(NEW_MESSAGE)
    assert pyservice(project, "generate").returncode == 0

    dry_run = scaffold(project, "--dry-run")
    assert snapshot(project) == before, "--dry-run wrote"
    assert f"--- a/{IMPLEMENTATION}\n+++ b/{IMPLEMENTATION}\n" in dry_run.stdout
    assert "+    async def ban_user(\n" in dry_run.stdout

    result = scaffold(project)
    assert f" updated {IMPLEMENTATION} (added stub ban_user)" in result.stdout
    assert (
        f" updated {TESTS} (added test_ban_user, added test_ban_user_rejects_invalid_requests)"
        in result.stdout
    )
    after = snapshot(project)
    added_stub = only_inserted(before[IMPLEMENTATION].decode(), after[IMPLEMENTATION].decode())
    assert added_stub.startswith("    async def ban_user(\n        self,\n")
    assert 'raise runtime.unimplemented("/user.v1.UserService/BanUser")' in added_stub
    # Proto order: BanUser comes before StreamUserUpdates.
    text = after[IMPLEMENTATION].decode()
    assert (
        text.index("def delete_user(")
        < text.index("def ban_user(")
        < text.index("def stream_user_updates(")
    )
    added_tests = only_inserted(before[TESTS].decode(), after[TESTS].decode())
    assert "async def test_ban_user(client: user_client.UserServiceClient)" in added_tests
    assert "user_testing.INVALID_BAN_USER_REQUEST" in added_tests
    assert "    assert response.user.id  # mine\n" in after[TESTS].decode()

    again = scaffold(project)
    assert snapshot(project) == after
    assert again.stdout.splitlines() == [f"    kept {IMPLEMENTATION}", f"    kept {TESTS}"]
    assert scaffold(project, "--dry-run").stdout == "nothing to change\n"
    lint_and_type_check(project)


def test_a_removed_rpc_is_reported_and_its_method_kept(project: Path) -> None:
    scaffold(project)
    before = snapshot(project)
    edit_proto(
        project,
        "  rpc StreamUserUpdates(StreamUserUpdatesRequest) returns (stream UserUpdate);\n",
        "",
    )
    assert pyservice(project, "generate").returncode == 0
    result = scaffold(project)
    assert snapshot(project) == before
    assert result.stderr.splitlines() == [
        f"warning: {IMPLEMENTATION}: UserService.stream_user_updates: no RPC of the proto has "
        "this handler any more (removed or renamed?); left in place",
        # Its test would fail at collection: said too.
        *(
            f"warning: {TESTS}: {test} calls client.stream_user_updates, which the client no "
            "longer has (its RPC removed or renamed?); change or remove the test by hand"
            for test in (
                "test_stream_user_updates",
                # StreamUserUpdatesRequest has a rule (max_items), so it has negative tests.
                "test_stream_user_updates_rejects_invalid_requests",
            )
        ),
    ]


def test_check_names_a_missing_method_until_it_is_listed_as_unimplemented(
    project: Path,
) -> None:
    scaffold(project)
    assert pyservice(project, "check").returncode == 0
    implementation = project / IMPLEMENTATION
    text = implementation.read_text()
    start = text.index("    async def delete_user(")
    end = text.index("    def stream_user_updates(")
    implementation.write_text(text[:start] + text[end:])
    failed = pyservice(project, "check")
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"{IMPLEMENTATION}: UserService has no method delete_user for RPC DeleteUser "
        "(/user.v1.UserService/DeleteUser); `pyservice scaffold` adds a stub, or list "
        "'DeleteUser' in UserService.UNIMPLEMENTED_RPCS",
        "gen/ is up to date; the implementations are not (above)",
    ]
    assert failed.stdout == ""
    implementation.write_text(
        implementation.read_text().replace("= frozenset()", '= frozenset({"DeleteUser"})')
    )
    assert pyservice(project, "check").returncode == 0
    # scaffold respects the list too.
    assert "delete_user" not in scaffold(project).stdout
    assert "def delete_user(" not in implementation.read_text()


def test_folders_come_from_pyproject_or_beside_a_src_package(project: Path) -> None:
    (project / "src" / "shop").mkdir(parents=True)
    (project / "src" / "shop" / "__init__.py").write_text("")
    scaffold(project, "--dry-run")
    result = scaffold(project)
    assert "   wrote src/shop/services/user_service.py" in result.stdout
    assert "from shop.services.user_service import UserService\n" in (project / TESTS).read_text()
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.pyservice]\nimplementations = "app/rpc"\ntests = "t"\n'
    )
    result = scaffold(project)
    assert "   wrote app/rpc/user_service.py" in result.stdout
    assert "   wrote t/test_user_service.py" in result.stdout
    assert (
        "from app.rpc.user_service import UserService\n"
        in (project / "t" / "test_user_service.py").read_text()
    )
    flagged = scaffold(project, "--implementations", "handlers")
    assert "   wrote handlers/user_service.py" in flagged.stdout
    assert 'set implementations = "handlers" in its [tool.pyservice]' in flagged.stdout


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('implementation = "x"', "[tool.pyservice] has no setting 'implementation'"),
        ('implementations = "../x"', "give a folder inside the project"),
        ('implementations = "my-services"', "cannot be part of a Python module name"),
        ("tests = 1", "tests must be a folder name"),
    ],
)
def test_bad_settings_are_one_line(project: Path, setting: str, message: str) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f"\n[tool.pyservice]\n{setting}\n")
    result = pyservice(project, "scaffold")
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_no_test_module_without_a_generated_testing_module(project: Path) -> None:
    template = project / "buf.gen.yaml"
    template.write_text(
        template.read_text().replace(
            "    strategy: all\n", "    strategy: all\n    opt: testing=false\n"
        )
    )
    assert pyservice(project, "generate").returncode == 0
    assert not (project / "gen" / "user" / "v1" / "user_testing.py").exists()
    result = scaffold(project)
    assert result.stdout.splitlines() == [
        "   wrote services/__init__.py",
        f"   wrote {IMPLEMENTATION}",
    ]


def add_proto(root: Path, proto: str, text: str) -> None:
    path = root / "proto" / proto
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    generated = pyservice(root, "generate")
    assert generated.returncode == 0, generated.stderr


def test_test_names_are_unique_and_the_class_import_clashes_with_nothing(project: Path) -> None:
    names_proto = Path(__file__).parent / "scaffold_protos" / "names" / "v1" / "names.proto"
    add_proto(project, "names/v1/names.proto", names_proto.read_text())
    scaffold(project)
    tests = (project / "tests" / "test_async_generator.py").read_text()
    defined = [
        node.name
        for node in ast.parse(tests).body
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef)
    ]
    assert defined == [
        "test_class_",
        "test_class__rejects_invalid_requests",
        "test_class_rejects_invalid_requests",
        "test_class_rejects_invalid_requests_rejects_invalid_requests",
        "test_get_user",
        "test_get_user_rejects_invalid_requests",
        "test_get_user_",
        "test_get_user__rejects_invalid_requests",
        # Free has no rule to break: no negative test with an empty parameter set.
        "test_watch",
    ]
    assert "from services.async_generator import AsyncGenerator as AsyncGenerator_\n" in tests
    assert "client = names_testing.async_generator_client_fixture(AsyncGenerator_)\n" in tests
    lint_and_type_check(project)
    output = run_tests(project)
    assert "empty parameter set" not in output
    assert scaffold(project, "--dry-run").stdout == "nothing to change\n"


def test_a_service_keeps_its_module_when_another_of_its_name_appears(project: Path) -> None:
    scaffold(project)
    implementation = project / IMPLEMENTATION
    implementation.write_text(implementation.read_text().replace(GET_USER_STUB, GET_USER_WRITTEN))
    before = snapshot(project)
    user_proto = (project / "proto" / "user" / "v1" / "user.proto").read_text()
    add_proto(
        project,
        "user/v2/user.proto",
        user_proto.replace("package user.v1;", "package user.v2;"),
    )
    result = scaffold(project)
    after = snapshot(project)
    for kept in (IMPLEMENTATION, TESTS):
        assert after[kept] == before[kept]
    assert "   wrote services/user_v2_user_service.py" in result.stdout
    assert "   wrote tests/test_user_v2_user_service.py" in result.stdout
    assert "user_v1_user_service" not in result.stdout
    assert pyservice(project, "check").returncode == 0

    # A copy of the module, sorted first: the module scaffold named stays the one it updates.
    copy = project / "services" / "copy_of_user_service.py"
    copy.write_text(implementation.read_text())
    result = scaffold(project)
    assert result.stderr.splitlines() == [
        f"warning: {IMPLEMENTATION}: more than one module has a class deriving from "
        "UserServiceBase (also services/copy_of_user_service.py); scaffold keeps this one up "
        "to date"
    ]
    assert snapshot(project) == {**after, "services/copy_of_user_service.py": copy.read_bytes()}


def test_an_aliased_base_is_found_and_check_reports_a_module_without_the_class(
    project: Path,
) -> None:
    scaffold(project)
    implementation = project / IMPLEMENTATION
    text = implementation.read_text()
    aliased = text.replace(
        "class UserService(user_service.UserServiceBase):",
        "Base = user_service.UserServiceBase\n\n\nclass UserService(Base):",
    )
    start = aliased.index("    async def delete_user(")
    end = aliased.index("    def stream_user_updates(")
    implementation.write_text(aliased[:start] + aliased[end:])
    failed = pyservice(project, "check")
    assert failed.returncode == 1
    assert "UserService has no method delete_user" in failed.stderr
    result = scaffold(project)
    assert "no class derives" not in result.stderr
    assert f" updated {IMPLEMENTATION} (added stub delete_user)" in result.stdout

    implementation.write_text('"""Not written yet."""\n')
    failed = pyservice(project, "check")
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"{IMPLEMENTATION}: no class derives from UserServiceBase, so nothing implements "
        "user.v1.UserService",
        "gen/ is up to date; the implementations are not (above)",
    ]


def test_listed_rpcs_get_no_tests(project: Path) -> None:
    scaffold(project)
    implementation = project / IMPLEMENTATION
    implementation.write_text(
        implementation.read_text().replace("= frozenset()", '= frozenset({"DeleteUser"})')
    )
    (project / TESTS).unlink()
    scaffold(project)
    assert "delete_user" not in (project / TESTS).read_text()
    assert "kept" in scaffold(project).stdout.splitlines()[-1]


def test_tests_follow_a_changed_request_type_and_say_what_they_cannot(project: Path) -> None:
    scaffold(project)
    edit_proto(
        project,
        "rpc DeleteUser(DeleteUserRequest)",
        "rpc DeleteUser(GetUserRequest)",
    )
    edit_proto(project, "rpc ListUsers(ListUsersRequest)", "rpc ListUsers(stream ListUsersRequest)")
    assert pyservice(project, "generate").returncode == 0
    result = scaffold(project)
    tests = (project / TESTS).read_text()
    assert "client.delete_user(user_testing.valid_get_user_request())" in tests
    assert "user_testing.valid_delete_user_request" not in tests
    assert "case: testing.InvalidCase[user_pb2.GetUserRequest]" in tests.split("delete_user")[-2]
    assert result.stderr.splitlines() == [
        f"warning: {IMPLEMENTATION}: UserService.list_users: the RPC's streaming kind changed; "
        "change the method to match UserServiceBase.list_users by hand",
        f"warning: {TESTS}: test_list_users: the streaming kind of ListUsers changed; change "
        "its call of client.list_users by hand",
        f"warning: {TESTS}: test_list_users_rejects_invalid_requests: the streaming kind of "
        "ListUsers changed; change its call of client.list_users by hand",
    ]


@pytest.mark.parametrize(("pythonpath", "note"), [('"gen ."', False), ('"./gen"', True)])
def test_a_pythonpath_string_is_read_as_paths(project: Path, pythonpath: str, note: bool) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert 'pythonpath = ["gen", "."]' in text
    pyproject.write_text(text.replace('pythonpath = ["gen", "."]', f"pythonpath = {pythonpath}"))
    assert ("note: the tests import services" in scaffold(project).stdout) is note
