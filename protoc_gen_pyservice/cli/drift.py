"""`pyservice check`: do the output folders hold exactly what buf generate makes now?"""

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_IGNORED_PARTS = frozenset({"__pycache__"})


@dataclass(frozen=True, slots=True)
class Drift:
    missing: tuple[str, ...]  # generation writes it, the project does not have it
    stale: tuple[str, ...]  # the project has it, generation no longer writes it
    edited: tuple[str, ...]  # both have it, with different contents

    def __bool__(self) -> bool:
        return bool(self.missing or self.stale or self.edited)


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
        missing=tuple(sorted(expected.keys() - actual.keys())),
        stale=tuple(sorted(actual.keys() - expected.keys())),
        edited=tuple(
            sorted(
                name
                for name in expected.keys() & actual.keys()
                if expected[name].read_bytes() != actual[name].read_bytes()
            )
        ),
    )


def compare_folders(expected_base: Path, actual_base: Path, folders: Iterable[str]) -> Drift:
    """`compare` for each folder under both bases; names are relative to the bases."""
    found = [(folder, compare(expected_base / folder, actual_base / folder)) for folder in folders]
    return Drift(
        *(
            tuple(f"{folder}/{name}" for folder, drift in found for name in getattr(drift, kind))
            for kind in ("missing", "stale", "edited")
        )
    )


def unified_diff(expected: Path, actual: Path, name: str, max_lines: int = 40) -> list[str]:
    """A short diff of one drifted file: what the project holds against what generation makes."""
    lines = list(
        difflib.unified_diff(
            actual.read_text(errors="replace").splitlines(),
            expected.read_text(errors="replace").splitlines(),
            fromfile=f"{name} (in the project)",
            tofile=f"{name} (generated now)",
            lineterm="",
        )
    )
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more diff lines)"]
    return lines
