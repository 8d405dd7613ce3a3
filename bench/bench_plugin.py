"""Wall-time benchmark of Python protoc plugins against a do-nothing floor.

Every contender is one ``python -m grpc_tools.protoc ...`` subprocess per sample,
writing into a fresh output directory. All contenders of a workload are measured
in the same run, round-robin per sample, so machine drift hits them alike. The
report gives median and min wall time and the ratio median / floor median, where
the floor is bench/noop_plugin.py (parse the request, answer with nothing).

    .venv/bin/python bench/bench_plugin.py                 # 15 samples, print Markdown
    .venv/bin/python bench/bench_plugin.py --samples 3     # quick look
    .venv/bin/python bench/bench_plugin.py --only pyservice --only ours
    .venv/bin/python bench/bench_plugin.py --write         # also update BENCHMARKS.md

See bench/README.md for what each contender and workload is.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.resources
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import google.protobuf
from google.protobuf.internal import api_implementation

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
NOOP_PLUGIN = BENCH_DIR / "noop_plugin.py"
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
START_MARKER = "<!-- bench:plugin:start -->"
END_MARKER = "<!-- bench:plugin:end -->"
BENCHMARKS_HEADER = (
    "# Benchmarks\n\n"
    "Numbers recorded by the scripts in `bench/`. Sections between `bench:*` markers\n"
    "are rewritten by those scripts; edit outside them.\n"
)

OUT = "{out}"  # placeholder for the per-sample output directory in contender args
FLOOR = "floor"
OURS = "pyservice"
WORKLOADS = ("ours", "googleapis")
# Workload name -> the largest median/floor-median ratio we accept for OURS.
TARGETS: dict[str, float] = {"ours": 1.5, "googleapis": 1.8}
DEFAULT_SAMPLES = 15
# Output goes to RAM when possible: on a disk, creating many small files costs a
# varying amount (journal, discard) that swamps the differences between plugins.
TMPFS_CANDIDATES = (Path("/dev/shm"),)
RUN_TIMEOUT_S = 300.0


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Workload:
    """A set of .proto files compiled in one protoc invocation."""

    name: str
    description: str
    include_dirs: tuple[Path, ...]
    files: tuple[Path, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contender:
    """One way of running protoc; ``args`` may contain the OUT placeholder."""

    name: str
    description: str
    args: tuple[str, ...]
    informative: bool = False

    def protoc_args(self, out_dir: Path) -> list[str]:
        return [arg.replace(OUT, str(out_dir)) for arg in self.args]


@dataclass(frozen=True)
class RunOutcome:
    """What one protoc subprocess did."""

    seconds: float
    returncode: int
    stderr: str
    files_written: int


@dataclass
class Tally:
    """Samples gathered for one contender on one workload."""

    contender: Contender
    seconds: list[float] = field(default_factory=list)
    files_written: int | None = None
    failure: str | None = None


@dataclass(frozen=True)
class Row:
    """One line of a results table."""

    name: str
    description: str
    median_s: float | None
    min_s: float | None
    ratio: float | None
    delta_s: float | None
    files_written: int | None
    failure: str | None
    informative: bool


@dataclass(frozen=True)
class WorkloadReport:
    workload: Workload
    rows: tuple[Row, ...]
    samples: int


# ------------------------------------------------------------------ environment


def venv_bin_dir() -> Path:
    """The bin dir next to the running interpreter (not symlink-resolved)."""
    return Path(sys.executable).parent


def grpc_tools_include() -> Path:
    """grpc_tools' bundled well-known protos (google/protobuf/*.proto)."""
    path = Path(str(importlib.resources.files("grpc_tools").joinpath("_proto")))
    if not path.is_dir():
        raise SystemExit(f"grpc_tools _proto dir not found at {path}")
    return path


def subprocess_env(pycache: Path) -> dict[str, str]:
    """The environment for every protoc run, the same for every contender.

    - The venv bin dir goes first on PATH: betterproto2 shells out to ``ruff``.
    - Bytecode is cached in ``pycache`` (PYTHONPYCACHEPREFIX) and writing it is
      allowed, so the warm-up run compiles every contender's modules once and the
      samples measure the steady state -- also for a plugin installed in editable
      mode under PYTHONDONTWRITEBYTECODE=1 -- without writing into the source tree.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(venv_bin_dir()), env.get("PATH", "")])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def write_noop_wrapper(directory: Path) -> Path:
    """An executable that protoc can run as a plugin and that runs noop_plugin.py."""
    wrapper = directory / "protoc-gen-noop"
    command = shlex.join([sys.executable, str(NOOP_PLUGIN)])
    wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    return wrapper


def default_scratch_parent() -> Path | None:
    """A writable tmpfs for output dirs, or None for the system temp dir."""
    for candidate in TMPFS_CANDIDATES:
        if candidate.is_dir() and os.access(candidate, os.W_OK):
            return candidate
    return None


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (Linux only, else "unknown")."""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return "unknown"
    resolved = path.resolve()
    best, fs_type = Path("/"), "unknown"
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = Path(fields[1])
        if resolved.is_relative_to(mount_point) and len(mount_point.parts) >= len(best.parts):
            best, fs_type = mount_point, fields[2]
    return fs_type


def cpu_count() -> int:
    """What ``nproc`` prints: CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def protoc_version() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def machine_facts(scratch: Path) -> list[str]:
    """Facts that make a recorded number interpretable later."""
    return [
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}",
        f"protobuf {google.protobuf.__version__} (backend: {api_implementation.Type()})",
        f"grpcio-tools {distribution_version('grpcio-tools')} ({protoc_version()})",
        f"nproc {cpu_count()}",
        f"output dirs on {filesystem_type(scratch)} ({scratch.parent})",
        "contenders: "
        f"protoc-gen-pyservice {distribution_version('protoc-gen-pyservice')}, "
        f"mypy-protobuf {distribution_version('mypy-protobuf')}, "
        f"betterproto2-compiler {distribution_version('betterproto2-compiler')}",
    ]


# ------------------------------------------------------------------ contenders


def build_contenders(bin_dir: Path, noop_wrapper: Path) -> list[Contender]:
    """Every contender, floor first."""
    mypy = bin_dir / "protoc-gen-mypy"
    mypy_grpc = bin_dir / "protoc-gen-mypy_grpc"
    betterproto2 = bin_dir / "protoc-gen-python_betterproto2"
    return [
        Contender(
            FLOOR,
            "bench/noop_plugin.py: parse request, empty response",
            (f"--plugin=protoc-gen-noop={noop_wrapper}", f"--noop_out={OUT}"),
        ),
        Contender(
            OURS,
            "protoc-gen-pyservice",
            (
                f"--plugin=protoc-gen-pyservice={bin_dir / 'protoc-gen-pyservice'}",
                f"--pyservice_out={OUT}",
            ),
        ),
        Contender(
            "grpcio-tools",
            "builtin --python_out --pyi_out --grpc_python_out",
            (f"--python_out={OUT}", f"--pyi_out={OUT}", f"--grpc_python_out={OUT}"),
        ),
        Contender(
            "mypy-protobuf",
            "protoc-gen-mypy + protoc-gen-mypy_grpc (.pyi only)",
            (
                f"--plugin=protoc-gen-mypy={mypy}",
                f"--mypy_out={OUT}",
                f"--plugin=protoc-gen-mypy_grpc={mypy_grpc}",
                f"--mypy_grpc_out={OUT}",
            ),
        ),
        Contender(
            "betterproto2",
            "protoc-gen-python_betterproto2, async client + server",
            (
                f"--plugin=protoc-gen-python_betterproto2={betterproto2}",
                f"--python_betterproto2_out=client_generation=async,server_generation=async:{OUT}",
            ),
        ),
        Contender(
            "protoc-only",
            "--descriptor_set_out, no plugin (fixed cost of protoc itself)",
            (f"--descriptor_set_out={OUT}/descriptors.binpb", "--include_imports"),
            informative=True,
        ),
    ]


# ------------------------------------------------------------------ running protoc


def protoc_command(workload: Workload, contender: Contender, out_dir: Path) -> list[str]:
    includes = [f"--proto_path={path}" for path in workload.include_dirs]
    files = [str(path) for path in workload.files]
    return [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        *includes,
        *contender.protoc_args(out_dir),
        *files,
    ]


def count_files(directory: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(directory))


def run_protoc(command: Sequence[str], out_dir: Path, cwd: Path, env: dict[str, str]) -> RunOutcome:
    """Time one protoc subprocess; out_dir must not exist yet and is removed after."""
    out_dir.mkdir(parents=True)
    start = time.perf_counter()
    # Own session, so that a hung plugin can be killed together with protoc.
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
            returncode = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            returncode, stderr = -1, f"timed out after {RUN_TIMEOUT_S:.0f}s"
    seconds = time.perf_counter() - start
    written = count_files(out_dir)
    shutil.rmtree(out_dir)
    return RunOutcome(seconds, returncode, stderr, written)


def failure_summary(outcome: RunOutcome) -> str:
    """The first line of stderr; for a Python traceback, the exception line instead."""
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if not lines:
        return f"exit status {outcome.returncode}, no stderr"
    if lines[0].startswith("Traceback (most recent call last)"):
        exception_lines = [line for line in lines[1:] if not line.startswith(" ")]
        if exception_lines:
            return exception_lines[0]
    return lines[0]


# ------------------------------------------------------------------ workloads


def ours_workload(grpc_include: Path) -> Workload:
    files = (REPO_ROOT / "proto/user/v1/user.proto", REPO_ROOT / "proto/common/v1/errors.proto")
    includes = (
        REPO_ROOT / "proto",
        REPO_ROOT / "protoc_gen_pyservice/proto",
        REPO_ROOT / ".pyservice" / "include",
        grpc_include,
    )
    notes = [f"missing: {path.relative_to(REPO_ROOT)}" for path in files if not path.is_file()]
    if not (REPO_ROOT / ".pyservice/include/validate/validate.proto").is_file():
        notes.append(
            "missing .pyservice/include/validate/validate.proto (run `pyservice fetch-protos`)"
        )
    return Workload(
        "ours",
        "proto/user/v1/user.proto + proto/common/v1/errors.proto",
        includes,
        files,
        tuple(notes),
    )


def googleapis_files() -> tuple[Path, list[Path]]:
    """The site-packages root and every .proto of googleapis-common-protos, sorted."""
    dist = importlib.metadata.distribution("googleapis-common-protos")
    root = Path(str(dist.locate_file("")))
    listed = dist.files or []
    files = sorted(root / str(entry) for entry in listed if str(entry).endswith(".proto"))
    return root, files


def compile_error(
    files: Sequence[Path], includes: Sequence[Path], scratch: Path, env: dict[str, str]
) -> str | None:
    """None if protoc parses ``files`` together, else its first stderr line."""
    check = Workload("check", "", tuple(includes), tuple(files))
    contender = Contender("check", "", (f"--descriptor_set_out={OUT}/check.binpb",))
    out_dir = Path(tempfile.mkdtemp(dir=scratch)) / "out"
    outcome = run_protoc(protoc_command(check, contender, out_dir), out_dir, scratch, env)
    return None if outcome.returncode == 0 else failure_summary(outcome)


def googleapis_workload(grpc_include: Path, scratch: Path, env: dict[str, str]) -> Workload:
    """All googleapis-common-protos files, minus those that do not compile alone."""
    try:
        root, files = googleapis_files()
    except importlib.metadata.PackageNotFoundError:
        note = "googleapis-common-protos is not installed"
        return Workload("googleapis", "not available", (), (), (note,))
    includes = (root, grpc_include)
    shipped = len(files)
    notes: list[str] = []
    if compile_error(files, includes, scratch, env) is not None:
        kept: list[Path] = []
        for path in files:
            error = compile_error([path], includes, scratch, env)
            if error is None:
                kept.append(path)
            else:
                notes.append(f"skipped {path.relative_to(root)}: {error}")
        together = compile_error(kept, includes, scratch, env)
        if together is not None:
            notes.append(f"remaining files still fail together: {together}")
        files = kept
    description = f"{len(files)} of {shipped} .proto files of googleapis-common-protos"
    return Workload("googleapis", description, includes, tuple(files), tuple(notes))


# ------------------------------------------------------------------ measuring


def rotated(items: Sequence[Tally], shift: int) -> list[Tally]:
    """Round-robin order for one sample, starting one further along each time."""
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def record(tally: Tally, outcome: RunOutcome) -> None:
    if outcome.returncode != 0:
        tally.failure = failure_summary(outcome)
        return
    tally.files_written = outcome.files_written
    tally.seconds.append(outcome.seconds)


def run_sample(
    workload: Workload, contender: Contender, label: str, scratch: Path, env: dict[str, str]
) -> RunOutcome:
    out_dir = scratch / workload.name / contender.name / label
    return run_protoc(protoc_command(workload, contender, out_dir), out_dir, scratch, env)


def measure_workload(
    workload: Workload,
    contenders: Sequence[Contender],
    samples: int,
    scratch: Path,
    env: dict[str, str],
) -> list[Tally]:
    """One warm-up run per contender, then ``samples`` interleaved rounds.

    The warm-up fills the bytecode and page caches and weeds out contenders that
    fail; those are not sampled.
    """
    tallies = [Tally(contender) for contender in contenders]
    for tally in tallies:
        warmup = run_sample(workload, tally.contender, "warmup", scratch, env)
        if warmup.returncode != 0:
            tally.failure = failure_summary(warmup)
    for index in range(samples):
        active = [tally for tally in tallies if tally.failure is None]
        for tally in rotated(active, index):
            record(tally, run_sample(workload, tally.contender, str(index), scratch, env))
        progress(f"[{workload.name}] sample {index + 1}/{samples}")
    return tallies


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ summarizing


def summarize(tallies: Sequence[Tally]) -> list[Row]:
    medians = {
        t.contender.name: statistics.median(t.seconds)
        for t in tallies
        if t.failure is None and t.seconds
    }
    floor = medians.get(FLOOR)
    return [summarize_one(tally, medians.get(tally.contender.name), floor) for tally in tallies]


def summarize_one(tally: Tally, median: float | None, floor: float | None) -> Row:
    measured = median is not None
    return Row(
        name=tally.contender.name,
        description=tally.contender.description,
        median_s=median,
        min_s=min(tally.seconds) if measured else None,
        ratio=median / floor if median is not None and floor is not None else None,
        delta_s=median - floor if median is not None and floor is not None else None,
        files_written=tally.files_written if measured else None,
        failure=tally.failure,
        informative=tally.contender.informative,
    )


def target_lines(reports: Sequence[WorkloadReport]) -> list[str]:
    """One line per workload that has a target for OURS."""
    lines = []
    for report in reports:
        limit = TARGETS.get(report.workload.name)
        if limit is None:
            continue
        ours = next((row for row in report.rows if row.name == OURS), None)
        goal = f"`{OURS}` <= {limit:.2f}x floor on `{report.workload.name}`"
        if ours is None:
            verdict = "not run"
        elif ours.ratio is None:
            verdict = f"not measured ({ours.failure or 'no floor'})"
        else:
            met = "met" if ours.ratio <= limit else "NOT met"
            verdict = f"measured {ours.ratio:.2f}x -> {met}"
        lines.append(f"- Target: {goal} — {verdict}")
    return lines


# ------------------------------------------------------------------ rendering


def fmt_ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f}"


def fmt_delta_ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:+.0f}"


def fmt_ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}x"


def table_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_row(row: Row) -> str:
    name = f"{row.name} (info)" if row.informative else row.name
    note = f"FAILED: {row.failure}" if row.failure else row.description
    files = "—" if row.files_written is None else str(row.files_written)
    cells = [
        name,
        fmt_ms(row.median_s),
        fmt_ms(row.min_s),
        fmt_ratio(row.ratio),
        fmt_delta_ms(row.delta_s),
        files,
        note,
    ]
    return "| " + " | ".join(table_cell(cell) for cell in cells) + " |"


def render_workload(report: WorkloadReport) -> str:
    workload = report.workload
    lines = [f"### Workload `{workload.name}`: {workload.description}", ""]
    if not report.rows:
        return "\n".join([*lines, *(f"- Not run: {note}" for note in workload.notes)])
    lines += [
        f"{report.samples} samples per contender after 1 warm-up run.",
        "",
        "| contender | median ms | min ms | x floor | Δ floor ms | files out | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
        *(render_row(row) for row in report.rows),
    ]
    if workload.notes:
        lines += ["", *(f"- Note: {note}" for note in workload.notes)]
    return "\n".join(lines)


def render_section(reports: Sequence[WorkloadReport], command: str, facts: Sequence[str]) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Protoc plugin wall time",
        "",
        f"Recorded {now} with `{command}`.",
        "",
        *(f"- {fact}" for fact in facts),
        "",
        "Each sample is one `python -m grpc_tools.protoc` subprocess (interpreter start,",
        "protoc parse, plugin processes, writing output) into a fresh directory;",
        "contenders are interleaved round-robin. x floor = median / floor median;",
        "Δ floor = median - floor median.",
    ]
    for report in reports:
        lines += ["", render_workload(report)]
    targets = target_lines(reports)
    if targets:
        lines += ["", "### Targets", "", *targets]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ BENCHMARKS.md


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


# ------------------------------------------------------------------ CLI


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SAMPLES,
        help=f"timed runs per contender and workload (default {DEFAULT_SAMPLES})",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this contender or workload (repeatable; the floor always runs)",
    )
    parser.add_argument(
        "--scratch-dir",
        type=Path,
        default=default_scratch_parent(),
        metavar="DIR",
        help="where the per-sample output dirs go (default: /dev/shm if "
        "writable, else the system temp dir)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"replace the bench:plugin section of {BENCHMARKS_MD.name}",
    )
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    if args.write and args.only:
        parser.error("--write records a complete run; drop --only")
    return args


def select(
    contenders: Sequence[Contender], workload_names: Sequence[str], only: Sequence[str]
) -> tuple[list[Contender], list[str]]:
    """Apply --only: names may be contenders, workloads, or a mix of both."""
    contender_names = {c.name for c in contenders}
    wanted = set(only)
    unknown = wanted - contender_names - set(workload_names)
    if unknown:
        choices = ", ".join([*sorted(contender_names), *workload_names])
        raise SystemExit(
            f"--only: unknown name(s) {', '.join(sorted(unknown))}; choose from {choices}"
        )
    picked_contenders = wanted & contender_names
    picked_workloads = wanted & set(workload_names)
    chosen = [
        c
        for c in contenders
        if not picked_contenders or c.name in picked_contenders or c.name == FLOOR
    ]
    workloads = [w for w in workload_names if not picked_workloads or w in picked_workloads]
    return chosen, workloads


def load_workload(name: str, grpc_include: Path, scratch: Path, env: dict[str, str]) -> Workload:
    if name == "ours":
        return ours_workload(grpc_include)
    return googleapis_workload(grpc_include, scratch, env)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    grpc_include = grpc_tools_include()
    with tempfile.TemporaryDirectory(prefix="bench-plugin-", dir=args.scratch_dir) as tmp:
        scratch = Path(tmp)
        facts = machine_facts(scratch)
        env = subprocess_env(scratch / "pycache")
        contenders = build_contenders(venv_bin_dir(), write_noop_wrapper(scratch))
        contenders, workload_names = select(contenders, WORKLOADS, args.only)
        reports = []
        for name in workload_names:
            workload = load_workload(name, grpc_include, scratch, env)
            for note in workload.notes:
                progress(f"[{name}] note: {note}")
            if not workload.files:
                reports.append(WorkloadReport(workload, (), 0))
                continue
            tallies = measure_workload(workload, contenders, args.samples, scratch, env)
            reports.append(WorkloadReport(workload, tuple(summarize(tallies)), args.samples))
    command = shlex.join(["python", "bench/bench_plugin.py", *arguments])
    section = render_section(reports, command, facts)
    print(section)
    if args.write:
        write_benchmarks(BENCHMARKS_MD, section)
        progress(f"wrote {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
