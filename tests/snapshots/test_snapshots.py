"""One snapshot per generated file of user.v1 and common.v1, stored as .py so diffs read as code."""

import pytest
from protoc_gen_pyservice.pipeline import generate
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from tests.conftest import GENERATED, PROJECT_INCLUDES, ROOT, make_request, project_request


class PythonSnapshot(SingleFileSnapshotExtension):
    file_extension = "py"
    _write_mode = WriteMode.TEXT


RESPONSE = generate(project_request())
FILES = {file.name: file.content for file in RESPONSE.file}


def test_the_expected_files_are_generated() -> None:
    assert not RESPONSE.error
    # common.v1 has no rules anywhere, so no validator module.
    assert sorted(FILES) == [
        "user/v1/user_client.py",
        "user/v1/user_service.py",
        "user/v1/user_testing.py",
        "user/v1/user_validate.py",
    ]


@pytest.mark.parametrize("name", sorted(FILES))
def test_generated_file(name: str, snapshot: SnapshotAssertion) -> None:
    assert FILES[name] == snapshot(extension_class=PythonSnapshot)


@pytest.mark.parametrize("name", sorted(FILES))
def test_checked_in_generated_file_matches(name: str) -> None:
    assert (GENERATED / name).read_text() == FILES[name]


RULE_HEAVY_ROOT = ROOT / "tests" / "validation" / "protos"
RULE_HEAVY = generate(
    make_request(
        RULE_HEAVY_ROOT,
        ["vt/collections.proto", "vt/strings.proto", "vt/wkt.proto"],
        includes=PROJECT_INCLUDES[-1:],
    )
)
RULE_HEAVY_FILES = {
    file.name: file.content for file in RULE_HEAVY.file if file.name.endswith("_validate.py")
}


def test_rule_heavy_protos_generate() -> None:
    assert not RULE_HEAVY.error
    assert sorted(RULE_HEAVY_FILES) == [
        "vt/collections_validate.py",
        "vt/strings_validate.py",
        "vt/wkt_validate.py",
    ]


@pytest.mark.parametrize("name", sorted(RULE_HEAVY_FILES))
def test_rule_heavy_validators(name: str, snapshot: SnapshotAssertion) -> None:
    assert RULE_HEAVY_FILES[name] == snapshot(extension_class=PythonSnapshot)


# protovalidate: a rule-heavy buf.validate proto whose PvCustom message carries custom CEL on
# fields and on the message itself.
PROTOVALIDATE = generate(
    make_request(RULE_HEAVY_ROOT, ["vt/protovalidate.proto"], includes=PROJECT_INCLUDES[-1:])
)
PROTOVALIDATE_FILES = {
    file.name: file.content for file in PROTOVALIDATE.file if file.name.endswith("_validate.py")
}


def test_protovalidate_protos_generate() -> None:
    assert not PROTOVALIDATE.error
    assert sorted(PROTOVALIDATE_FILES) == ["vt/protovalidate_validate.py"]


@pytest.mark.parametrize("name", sorted(PROTOVALIDATE_FILES))
def test_protovalidate_validators(name: str, snapshot: SnapshotAssertion) -> None:
    assert PROTOVALIDATE_FILES[name] == snapshot(extension_class=PythonSnapshot)
