"""Debian packages for the servers tests run (PostgreSQL, Redis): installed on first use.

`apt-get update` runs at most once per machine boot (a marker under /tmp, taken under a lock so
parallel test processes do not race apt). A package that cannot be installed gives the reason
as text, for a test to skip with; nothing here raises for a missing package.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

_LOCK = Path("/tmp/pyservice-apt.lock")
_UPDATED = Path("/tmp/pyservice-apt.updated")
_QUIET = {"DEBIAN_FRONTEND": "noninteractive"}
_TIMEOUT_SECONDS = 900


def ensure_installed(packages: Iterable[str], provides: str | Path) -> str | None:
    """Install `packages` unless `provides` (a command name or a path) already exists.

    Returns None when it exists afterwards, else one line saying why not.
    """
    if _present(provides):
        return None
    if os.geteuid() != 0:
        return f"{provides} is not installed and installing Debian packages needs root"
    if shutil.which("apt-get") is None:
        return f"{provides} is not installed and this machine has no apt-get"
    wanted = list(packages)
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _present(provides):
            return None
        if not _UPDATED.exists():
            failure = _apt("update")
            if failure:
                return f"apt-get update failed: {failure}"
            _UPDATED.touch()
        failure = _apt("install", "-y", "--no-install-recommends", *wanted)
    if failure:
        return f"apt-get install {' '.join(wanted)} failed: {failure}"
    if not _present(provides):
        return f"apt-get installed {' '.join(wanted)} but {provides} is still missing"
    return None


def _present(provides: str | Path) -> bool:
    if isinstance(provides, Path):
        return provides.exists()
    return shutil.which(provides) is not None


def _apt(*arguments: str) -> str | None:
    try:
        result = subprocess.run(
            ["apt-get", "-q", *arguments],
            capture_output=True,
            text=True,
            env={**os.environ, **_QUIET},
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"no answer within {_TIMEOUT_SECONDS} s"
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"
