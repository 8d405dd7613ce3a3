"""`pyservice check`: does generated/ equal what buf generate makes from proto/ now?"""

import difflib
from dataclasses import dataclass
from pathlib import Path

_IGNORED_PARTS = frozenset({"__pycache__"})


@dataclass(frozen=True, slots=True)
class Drift:
    added: tuple[str, ...]  # would be generated, missing from the checked-in tree
    removed: tuple[str, ...]  # checked in, no longer generated
    changed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def _files(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    return {
        path.relative_to(root).as_posix(): path
        for path in root.rglob("*")
        if path.is_file() and not _IGNORED_PARTS & set(path.relative_to(root).parts)
    }


def compare(expected_root: Path, actual_root: Path) -> Drift:
    expected, actual = _files(expected_root), _files(actual_root)
    return Drift(
        added=tuple(sorted(expected.keys() - actual.keys())),
        removed=tuple(sorted(actual.keys() - expected.keys())),
        changed=tuple(
            sorted(
                name
                for name in expected.keys() & actual.keys()
                if expected[name].read_bytes() != actual[name].read_bytes()
            )
        ),
    )


def unified_diff(expected: Path, actual: Path, name: str, max_lines: int = 40) -> list[str]:
    """A short diff of one drifted file: checked in (a/) against freshly generated (b/)."""
    lines = list(
        difflib.unified_diff(
            actual.read_text(errors="replace").splitlines(),
            expected.read_text(errors="replace").splitlines(),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
            lineterm="",
        )
    )
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more diff lines)"]
    return lines
