"""What the tests of generated testing modules check: every valid_*() builder's request has no
violation and serializes; every INVALID_* case's request has exactly its one violation.

Run as a script (`python -m tests.examples_check MODULE...`) it checks modules in a process of
their own, as the corpus test does, and prints the problems it finds.
"""

import importlib
import re
import sys
from types import ModuleType
from typing import Any

from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import testing, validation

# google.rpc's BadRequest.FieldViolation.reason: UPPER_SNAKE_CASE, at most 63 characters.
REASON = re.compile(r"[A-Z][A-Z0-9_]+[A-Z0-9]")


def problems(module: ModuleType) -> list[str]:
    found: list[str] = []
    for name in sorted(vars(module)):
        value = getattr(module, name)
        if name.startswith("valid_"):
            found += _valid_problems(f"{module.__name__}.{name}", value)
        elif name.startswith("INVALID_"):
            for case in value:
                found += _case_problems(f"{module.__name__}.{name}[{case.name}]", case)
    return found


def _valid_problems(where: str, builder: Any) -> list[str]:
    try:
        request = builder()
    except testing.ExampleNeeded as needed:
        return [f"{where}: {needed}"]
    request.SerializeToString()  # raises for a proto2 required field left unset
    violations = runtime.collect_violations(request)
    return [f"{where}: {violations}"] if violations else []


def _case_problems(where: str, case: testing.InvalidCase[Any]) -> list[str]:
    request = case.build()
    request.SerializeToString()
    found = [(v.field_path, v.rule_id) for v in runtime.collect_violations(request)]
    issues = []
    if found != [(case.field_path, case.rule_id)]:
        issues.append(f"{where}: expected {[(case.field_path, case.rule_id)]}, got {found}")
    reason = validation.violation_reason(case.rule_id)
    if len(reason) > 63 or not REASON.fullmatch(reason):
        issues.append(f"{where}: {reason!r} is not a BadRequest reason")
    return issues


if __name__ == "__main__":
    failures = [p for name in sys.argv[1:] for p in problems(importlib.import_module(name))]
    print("\n".join(failures))
    sys.exit(1 if failures else 0)
