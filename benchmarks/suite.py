"""The run itself: every (workload, runner) cell once per repetition,
round-robin, so that drift on a noisy machine hits every runner alike."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .execute import Outcome, become_subreaper, children, execute, stop_children
from .results import STDERR_LINES, Cell, Floor, Results, Run
from .runners import GUEST_ENV, NATIVE, Brandpy, Runner
from .stopstats import split_stats
from .workloads import Workload
from .workspace import IMAGES, Workspace

PROBE_TIMEOUT = 60
DEFAULT_REPS = 5          # with the default workloads, `make bench` takes ~15 minutes
DEFAULT_TIMEOUT = 180.0

Log = Callable[[str], None]


@dataclass
class Config:
    workloads: list[Workload]
    runners: list[Runner]
    reps: int = DEFAULT_REPS
    timeout: float = DEFAULT_TIMEOUT  # per run of a cell
    floor: bool = True                # measure the bare ptrace stop
    floor_seconds: float = 0.3
    images: Path = IMAGES


def run_suite(config: Config, log: Log) -> Results:
    become_subreaper()
    started = time.time()
    with Workspace(config.images) as ws:
        available, unavailable = usable(config.runners, ws, log)
        # brandpy's zygote starts outside the timed runs, as our child (a
        # subreaper's), so execute() leaves it: runs are timed warm (the
        # first run's cost is benchmarks/startup.py's "cold" row)
        for runner in available:
            if isinstance(runner, Brandpy):
                subprocess.run(runner.command(ws.rootfs("busybox", runner.owner), ["/bin/true"],
                                               ws.state),
                               env=runner.env(ws.state), capture_output=True, cwd="/")
        kept = set(children(os.getpid()))
        cells = {(w.name, r.name): Cell(w, r.name) for w in config.workloads for r in available}
        floor = Floor() if config.floor else None
        try:
            for rep in range(config.reps):
                if floor is not None:
                    measure_floor(ws, floor, config.floor_seconds)
                for i, workload in enumerate(config.workloads):
                    for runner in rotate(available, rep + i):
                        cell = cells[workload.name, runner.name]
                        if any(r.timed_out for r in cell.runs):
                            cell.skipped += 1       # a second timeout would only cost time
                            continue
                        ws.clear_scratch(workload.image, runner.owner, workload.scratch)
                        argv = runner.command(ws.rootfs(workload.image, runner.owner),
                                              workload.argv, ws.state)
                        run = to_run(workload, runner, execute(argv, runner.env(ws.state), config.timeout))
                        cell.runs.append(run)
                        log(f"[{rep + 1}/{config.reps}] {workload.name:<14}{runner.name:<21}"
                            f"{run.wall:8.3f} s  {describe(run)}")
        finally:
            stop_children(kept)
    for w in config.workloads:
        native = cells.get((w.name, NATIVE))
        if native and native.ok_runs:
            for r in available:
                cells[w.name, r.name].reference = native.ok_runs[0].output
    meta = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 1), "reps": config.reps,
            "timeout_s": config.timeout, "kernel": platform.release(),
            "cpus": os.cpu_count(), "commit": git_commit(), "user": os.geteuid(),
            # Where brandpy came from, when not this checkout (see Brandpy.env).
            "pythonpath": os.environ.get("PYTHONPATH")}
    return Results(meta=meta, workloads=config.workloads, runners=[r.name for r in available],
                   labels={r.name: r.label for r in config.runners}, unavailable=unavailable,
                   cells=cells, floor=floor)


def rotate(items: Sequence[Runner], k: int) -> list[Runner]:
    if not items:
        return []
    k %= len(items)
    return [*items[k:], *items[:k]]


def probe(runner: Runner, ws: Workspace, image: str = "busybox",
          argv: Sequence[str] = ("/bin/true",)) -> str | None:
    """Why the runner cannot be used here (None: it can): a missing
    prerequisite, or a trial run of argv in the image's copy that fails."""
    if reason := runner.missing():
        return reason
    trial = " ".join(argv)
    out = execute(runner.command(ws.rootfs(image, runner.owner), argv, ws.state), runner.env(ws.state), PROBE_TIMEOUT)
    if out.timed_out:
        return f"trial run of {trial} timed out after {PROBE_TIMEOUT} s"
    if out.status != 0:
        # The last line: where argparse and Python tracebacks say what went wrong.
        lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip()]
        return f"trial run of {trial} exited {out.status}: {lines[-1] if lines else 'no stderr'}"
    return None


def usable(runners: Sequence[Runner], ws: Workspace, log: Log, image: str = "busybox",
           argv: Sequence[str] = ("/bin/true",)) -> tuple[list[Runner], dict[str, str]]:
    """The runners that work here (probe), and why each other does not."""
    available, unavailable = [], {}
    for runner in runners:
        if reason := probe(runner, ws, image, argv):
            unavailable[runner.name] = reason
            log(f"runner {runner.name}: unavailable ({reason})")
        else:
            available.append(runner)
    return available, unavailable


def to_run(workload: Workload, runner: Runner, out: Outcome) -> Run:
    stderr, stops = split_stats(out.stderr) if runner.counts_stops else (out.stderr, None)
    seconds = workload.timing(out.stdout) if workload.timing else out.wall
    run = Run(wall=out.wall, seconds=seconds, cpu=out.cpu, status=out.status,
              timed_out=out.timed_out,
              output=workload.normalise(out.stdout),
              stderr_head="\n".join(stderr.splitlines()[:STDERR_LINES]), stops=stops)
    if workload.micro and run.ok:
        run.metrics = parse_pairs(out.stdout)
    return run


def parse_pairs(text: str) -> dict[str, float]:
    """ "NAME VALUE" lines (micro.c and ptrace_floor.c print these)."""
    pairs = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        try:
            pairs[name] = float(value)
        except ValueError:
            continue
    return pairs


def measure_floor(ws: Workspace, floor: Floor, seconds: float) -> None:
    prog = str(ws.build("ptrace_floor"))
    for same_cpu in (False, True):
        argv = [prog, *(["--same-cpu"] if same_cpu else []), str(seconds)]
        out = execute(argv, GUEST_ENV, PROBE_TIMEOUT)
        pairs = parse_pairs(out.stdout)
        if out.status != 0 or "stop" not in pairs:
            floor.errors.append(f"ptrace_floor {' '.join(argv[1:])} exited {out.status}: "
                                f"{out.stderr.strip()[:200]}")
            continue
        (floor.same_cpu if same_cpu else floor.any_cpu).append(pairs["stop"])
        floor.native.append(pairs["native"])


def describe(run: Run) -> str:
    if run.timed_out:
        return "TIMEOUT"
    if run.status != 0:
        return f"exit {run.status}: {run.stderr_head.splitlines()[0] if run.stderr_head else ''}"
    if run.seconds is None:
        return "no timing in its output"
    extra = ""
    if run.stops is not None:
        per = run.stops.stops_per_call
        extra = f"  {run.stops.calls} trapped" + (f", {per:.3f} stops each" if per else "")
    return "ok" + extra


def git_commit() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parent)
    return proc.stdout.strip() or None
