"""The testing module's examples against the generated validators, over every message of every
test proto: one RPC per message (nested ones too) of a service that exists only for this, so
each message is a request type with a valid_*() builder and INVALID_* cases."""

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2

from tests.conftest import descriptor_set
from tests.examples_check import problems
from tests.validation.conftest import PLUGIN, PROTO_ROOT, THIRD_PARTY, _protoc, proto_files


def _message_names(messages: list[descriptor_pb2.DescriptorProto], prefix: str) -> list[str]:
    names = []
    for message in messages:
        if not message.options.map_entry:
            names.append(prefix + message.name)
            names += _message_names(list(message.nested_type), f"{prefix}{message.name}.")
    return names


@pytest.fixture(scope="module")
def every_message(validation_out: Path, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    files = proto_files()
    names = [
        name
        for file in descriptor_set(PROTO_ROOT, files, [THIRD_PARTY]).file
        if file.name in files
        for name in _message_names(list(file.message_type), f"{file.package}.")
    ]
    source = tmp_path_factory.mktemp("every_message")
    (source / "everything").mkdir()
    (source / "everything" / "service.proto").write_text(
        'syntax = "proto3";\npackage everything;\n'
        + "".join(f'import "{file}";\n' for file in files)
        + "service Everything {\n"
        + "".join(
            f"  rpc M{index}(.{name}) returns (.{name});\n" for index, name in enumerate(names)
        )
        + "}\n"
    )
    _protoc(
        f"-I{source}",
        f"--plugin=protoc-gen-pyservice={PLUGIN}",
        f"--python_out={validation_out}",
        f"--pyservice_out={validation_out}",
        "everything/service.proto",
    )
    importlib.invalidate_caches()
    return importlib.import_module("everything.service_testing")


def test_every_message_is_a_request_type(every_message: ModuleType) -> None:
    builders = [name for name in vars(every_message) if name.startswith("valid_")]
    assert len(builders) >= 40
    assert "valid_kitchen_sink" in builders and "valid_no_rules_child" in builders


def test_valid_requests_pass_and_each_case_breaks_exactly_its_rule(
    every_message: ModuleType,
) -> None:
    assert problems(every_message) == []


def test_every_rule_has_a_case_or_a_reason_to_have_none(every_message: ModuleType) -> None:
    cases = [
        (name.removeprefix("INVALID_"), case.field_path, case.rule_id)
        for name, value in vars(every_message).items()
        if name.startswith("INVALID_")
        for case in value
    ]
    assert len(cases) >= 400
    # defined_only next to `in`, whose members are all defined: a number no value has always
    # breaks `in` too. protovalidate: `*_empty` rules under IGNORE_IF_ZERO_VALUE never run;
    # high_sum cannot break while low < high holds with one change; CEL on a whole collection
    # and message rules over maps are not solved; a tree's children cannot outnumber
    # max_items without recursing; a message oneof rule is no oneof to clear.
    empty_rules = [
        ("email", "string.email_empty"),
        ("host", "string.hostname_empty"),
        ("address", "string.ip_empty"),
        ("prefix", "string.ip_prefix_empty"),
        ("endpoint", "string.host_and_port_empty"),
        ("id", "string.uuid_empty"),
        ("ip_bytes", "bytes.ipv4_empty"),
        ("header", "string.well_known_regex.header_name_empty"),
        ("ulid", "string.ulid_empty"),
    ]
    assert [
        (skip.message, skip.field_path, skip.rule_id) for skip in every_message.SKIPPED_CASES
    ] == [
        ("vt.enums.Enums", "defined_in", "enum.defined_only"),
        *(("vt.PvScalars", path, rule) for path, rule in empty_rules),
        ("vt.PvCustom", "high", "pv.high_sum"),
        ("vt.PvCustom", "words", "pv.words"),
        ("vt.PvCustom", "", "pv.labels"),
        ("vt.PvNode", "children", "repeated.max_items"),
        ("vt.PvMore", "nodes[0].children", "repeated.max_items"),
        ("vt.PvMore", "root.children", "repeated.max_items"),
        ("vt.PvMore", "", "message.oneof"),
        ("vt.PvReview", "ds", "ds"),
        ("vt.PvReview", "wm2", "wm2"),
        ("vt.PvReview", "zero_items[0].n", "int32.gt"),
        ("vt.PvReview", 'zero_values["a"].n', "int32.gt"),
        ("vt.PvReview", "", "review.lists"),
    ]


@pytest.mark.parametrize(
    ("cases", "expected"),
    [
        (
            "INVALID_REPEATEDS",
            {
                ("min2", "repeated.min_items"),
                ("unique_tags", "repeated.unique"),
                ("emails[0]", "string.email"),
                ("items[0].email", "string.email"),
                ("remotes[0].code", "string.pattern"),
                ("colors[0]", "enum.defined_only"),
            },
        ),
        (
            "INVALID_MAPS",
            {
                ('labels[""]', "string.min_len"),  # a key breaks it
                ('labels["aa"]', "string.max_len"),  # a value does
                ("flags[false]", "bool.const"),
                ('no_sparse["a"].email', "string.email"),
                ("min_pairs", "map.min_pairs"),
            },
        ),
        (
            "INVALID_TEAM",
            {
                ("members[0].email", "string.email"),
                ('members[0].extras["a"].email', "string.email"),
                ("members[0].tags[0]", "string.min_len"),
            },
        ),
        (
            "INVALID_OUTER",
            {
                ("required_inner", "message.required"),
                ("required_inner.name", "string.min_len"),
                ("payload.nested.name", "string.min_len"),
                ("remote.code", "string.pattern"),
            },
        ),
        ("INVALID_CHOICE", {("kind", "oneof.required"), ("inner.name", "string.min_len")}),
        ("INVALID_TIMESTAMPS", {("lt_now", "timestamp.lt_now"), ("within", "timestamp.within")}),
        ("INVALID_WRAPPERS", {("required_email", "message.required"), ("name", "string.min_len")}),
    ],
)
def test_cases_reach_into_nested_messages_collections_and_oneofs(
    every_message: ModuleType, cases: str, expected: set[tuple[str, str]]
) -> None:
    found = {(case.field_path, case.rule_id) for case in getattr(every_message, cases)}
    assert expected <= found


def test_case_names_are_unique_pytest_ids(every_message: ModuleType) -> None:
    for name, value in vars(every_message).items():
        if name.startswith("INVALID_"):
            names = [case.name for case in value]
            assert len(names) == len(set(names)), name
            assert all(re.fullmatch(r"\S+-[a-z0-9_]+(\.[a-z0-9_]+)*", n) for n in names), names
