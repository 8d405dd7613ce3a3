"""Per-call time of message validation: our generated validators against their peers.

One run compiles the benchmark protos into a temp dir, checks that every contender
gives the same valid/invalid verdict on every instance (and that our buf.validate
validators report exactly protovalidate's violations), measures each contender's
first call in fresh processes, then times steady-state calls timeit-style (many
calls per sample, median of several samples, contenders interleaved round-robin).

    .venv/bin/python bench/bench_validate.py                 # Markdown on stdout (~1.5 min)
    .venv/bin/python bench/bench_validate.py --repeats 3 --first-call-samples 1  # quick
    .venv/bin/python bench/bench_validate.py --only pyservice-buf --only custom
    .venv/bin/python bench/bench_validate.py --write         # also update BENCHMARKS.md

See bench/README.md for the contenders, workloads and what each number means.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import importlib.resources
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple, TypeVar

import google.protobuf
from google.protobuf.internal import api_implementation
from protoc_gen_pyservice.runtime.validation import Violation
from protoc_gen_pyservice.runtime.validation import pattern as re2_pattern

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BENCH_PROTOS = BENCH_DIR / "protos"
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
START_MARKER = "<!-- bench:validate:start -->"
END_MARKER = "<!-- bench:validate:end -->"
BENCHMARKS_HEADER = (
    "# Benchmarks\n\n"
    "Numbers recorded by the scripts in `bench/`. Sections between `bench:*` markers\n"
    "are rewritten by those scripts; edit outside them.\n"
)

# protoc include dirs for user.v1 (besides grpc_tools' _proto) and for the bench protos.
PROTO_INCLUDES = (
    REPO_ROOT / "proto",
    REPO_ROOT / "protoc_gen_pyservice" / "proto",
    REPO_ROOT / ".pyservice" / "include",
    BENCH_PROTOS,
)
# --python_out and our --pyservice_out, one protoc run per flavour: protoc-gen-validate
# rules (our "pyservice" contender) and their buf.validate twins ("pyservice-buf").
PGV_FILES = ("user/v1/user.proto", "benchpb/v1/order.proto")
BUF_FILES = ("benchpb/v2/user.proto", "benchpb/v2/order.proto", "benchpb/v2/custom.proto")
PYTHON_ONLY_FILES = (  # --python_out only: the imports of the above
    "validate/validate.proto",
    "pyservice/options.proto",
    "buf/validate/validate.proto",
)

OURS = "pyservice"
OURS_BUF = "pyservice-buf"
PGV = "pgv"
PGV_SHIM = "pgv+shim"
PROTOVALIDATE = "protovalidate"
HAND = "hand"
CONTENDER_NAMES = (OURS, OURS_BUF, PGV, PGV_SHIM, PROTOVALIDATE, HAND)
SELECTABLE = (OURS, OURS_BUF, PGV, PROTOVALIDATE, HAND)  # pgv+shim comes with pgv
SMALL, LARGE, CUSTOM = "small", "large", "custom"
WORKLOADS = (SMALL, LARGE, CUSTOM)
VALID, INVALID = "valid", "invalid"
PGV_FLAVOUR, BUF_FLAVOUR = "pgv", "buf"  # which rules annotate the proto: Instances fields
# The flavours each workload has instances of: `custom` uses CEL, which PGV does not have.
WORKLOAD_FLAVOURS = {
    SMALL: (PGV_FLAVOUR, BUF_FLAVOUR),
    LARGE: (PGV_FLAVOUR, BUF_FLAVOUR),
    CUSTOM: (BUF_FLAVOUR,),
}


@dataclass(frozen=True)
class Target:
    """`contender` / `peer` per-call time on `workload` must be <= `limit` on `instances`."""

    contender: str
    workload: str
    peer: str
    limit: float  # below 1: stated as "1/limit x faster than peer"
    instances: tuple[str, ...] = (VALID, INVALID)


MAX_RATIO_TO_HAND = 1.2
TARGETS = (
    # The PGV-annotated protos.
    Target(OURS, SMALL, HAND, MAX_RATIO_TO_HAND),
    Target(OURS, LARGE, HAND, MAX_RATIO_TO_HAND),
    Target(OURS, SMALL, PROTOVALIDATE, 1 / 2),
    Target(OURS, SMALL, PGV, 1 / 5),
    Target(OURS, LARGE, PROTOVALIDATE, 1.0),
    # The buf.validate protos, against protovalidate on the very same messages (issue 11).
    Target(OURS_BUF, SMALL, PROTOVALIDATE, 1 / 3),
    Target(OURS_BUF, LARGE, PROTOVALIDATE, 1.2, (VALID,)),
    Target(OURS_BUF, LARGE, PROTOVALIDATE, 1 / 1.5, (INVALID,)),
    Target(OURS_BUF, CUSTOM, PROTOVALIDATE, 1 / 5),
)
# "No first-call compile": our first call imports the generated module (and what it
# imports) and runs it; nothing is compiled. protovalidate compiles a type's rules then.
FIRST_CALL_CONTENDER = OURS_BUF
MAX_FIRST_CALL_S = 0.002

DEFAULT_REPEATS = 7
DEFAULT_MIN_TIME_S = 0.15
DEFAULT_FIRST_CALL_SAMPLES = 5
CHILD_TIMEOUT_S = 120.0

LINE_ITEMS = 10
LARGE_CHECKS_WHEN_VALID = 127  # derivation in bench/protos/benchpb/v1/order.proto


# --------------------------------------------------------------------------- generated code


@dataclass(frozen=True)
class Generated:
    """The compiled benchmark protos, and where our plugin failed."""

    directory: Path
    ours_failures: dict[str, str]  # contender -> why --pyservice_out failed on its protos


def grpc_tools_include() -> Path:
    path = Path(str(importlib.resources.files("grpc_tools").joinpath("_proto")))
    if not path.is_dir():
        raise SystemExit(f"grpc_tools _proto dir not found at {path}")
    return path


def run_protoc(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=CHILD_TIMEOUT_S,
    )


def first_error_line(stderr: str) -> str:
    """The exception line of a traceback, else the first non-empty line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "no error output"
    if lines[0].startswith("Traceback"):
        return lines[-1]
    return lines[0]


def generate(out: Path) -> Generated:
    """Compile everything into ``out``; our plugin's failure is recorded, not fatal."""
    out.mkdir(parents=True, exist_ok=True)
    for path in PROTO_INCLUDES:
        if not path.is_dir():
            raise SystemExit(f"include dir {path} is missing (run `pyservice fetch-protos`)")
    includes = [f"--proto_path={path}" for path in (*PROTO_INCLUDES, grpc_tools_include())]
    plugin = Path(sys.executable).parent / "protoc-gen-pyservice"
    failures: dict[str, str] = {}
    for contender, files in ((OURS, PGV_FILES), (OURS_BUF, BUF_FILES)):
        ours = run_protoc(
            [
                *includes,
                f"--python_out={out}",
                f"--plugin=protoc-gen-pyservice={plugin}",
                f"--pyservice_out={out}",
                *files,
            ]
        )
        if ours.returncode == 0:
            continue
        failures[contender] = (
            f"protoc-gen-pyservice failed on {', '.join(files)}: {first_error_line(ours.stderr)}"
        )
        plain = run_protoc([*includes, f"--python_out={out}", *files])
        if plain.returncode != 0:
            raise SystemExit(f"protoc failed on {files}:\n{plain.stderr}")
    rest = run_protoc([*includes, f"--python_out={out}", *PYTHON_ONLY_FILES])
    if rest.returncode != 0:
        raise SystemExit(f"protoc failed on {PYTHON_ONLY_FILES}:\n{rest.stderr}")
    return Generated(out, failures)


@dataclass(frozen=True)
class Modules:
    """The generated _pb2 modules: PGV-annotated (v1) and buf.validate-annotated (v2)."""

    user_v1: ModuleType
    order_v1: ModuleType
    user_v2: ModuleType
    order_v2: ModuleType
    custom_v2: ModuleType


def load_modules(directory: Path) -> Modules:
    """Import the generated modules from ``directory``, and only from there."""
    sys.path.insert(0, str(directory))
    names = (
        "user.v1.user_pb2",
        "benchpb.v1.order_pb2",
        "benchpb.v2.user_pb2",
        "benchpb.v2.order_pb2",
        "benchpb.v2.custom_pb2",
    )
    modules = [importlib.import_module(name) for name in (*names, "buf.validate.validate_pb2")]
    for module in modules:
        origin = Path(module.__file__ or "")
        if not origin.is_relative_to(directory):
            raise SystemExit(f"{module.__name__} was imported from {origin}, not {directory}")
    return Modules(*modules[: len(names)])


# --------------------------------------------------------------------------- instances


@dataclass(frozen=True)
class Instances:
    """The messages one workload validates: per proto flavour, a valid and an invalid one."""

    pgv: dict[str, Any] | None  # VALID/INVALID -> message of the PGV-annotated proto
    buf: dict[str, Any]  # the same values in the buf.validate-annotated proto

    def message(self, flavour: str, instance: str) -> Any:
        messages = self.pgv if flavour == PGV_FLAVOUR else self.buf
        if messages is None:
            raise ValueError(f"no {flavour} instances in this workload")
        return messages[instance]


def create_user(module: ModuleType, valid: bool) -> Any:
    if valid:
        return module.CreateUserRequest(
            email="ada.lovelace@example.com",
            first_name="Ada",
            last_name="Lovelace",
            password="correct horse battery staple",
            role=1,
        )
    # Breaks email, first_name (min_len 1) and password (min_len 8).
    return module.CreateUserRequest(
        email="ada.lovelace(at)example", first_name="", last_name="Lovelace", password="hunter2"
    )


def order(module: ModuleType, valid: bool) -> Any:
    address = module.Address
    message = module.Order(
        order_id="3f1c2a9e-8b7d-4c6e-9a5f-1d2e3b4c5a6f",
        customer_email="ada.lovelace@example.com",
        shipping_address=address(
            line1="12 Analytical Row",
            line2="Flat 3",
            city="London",
            postal_code="SW1A 1AA",
            country_code="GB",
        ),
        line_items=[
            module.LineItem(
                sku=f"ENG-{1000 + index}",
                name=f"Difference engine part {index}",
                quantity=index + 1,
                unit_price_cents=1999 + index * 100,
                currency=("USD", "EUR", "GBP", "JPY")[index % 4],
                discount_percent=index * 5,
            )
            for index in range(LINE_ITEMS)
        ],
        labels={"channel": "web", "campaign": "spring_sale", "gift_wrap": "yes"},
        priority=3,
    )
    if valid:
        return message
    # Eight violations, at every level: top-level fields, the required and the
    # optional embedded message, repeated items and a map key.
    message.customer_email = "ada.lovelace(at)example"
    message.priority = 12
    message.shipping_address.postal_code = "!"
    message.billing_address.CopyFrom(message.shipping_address)
    message.billing_address.postal_code = "EC1A 1BB"
    message.billing_address.city = ""
    message.line_items[3].quantity = 0
    message.line_items[5].sku = "eng-1005"
    message.line_items[7].currency = "XXX"
    del message.labels["gift_wrap"]
    message.labels["Gift Wrap"] = "yes"
    return message


def booking(module: ModuleType, valid: bool) -> Any:
    message = module.Booking(
        booking_ref="BK-4F7Q2Z9",
        check_in_day=120,
        check_out_day=125,
        guests=[
            module.Guest(name="Ada", age=36),
            module.Guest(name="William", age=41),
            module.Guest(name="Byron", age=9),
        ],
        tags=["sea_view", "late_checkout", "quiet", "breakfast"],
        total_cents=84000,
        deposit_cents=20000,
    )
    if valid:
        return message
    # Breaks every rule once: all five field rules and both message rules.
    message.booking_ref = "bk-4f7q2z9"
    message.check_in_day = 0
    message.check_out_day = 45  # after check-in, but a 45-night stay
    for guest in message.guests:
        guest.age = min(guest.age, 17)
    message.tags.append("")
    message.total_cents = 84050
    message.deposit_cents = 1000
    return message


def build_instances(modules: Modules) -> dict[str, Instances]:
    def pair(build: Callable[[ModuleType, bool], Any], module: ModuleType) -> dict[str, Any]:
        return {VALID: build(module, True), INVALID: build(module, False)}

    return {
        SMALL: Instances(pair(create_user, modules.user_v1), pair(create_user, modules.user_v2)),
        LARGE: Instances(pair(order, modules.order_v1), pair(order, modules.order_v2)),
        CUSTOM: Instances(None, pair(booking, modules.custom_v2)),
    }


WORKLOAD_TITLES = {
    SMALL: "`CreateUserRequest`: 4 string rules (one email) in the `benchpb.v2` twin and "
    "the floor, 11 in `user.v1` (see the note); invalid breaks 3",
    LARGE: f"`Order`: {LINE_ITEMS} line items, 3 labels, nested addresses; "
    f"{LARGE_CHECKS_WHEN_VALID} rule checks when valid; invalid breaks 8",
    CUSTOM: "`benchpb.v2.Booking`: custom CEL only, 5 field and 2 message rules (startsWith, "
    "size, exists and all over 3 guests and 4 tags, arithmetic, cross-field); invalid breaks 7",
}
WORKLOAD_NOTES = {
    SMALL: (
        "`user.v1.CreateUserRequest` (`proto/user/v1/user.proto`) gained rules after its twin "
        "`benchpb.v2.CreateUserRequest` and the floor were written: email max_len 254, "
        "first and last name max_len 100 and not_contains NUL, password max_len 128, role "
        "defined_only. `pyservice` and `pgv` check those 11 rules; `pyservice-buf`, "
        "`protovalidate` and `hand` check the original 4 (the same rules as each other), "
        "so `pyservice`'s x hand here is not like for like."
    ),
}


# --------------------------------------------------------------------------- hand-written


class Reported(NamedTuple):
    """One violation as a contender lists it; the hand-written floor fills the first two."""

    field_path: str
    rule_id: str
    rule: str = ""  # protovalidate's rule path (`string.min_len`, `cel[0]`); "" for none
    for_key: bool = False
    message: str = ""

    def exact(self) -> tuple[str, str, str, bool]:
        """What must equal protovalidate's: all but the message text."""
        return self.field_path, self.rule_id, self.rule, self.for_key


Found = list[Reported]

# protovalidate's email (the WHATWG HTML one) and UUID formats; patterns are the
# proto's, without anchors, for fullmatch (RE2 semantics: `$` does not match before \n).
_EMAIL = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
).fullmatch
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
).fullmatch
# `pattern` rules are RE2 by the specification (its syntax, semantics and linear time), so
# the floor runs them on the same single RE2 binding call generated code makes; Python's `re`
# would be a different check, and an unsafe one on hostile input.
_POSTAL_CODE = re2_pattern("^[A-Z0-9][A-Z0-9 -]{1,8}[A-Z0-9]$")
_SKU = re2_pattern("^[A-Z]{3}-[0-9]{4,8}$")
_LABEL_KEY = re2_pattern("^[a-z][a-z0-9_]*$")
_CURRENCIES = frozenset(("USD", "EUR", "GBP", "JPY"))
# The floor returns what the runtime's API returns, a Violation with a message, so the invalid
# instances compare equal work; one constant message stands for the specific ones.
_INVALID = "value is invalid"
HandFound = list[Violation]


def hand_create_user(m: Any) -> HandFound:
    """user.v1.CreateUserRequest's rules as straight-line code: the floor."""
    found: HandFound = []
    value = m.email
    if not value:
        found.append(Violation("email", "string.email_empty", _INVALID))
    elif _EMAIL(value) is None:
        found.append(Violation("email", "string.email", _INVALID))
    if not m.first_name:
        found.append(Violation("first_name", "string.min_len", _INVALID))
    if not m.last_name:
        found.append(Violation("last_name", "string.min_len", _INVALID))
    if len(m.password) < 8:
        found.append(Violation("password", "string.min_len", _INVALID))
    return found


def _hand_address(a: Any, prefix: str, found: HandFound) -> None:
    value = a.line1
    if not value:
        found.append(Violation(prefix + "line1", "string.min_len", _INVALID))
    elif len(value) > 100:
        found.append(Violation(prefix + "line1", "string.max_len", _INVALID))
    if len(a.line2) > 100:
        found.append(Violation(prefix + "line2", "string.max_len", _INVALID))
    value = a.city
    if not value:
        found.append(Violation(prefix + "city", "string.min_len", _INVALID))
    elif len(value) > 64:
        found.append(Violation(prefix + "city", "string.max_len", _INVALID))
    if not _POSTAL_CODE(a.postal_code):
        found.append(Violation(prefix + "postal_code", "string.pattern", _INVALID))
    if len(a.country_code) != 2:
        found.append(Violation(prefix + "country_code", "string.len", _INVALID))


def hand_order(m: Any) -> HandFound:
    """benchpb.v1.Order's rules as straight-line code: the floor."""
    found: HandFound = []
    value = m.order_id
    if not value:
        found.append(Violation("order_id", "string.uuid_empty", _INVALID))
    elif _UUID(value) is None:
        found.append(Violation("order_id", "string.uuid", _INVALID))
    value = m.customer_email
    if not value:
        found.append(Violation("customer_email", "string.email_empty", _INVALID))
    elif _EMAIL(value) is None:
        found.append(Violation("customer_email", "string.email", _INVALID))
    if m.HasField("shipping_address"):
        _hand_address(m.shipping_address, "shipping_address.", found)
    else:
        found.append(Violation("shipping_address", "required", _INVALID))
    if m.HasField("billing_address"):
        _hand_address(m.billing_address, "billing_address.", found)
    items = m.line_items
    count = len(items)
    if count < 1:
        found.append(Violation("line_items", "repeated.min_items", _INVALID))
    elif count > 50:
        found.append(Violation("line_items", "repeated.max_items", _INVALID))
    for index, item in enumerate(items):
        value = item.sku
        if len(value) > 16:
            found.append(Violation(f"line_items[{index}].sku", "string.max_len", _INVALID))
        if not _SKU(value):
            found.append(Violation(f"line_items[{index}].sku", "string.pattern", _INVALID))
        value = item.name
        if not value:
            found.append(Violation(f"line_items[{index}].name", "string.min_len", _INVALID))
        elif len(value) > 200:
            found.append(Violation(f"line_items[{index}].name", "string.max_len", _INVALID))
        number = item.quantity
        if number <= 0 or number > 1000:
            found.append(Violation(f"line_items[{index}].quantity", "int32.gt_lte", _INVALID))
        number = item.unit_price_cents
        if number < 0 or number >= 100000000:
            found.append(
                Violation(f"line_items[{index}].unit_price_cents", "int64.gte_lt", _INVALID)
            )
        if item.currency not in _CURRENCIES:
            found.append(Violation(f"line_items[{index}].currency", "string.in", _INVALID))
        if item.discount_percent > 100:
            found.append(Violation(f"line_items[{index}].discount_percent", "uint32.lte", _INVALID))
    labels = m.labels
    if len(labels) > 16:
        found.append(Violation("labels", "map.max_pairs", _INVALID))
    for key, value in labels.items():
        size = len(key)
        if size < 1:
            found.append(Violation(f"labels[{key_text(key)}]", "string.min_len", _INVALID))
        elif size > 63:
            found.append(Violation(f"labels[{key_text(key)}]", "string.max_len", _INVALID))
        if not _LABEL_KEY(key):
            found.append(Violation(f"labels[{key_text(key)}]", "string.pattern", _INVALID))
        if len(value) > 256:
            found.append(Violation(f"labels[{key_text(key)}]", "string.max_len", _INVALID))
    number = m.priority
    if number < 0 or number > 9:
        found.append(Violation("priority", "int32.gte_lte", _INVALID))
    return found


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def hand_booking(m: Any) -> HandFound:
    """benchpb.v2.Booking's CEL rules as straight-line code: the floor. Like CEL, it fails on
    an int64 overflow instead of calling the message invalid."""
    found: HandFound = []
    value = m.booking_ref
    if not (value.startswith("BK-") and len(value) == 10):
        found.append(Violation("booking_ref", "booking.ref_format", _INVALID))
    check_in = m.check_in_day
    if not 1 <= check_in <= 366:
        found.append(Violation("check_in_day", "booking.check_in_day", _INVALID))
    for guest in m.guests:
        if guest.age >= 18:
            break
    else:
        found.append(Violation("guests", "booking.adult", _INVALID))
    for tag in m.tags:
        if not 1 <= len(tag) <= 20:
            found.append(Violation("tags", "booking.tags", _INVALID))
            break
    total = m.total_cents
    if total <= 0 or total % 100:
        found.append(Violation("total_cents", "booking.total_whole", _INVALID))
    check_out = m.check_out_day
    if check_out <= check_in or check_out - check_in > 30:
        found.append(Violation("", "booking.stay_order", _INVALID))
    deposit = m.deposit_cents * 5
    if not _INT64_MIN <= deposit <= _INT64_MAX:
        raise OverflowError("deposit_cents * 5 overflows int64")
    if deposit < total:
        found.append(Violation("", "booking.deposit", _INVALID))
    return found


def key_text(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- contenders


@dataclass(frozen=True)
class Subject:
    """How one contender validates one workload's messages."""

    function: Callable[[Any], Any]
    raises: type[BaseException] | None  # PGV signals "invalid" by raising this
    flavour: str  # PGV_FLAVOUR or BUF_FLAVOUR: which Instances field it validates
    # Turn a result into violations; None when the contender cannot list them.
    describe: Callable[[Any], Found] | None

    def statement(self) -> str:
        if self.raises is None:
            return "f(m)"
        return "try:\n    f(m)\nexcept E:\n    pass"

    def namespace(self, message: Any) -> dict[str, Any]:
        return {"f": self.function, "m": message, "E": self.raises}


@dataclass(frozen=True)
class Contender:
    name: str
    description: str
    flavour: str | None  # the instances it validates; None: each workload's own (hand)
    informative: bool = False


CONTENDERS = {
    OURS: Contender(
        OURS,
        "generated validators (PGV rules), `runtime.validation.collect_violations`",
        PGV_FLAVOUR,
    ),
    OURS_BUF: Contender(
        OURS_BUF,
        "generated validators (buf.validate rules), `runtime.validation.collect_violations`",
        BUF_FLAVOUR,
    ),
    PGV: Contender(PGV, "protoc-gen-validate's Python runtime, `validator.validate`", PGV_FLAVOUR),
    PGV_SHIM: Contender(
        PGV_SHIM,
        "`pgv` with a shim giving field descriptors the `label` protobuf 7 removed",
        PGV_FLAVOUR,
        informative=True,
    ),
    PROTOVALIDATE: Contender(
        PROTOVALIDATE,
        "`protovalidate.Validator().collect_violations` (Rust engine)",
        BUF_FLAVOUR,
    ),
    HAND: Contender(HAND, "hand-written straight-line checks (the floor)", None),
}


def takes_part(name: str, workload: str) -> bool:
    """Whether a contender runs on a workload: it has instances of the contender's flavour."""
    flavour = CONTENDERS[name].flavour
    return flavour is None or flavour in WORKLOAD_FLAVOURS[workload]


PGV_LABEL_NOTE = (
    "`pgv` fails here: protoc-gen-validate 1.3.3 reads `FieldDescriptor.label`, which "
    "protobuf 7 removed, when it generates code for an embedded message field without "
    "rules (`Order.billing_address`). `pgv+shim` is PGV with that attribute restored on "
    "the descriptors its code generator reads; it is not a target."
)

PGV_NUL_NOTE = (
    '`pgv` fails here: `user.v1.CreateUserRequest`\'s names have `not_contains: "\\000"`, '
    "which protoc-gen-validate 1.3.3 writes into the Python source it generates as a raw "
    "NUL character, so `exec` refuses it (the shim does not touch that)."
)

# How our runtime fails when the generated x_validate modules are missing.
NOT_GENERATED = ("MissingValidatorError", "ModuleNotFoundError", "ImportError")


class Unavailable(Exception):
    """A contender cannot run at all (import error)."""


def ours_violations(result: Any) -> Found:
    return [Reported(v.field_path, v.rule_id, v.rule, v.for_key, v.message) for v in result]


def protovalidate_violations(result: Any) -> Found:
    found: Found = []
    for violation in result:
        proto = violation.proto
        found.append(
            Reported(
                render_field_path(proto.field),
                proto.rule_id,
                render_field_path(proto.rule),
                bool(proto.for_key),
                proto.message,
            )
        )
    return found


def render_field_path(path: Any) -> str:
    """A protovalidate FieldPath as our violations write it: `a.b[2]`, `m["k"]`; None: ""."""
    if path is None:
        return ""
    parts = []
    for element in path.elements:
        text = element.field_name
        subscript = element.subscript
        if subscript is not None:
            kind, value = subscript.field, subscript.value
            if kind == "string_key":
                text += f"[{key_text(value)}]"
            elif kind == "bool_key":
                text += "[true]" if value else "[false]"
            else:
                text += f"[{value}]"
        parts.append(text)
    return ".".join(parts)


def make_subjects(name: str) -> dict[str, Subject]:
    """The contender's Subject per workload; raises Unavailable when it cannot load."""
    try:
        if name in (OURS, OURS_BUF):
            from protoc_gen_pyservice.runtime.validation import collect_violations

            flavour = CONTENDERS[name].flavour or PGV_FLAVOUR
            subject = Subject(collect_violations, None, flavour, ours_violations)
        elif name in (PGV, PGV_SHIM):
            validator = importlib.import_module("protoc_gen_validate.validator")
            if name == PGV_SHIM:
                install_pgv_label_shim(validator)
            subject = Subject(validator.validate, validator.ValidationFailed, PGV_FLAVOUR, None)
        elif name == PROTOVALIDATE:
            import protovalidate

            validate = protovalidate.Validator().collect_violations
            subject = Subject(validate, None, BUF_FLAVOUR, protovalidate_violations)
        else:
            return {
                SMALL: Subject(hand_create_user, None, PGV_FLAVOUR, ours_violations),
                LARGE: Subject(hand_order, None, PGV_FLAVOUR, ours_violations),
                CUSTOM: Subject(hand_booking, None, BUF_FLAVOUR, ours_violations),
            }
    except Exception as error:  # an import or setup failure: report, measure the rest
        raise Unavailable(f"{type(error).__name__}: {error}") from error
    return {workload: subject for workload in WORKLOADS if takes_part(name, workload)}


class _LabeledField:
    """A field descriptor with the `label` attribute protobuf 7 removed (3 = repeated)."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped
        self.label = 3 if wrapped.is_repeated else 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class _LabeledOneof:
    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped
        self.fields = [_LabeledField(f) for f in wrapped.fields]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class _LabeledDescriptor:
    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped
        self.fields = [_LabeledField(f) for f in wrapped.fields]
        self.oneofs = [_LabeledOneof(o) for o in wrapped.oneofs]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class _LabeledMessage:
    def __init__(self, descriptor: Any) -> None:
        self.DESCRIPTOR = _LabeledDescriptor(descriptor)


def install_pgv_label_shim(validator: ModuleType) -> None:
    """Make PGV's code generator see field descriptors that still have `label`.

    PGV reads FieldDescriptor.label for embedded message fields without rules
    (is_map, rule_type); protobuf 7 dropped it. Only code generation is touched:
    the validators PGV compiles and runs are its own. Idempotent.
    """
    original = validator.file_template
    if getattr(original, "label_shim", False):
        return

    def file_template(proto_message: Any) -> Any:
        return original(_LabeledMessage(proto_message.DESCRIPTOR))

    file_template.label_shim = True  # type: ignore[attr-defined]
    setattr(validator, "file_template", file_template)  # noqa: B010 - typed as ModuleType


# --------------------------------------------------------------------------- agreement


@dataclass(frozen=True)
class Verdict:
    """What one contender said about one instance."""

    valid: bool | None  # None: it failed
    found: Found | None  # the violations, when the contender lists them
    failure: str | None = None


def judge(subject: Subject, message: Any) -> Verdict:
    try:
        result = subject.function(message)
    except Exception as error:
        if subject.raises is not None and isinstance(error, subject.raises):
            return Verdict(False, None)
        return Verdict(None, None, f"{type(error).__name__}: {error}")
    if subject.raises is not None:
        return Verdict(True, None)
    found = subject.describe(result) if subject.describe is not None else None
    return Verdict(not result, found)


# --------------------------------------------------------------------------- first call


def child_main(contender: str, workload: str, directory: Path) -> int:
    """In a fresh process: time the contender's first call on the valid instance."""
    try:
        subject = make_subjects(contender)[workload]
    except Unavailable as error:
        print(json.dumps({"error": str(error)}))
        return 0
    instances = build_instances(load_modules(directory))[workload]
    message = instances.message(subject.flavour, VALID)
    start = time.perf_counter()
    verdict = judge(subject, message)
    elapsed = time.perf_counter() - start
    if verdict.failure is not None:
        print(json.dumps({"error": verdict.failure}))
    else:
        print(json.dumps({"seconds": elapsed}))
    return 0


def child_env(pycache: Path) -> dict[str, str]:
    """Bytecode cached outside the tree and allowed, so warm-up runs write it once."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def first_call_once(
    contender: str, workload: str, directory: Path, env: dict[str, str]
) -> tuple[float | None, str | None]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        contender,
        workload,
        "--out-dir",
        str(directory),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, check=False, timeout=CHILD_TIMEOUT_S
    )
    if result.returncode != 0:
        return None, first_error_line(result.stderr)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if "error" in report:
        return None, str(report["error"])
    return float(report["seconds"]), None


def measure_first_calls(
    pairs: Sequence[tuple[str, str]], samples: int, directory: Path, env: dict[str, str]
) -> dict[tuple[str, str], float]:
    """Median first-call seconds per (contender, workload); one warm-up process each."""
    seconds: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    active = list(pairs)
    for pair in pairs:
        _, error = first_call_once(*pair, directory, env)
        if error is not None:
            progress(f"[first call] {pair[0]} on {pair[1]} failed: {error}")
            active.remove(pair)
    for index in range(samples):
        for pair in rotated(active, index):
            value, _ = first_call_once(*pair, directory, env)
            if value is not None:
                seconds[pair].append(value)
        progress(f"[first call] sample {index + 1}/{samples}")
    return {pair: statistics.median(values) for pair, values in seconds.items() if values}


# --------------------------------------------------------------------------- steady state


@dataclass
class Slot:
    """One timed statement: a contender validating one instance."""

    contender: str
    workload: str
    instance: str
    timer: timeit.Timer
    number: int = 0
    per_call: list[float] = field(default_factory=list)


def calibrate(timer: timeit.Timer, min_time: float) -> int:
    """Calls per sample: the first of 1, 2, 5, 10, 20, 50, ... taking >= min_time."""
    number = 1
    while True:
        for factor in (1, 2, 5):
            if timer.timeit(number * factor) >= min_time:
                return number * factor
        number *= 10


T = TypeVar("T")


def rotated(items: Sequence[T], shift: int) -> list[T]:
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def measure(slots: Sequence[Slot], repeats: int, min_time: float) -> None:
    for slot in slots:
        slot.number = calibrate(slot.timer, min_time)
    progress(f"[steady state] calibrated {len(slots)} statements")
    for index in range(repeats):
        for slot in rotated(slots, index):
            slot.per_call.append(slot.timer.timeit(slot.number) / slot.number)
        progress(f"[steady state] repeat {index + 1}/{repeats}")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    contender: Contender
    per_call: dict[str, float] = field(default_factory=dict)  # instance -> median seconds
    first_call: float | None = None
    violations: str | None = None  # how many it reports for the invalid instance
    failure: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class WorkloadReport:
    name: str
    rows: dict[str, Row]
    verdicts: dict[str, dict[str, Verdict]]  # contender -> instance -> verdict
    disagreements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fmt_us(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    micro = seconds * 1e6
    return f"{micro:.2f}" if micro < 10 else f"{micro:.1f}" if micro < 100 else f"{micro:.0f}"


def fmt_ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:.2f}"


def fmt_ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}x"


def ratio(row: Row | None, other: Row | None, instance: str) -> float | None:
    if row is None or other is None:
        return None
    mine, theirs = row.per_call.get(instance), other.per_call.get(instance)
    if mine is None or theirs is None:
        return None
    return mine / theirs


def table_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_workload(report: WorkloadReport, repeats: int) -> str:
    hand = report.rows.get(HAND)
    lines = [
        f"### Workload `{report.name}`: {WORKLOAD_TITLES[report.name]}",
        "",
        f"µs per call: median of {repeats} samples, each a timeit loop of many calls.",
        "x hand = per-call time / hand-written per-call time (same instance).",
        "",
        "| contender | valid µs | invalid µs | x hand valid | x hand invalid "
        "| first call ms | violations | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in report.rows.items():
        label = f"{name} (info)" if row.contender.informative else name
        if row.failure is None:
            note = row.contender.description
        elif row.failure.startswith("unavailable"):
            note = row.failure.upper()[:11] + row.failure[11:]
        else:
            note = f"FAILED: {row.failure}"
        if row.notes:
            note += "; " + "; ".join(row.notes)
        cells = [
            label,
            fmt_us(row.per_call.get(VALID)),
            fmt_us(row.per_call.get(INVALID)),
            fmt_ratio(ratio(row, hand, VALID)),
            fmt_ratio(ratio(row, hand, INVALID)),
            fmt_ms(row.first_call),
            row.violations or "—",
            note,
        ]
        lines.append("| " + " | ".join(table_cell(cell) for cell in cells) + " |")
    if report.disagreements:
        lines += ["", *(f"- DISAGREEMENT: {text}" for text in report.disagreements)]
    else:
        lines += ["", "- Verdicts: every contender that ran agrees on both instances."]
    lines += [f"- Note: {note}" for note in report.notes]
    return "\n".join(lines)


def limit_text(limit: float) -> str:
    """A ratio limit as the target states it: below 1, "N x faster"."""
    return f">= {1 / limit:.3g}x faster than" if limit < 1 else f"<= {limit:.3g}x"


def target_goal(target: Target) -> str:
    scope = "" if target.instances == (VALID, INVALID) else f" ({', '.join(target.instances)})"
    return (
        f"`{target.contender}` {limit_text(target.limit)} `{target.peer}` "
        f"on `{target.workload}`{scope}"
    )


def target_lines(reports: dict[str, WorkloadReport]) -> list[str]:
    """One line per target: the ratio on each of its instances and whether the worst meets it."""
    lines = []
    for target in TARGETS:
        report = reports.get(target.workload)
        if report is None:
            continue
        goal = target_goal(target)
        name, peer = target.contender, target.peer
        ours, other = report.rows.get(name), report.rows.get(peer)
        if ours is None or other is None:
            lines.append(f"- Target: {goal} — not run")
            continue
        failure = None
        if ours.failure or other.failure:
            failure = f"{name}: {ours.failure}" if ours.failure else f"{peer}: {other.failure}"
        ratios = [ratio(ours, other, instance) for instance in target.instances]
        measured = [r for r in ratios if r is not None]
        if failure is not None or len(measured) != len(ratios):
            lines.append(f"- Target: {goal} — not measured ({failure or 'no timings'})")
            continue
        if target.limit < 1:  # "N x faster than peer": peer time / our time >= N
            shown = f"`{peer}` time / `{name}` time: " + ", ".join(
                f"{instance} {1 / value:.2f}x"
                for instance, value in zip(target.instances, measured, strict=True)
            )
        else:
            shown = f"`{name}` time / `{peer}` time: " + ", ".join(
                f"{instance} {value:.2f}x"
                for instance, value in zip(target.instances, measured, strict=True)
            )
        met = "met" if max(measured) <= target.limit else "NOT met"
        if report.disagreements:
            met += " (but verdicts disagree)"
        lines.append(f"- Target: {goal} — {shown} -> {met}")
    first = first_call_line(reports)
    if first is not None:
        lines.append(first)
    return lines


def first_call_line(reports: dict[str, WorkloadReport]) -> str | None:
    """The "no first-call compile" target: FIRST_CALL_CONTENDER's first call, every workload."""
    name = FIRST_CALL_CONTENDER
    goal = (
        f"`{name}` compiles nothing on its first call: first call <= "
        f"{MAX_FIRST_CALL_S * 1e3:g} ms on every workload"
    )
    rows = {w: r.rows[name] for w, r in reports.items() if name in r.rows}
    if not rows:
        return None
    missing = [w for w, row in rows.items() if row.first_call is None]
    if missing:
        return f"- Target: {goal} — not measured on {', '.join(missing)}"
    shown = []
    for workload, row in rows.items():
        peer = reports[workload].rows.get(PROTOVALIDATE)
        text = f"{workload} {fmt_ms(row.first_call)} ms"
        if peer is not None and peer.first_call is not None:
            text += f" ({PROTOVALIDATE} {fmt_ms(peer.first_call)} ms)"
        shown.append(text)
    worst = max(row.first_call or 0.0 for row in rows.values())
    met = "met" if worst <= MAX_FIRST_CALL_S else "NOT met"
    return f"- Target: {goal} — " + ", ".join(shown) + f" -> {met}"


def summary_table(reports: dict[str, WorkloadReport]) -> list[str]:
    """`pyservice-buf` against protovalidate and the floor, on the same messages, per instance."""
    lines = [
        f"`{OURS_BUF}` and `{PROTOVALIDATE}` validate the same `benchpb.v2` messages; "
        f"ratio = `{OURS_BUF}` time / other time (below 1: we are faster).",
        "",
        f"| workload | instance | {OURS_BUF} µs | {PROTOVALIDATE} µs | {HAND} µs "
        f"| x {PROTOVALIDATE} | {PROTOVALIDATE} speed-up | x {HAND} | target x {PROTOVALIDATE} "
        "| met |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    limits = {
        (t.workload, instance): t.limit
        for t in TARGETS
        if t.contender == OURS_BUF and t.peer == PROTOVALIDATE
        for instance in t.instances
    }
    shown = False
    for workload, report in reports.items():
        ours = report.rows.get(OURS_BUF)
        if ours is None:
            continue
        peer, hand = report.rows.get(PROTOVALIDATE), report.rows.get(HAND)
        for instance in (VALID, INVALID):
            mine = ratio(ours, peer, instance)
            limit = limits.get((workload, instance))
            met = "—"
            if limit is not None and mine is not None:
                met = "met" if mine <= limit else "NOT met"
            cells = [
                f"`{workload}`",
                instance,
                fmt_us(ours.per_call.get(instance)),
                fmt_us(peer.per_call.get(instance) if peer else None),
                fmt_us(hand.per_call.get(instance) if hand else None),
                fmt_ratio(mine),
                fmt_ratio(None if not mine else 1 / mine),
                fmt_ratio(ratio(ours, hand, instance)),
                "—" if limit is None else f"<= {limit:.3g}x",
                met,
            ]
            lines.append("| " + " | ".join(table_cell(cell) for cell in cells) + " |")
            shown = True
    return lines if shown else []


def distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> str:
    """The 1-minute load average: other work on the machine makes numbers noisier."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def machine_facts() -> list[str]:
    return [
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, nproc {cpu_count()}",
        f"protobuf {google.protobuf.__version__} (backend: {api_implementation.Type()})",
        f"load average at start: {load_average()}",
        f"protoc-gen-pyservice {distribution_version('protoc-gen-pyservice')}, "
        f"protoc-gen-validate {distribution_version('protoc-gen-validate')}, "
        f"protovalidate {distribution_version('protovalidate')}",
    ]


def render_section(
    reports: dict[str, WorkloadReport],
    command: str,
    args: argparse.Namespace,
    facts: Sequence[str],
    notes: Sequence[str],
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Validation per-call time",
        "",
        f"Recorded {now} with `{command}`.",
        "",
        *(f"- {fact}" for fact in facts),
        "",
        *textwrap.wrap(
            "Steady state: one sample is a timeit loop (gc off) of as many calls as take "
            f"at least {args.min_time:.2f} s; {args.repeats} samples per statement, "
            "statements interleaved round-robin; the table shows the median. First call: "
            "the first validation of the valid instance in a fresh process whose modules "
            f"are already imported; median of {args.first_call_samples} processes after a "
            "warm-up one. Violations: how many the contender reports for the invalid "
            "instance (PGV raises at the first).",
            width=88,
        ),
    ]
    summary = summary_table(reports)
    if summary:
        lines += ["", f"### `{OURS_BUF}` against `{PROTOVALIDATE}`", "", *summary]
    for report in reports.values():
        lines += ["", render_workload(report, args.repeats)]
    targets = target_lines(reports)
    if targets:
        lines += ["", "### Targets", "", *targets]
    if notes:
        lines += ["", *(f"- Note: {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def splice_section(document: str, section: str, source: Path) -> str:
    """Replace the text between the markers, or append a marked section."""
    block = f"{START_MARKER}\n{section}{END_MARKER}"
    start, end = document.find(START_MARKER), document.find(END_MARKER)
    if start == -1 and end == -1:
        return document.rstrip("\n") + "\n\n" + block + "\n"
    if start == -1 or end == -1 or end < start:
        raise SystemExit(f"{source}: markers {START_MARKER} / {END_MARKER} are unbalanced")
    return document[:start] + block + document[end + len(END_MARKER) :]


def write_benchmarks(path: Path, section: str) -> None:
    document = path.read_text(encoding="utf-8") if path.exists() else BENCHMARKS_HEADER
    path.write_text(splice_section(document, section, path), encoding="utf-8")


# --------------------------------------------------------------------------- run


def pairs(found: Found) -> set[tuple[str, str]]:
    """(field path, rule id) of each violation: what the hand-written floor lists."""
    return {(v.field_path, v.rule_id) for v in found}


def check_agreement(
    workload: str,
    subjects: dict[str, Subject],
    instances: Instances,
    rows: dict[str, Row],
) -> WorkloadReport:
    """Every contender judges both instances; the hand-written verdict is the reference."""
    report = WorkloadReport(workload, rows, {})
    if workload in WORKLOAD_NOTES:
        report.notes.append(WORKLOAD_NOTES[workload])
    for name, subject in subjects.items():
        verdicts = {
            instance: judge(subject, instances.message(subject.flavour, instance))
            for instance in (VALID, INVALID)
        }
        report.verdicts[name] = verdicts
        failure = next((v.failure for v in verdicts.values() if v.failure), None)
        if failure is not None:
            # Our generator not emitting validators (yet) is "unavailable", not a crash.
            if name in (OURS, OURS_BUF) and failure.startswith(NOT_GENERATED):
                failure = f"unavailable: {failure}"
            rows[name].failure = failure
            continue
        invalid = verdicts[INVALID]
        if invalid.found is not None:
            rows[name].violations = str(len(invalid.found))
        elif subject.raises is not None and invalid.valid is False:
            rows[name].violations = "raises"
    reference = report.verdicts.get(HAND)
    expected = {VALID: True, INVALID: False}
    for name, verdicts in report.verdicts.items():
        for instance, verdict in verdicts.items():
            if verdict.valid is not None and verdict.valid != expected[instance]:
                said = "valid" if verdict.valid else "invalid"
                report.disagreements.append(
                    f"`{name}` calls the {instance} instance {said}"
                    + (f": {sorted(pairs(verdict.found))}" if verdict.found else "")
                )
    if reference is not None:
        hand_found = pairs(reference[INVALID].found or [])
        for name, verdicts in report.verdicts.items():
            found = verdicts[INVALID].found
            if name == HAND or found is None or verdicts[INVALID].failure:
                continue
            if pairs(found) == hand_found:
                rows[name].notes.append("same violations as hand-written")
            else:
                missing = sorted(hand_found - pairs(found))
                extra = sorted(pairs(found) - hand_found)
                rows[name].notes.append(
                    f"violations differ from hand-written (missing {missing}, extra {extra})"
                )
    compare_with_protovalidate(report)
    return report


def compare_with_protovalidate(report: WorkloadReport) -> None:
    """Our buf.validate validators must list exactly protovalidate's violations (field path,
    rule id, rule path, for_key) on every instance, in any order; a difference is a
    disagreement. Order and message text are noted only."""
    ours, theirs = report.verdicts.get(OURS_BUF), report.verdicts.get(PROTOVALIDATE)
    if ours is None or theirs is None:
        return
    same, ordered, worded = True, True, True
    for instance in (VALID, INVALID):
        mine, their = ours[instance].found, theirs[instance].found
        if mine is None or their is None:
            return  # one of them failed, which is reported already
        if sorted(v.exact() for v in mine) != sorted(v.exact() for v in their):
            same = False
            report.disagreements.append(
                f"`{OURS_BUF}` and `{PROTOVALIDATE}` list different violations on the "
                f"{instance} instance: {OURS_BUF} {[v.exact() for v in mine]}, "
                f"{PROTOVALIDATE} {[v.exact() for v in their]}"
            )
            continue
        ordered &= [v.exact() for v in mine] == [v.exact() for v in their]
        worded &= sorted(mine) == sorted(their)
    if not same:
        return
    note = f"same violations as {PROTOVALIDATE} (path, rule id, rule path, for_key"
    note += ", message)" if worded else "; messages differ)"
    if not ordered:
        note += ", in another order"
    report.rows[OURS_BUF].notes.append(note)


def select(only: Sequence[str]) -> tuple[list[str], list[str]]:
    """Apply --only: names may be contenders, workloads, or a mix of both."""
    picked = set(only)
    contenders = [
        name
        for name in CONTENDER_NAMES
        if not picked & set(SELECTABLE)
        or name in picked
        or name == HAND
        or (name == PGV_SHIM and PGV in picked)
    ]
    workloads = [w for w in WORKLOADS if not picked & set(WORKLOADS) or w in picked]
    return contenders, workloads


def add_shim_row(report: WorkloadReport, subject: Subject, instances: Instances) -> None:
    """Check PGV with the label shim on a workload plain PGV failed, listed right after it."""
    row = Row(CONTENDERS[PGV_SHIM])
    shim = check_agreement(report.name, {PGV_SHIM: subject}, instances, {PGV_SHIM: row})
    rows = dict(report.rows)
    report.rows.clear()
    for name, existing in rows.items():
        report.rows[name] = existing
        if name == PGV:
            report.rows[PGV_SHIM] = row
    report.verdicts.update(shim.verdicts)
    report.disagreements += shim.disagreements


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    if args.child:
        contender, workload = args.child
        return child_main(contender, workload, args.out_dir)
    names, workloads = select(args.only)
    facts = machine_facts()
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        scratch = Path(tmp)
        out_dir = args.out_dir.resolve() if args.out_dir else scratch / "gen"
        progress(f"[build] compiling into {out_dir}")
        generated = generate(out_dir)
        instances = build_instances(load_modules(out_dir))
        notes = [
            "buf/validate/validate.proto comes from `.pyservice/include` (`pyservice "
            "fetch-protos`); every proto, including the imports, is compiled with "
            "`--python_out` into the run's output directory and imported from there."
        ]
        notes += generated.ours_failures.values()

        # Load contenders; the PGV shim only where plain PGV fails.
        subjects: dict[str, dict[str, Subject]] = {}
        unavailable: dict[str, str] = {}
        for name in names:
            if name == PGV_SHIM:  # loaded below, after plain PGV has compiled its validators
                continue
            if name in generated.ours_failures:
                unavailable[name] = generated.ours_failures[name]
                continue
            try:
                subjects[name] = make_subjects(name)
            except Unavailable as error:
                unavailable[name] = str(error)

        reports: dict[str, WorkloadReport] = {}
        for workload in workloads:
            rows = {
                n: Row(CONTENDERS[n]) for n in names if n != PGV_SHIM and takes_part(n, workload)
            }
            for name, reason in unavailable.items():
                if name in rows:
                    rows[name].failure = f"unavailable: {reason}"
            active = {
                n: s[workload] for n, s in subjects.items() if n != PGV_SHIM and workload in s
            }
            reports[workload] = check_agreement(workload, active, instances[workload], rows)
        for workload, report in reports.items():
            pgv_row = report.rows.get(PGV)
            if PGV_SHIM not in names or pgv_row is None or pgv_row.failure is None:
                continue
            if pgv_row.failure.startswith("unavailable"):
                continue
            if PGV_SHIM not in subjects:  # patches PGV from here on: plain PGV is checked
                subjects[PGV_SHIM] = make_subjects(PGV_SHIM)
            add_shim_row(report, subjects[PGV_SHIM][workload], instances[workload])
            if "label" in pgv_row.failure:
                report.notes.append(PGV_LABEL_NOTE)
            if "null bytes" in pgv_row.failure:
                report.notes.append(PGV_NUL_NOTE)
        for report in reports.values():
            for text in report.disagreements:
                progress(f"[{report.name}] DISAGREEMENT: {text}")
            for name, row in report.rows.items():
                if row.failure:
                    progress(f"[{report.name}] {name}: {row.failure}")

        runnable = [
            (name, workload)
            for workload, report in reports.items()
            for name, row in report.rows.items()
            if row.failure is None
        ]
        env = child_env(scratch / "pycache")
        first = measure_first_calls(runnable, args.first_call_samples, out_dir, env)
        for (name, workload), seconds in first.items():
            reports[workload].rows[name].first_call = seconds

        slots = []
        for name, workload in runnable:
            subject = subjects[name][workload]
            for instance in (VALID, INVALID):
                message = instances[workload].message(subject.flavour, instance)
                timer = timeit.Timer(subject.statement(), globals=subject.namespace(message))
                slots.append(Slot(name, workload, instance, timer))
        measure(slots, args.repeats, args.min_time)
        for slot in slots:
            row = reports[slot.workload].rows[slot.contender]
            row.per_call[slot.instance] = statistics.median(slot.per_call)

    command = shlex.join(["python", "bench/bench_validate.py", *arguments])
    section = render_section(reports, command, args, facts, notes)
    print(section)
    if args.write:
        write_benchmarks(BENCHMARKS_MD, section)
        progress(f"wrote {BENCHMARKS_MD}")
    return 1 if any(report.disagreements for report in reports.values()) else 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help=f"timed samples per statement; the median is reported (default {DEFAULT_REPEATS})",
    )
    parser.add_argument(
        "--min-time",
        type=float,
        default=DEFAULT_MIN_TIME_S,
        metavar="SECONDS",
        help=f"least duration of one sample's loop (default {DEFAULT_MIN_TIME_S})",
    )
    parser.add_argument(
        "--first-call-samples",
        type=int,
        default=DEFAULT_FIRST_CALL_SAMPLES,
        metavar="N",
        help=f"fresh processes per first-call measurement (default {DEFAULT_FIRST_CALL_SAMPLES})",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this contender or workload (repeatable; hand always runs): "
        + ", ".join([*SELECTABLE, *WORKLOADS]),
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="generate code into DIR and keep it (default: a temp dir)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"replace the bench:validate section of {BENCHMARKS_MD.name}",
    )
    parser.add_argument(
        "--child", nargs=2, metavar=("CONTENDER", "WORKLOAD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child and args.out_dir is None:
        parser.error("--child needs --out-dir")
    if args.repeats < 1 or args.first_call_samples < 1 or args.min_time <= 0:
        parser.error("--repeats and --first-call-samples must be >= 1, --min-time > 0")
    unknown = set(args.only) - set(SELECTABLE) - set(WORKLOADS)
    if unknown:
        parser.error(f"--only: unknown name(s) {', '.join(sorted(unknown))}")
    if args.write and args.only:
        parser.error("--write records a complete run; drop --only")
    return args


if __name__ == "__main__":
    sys.exit(main())
