"""What a suite run produced, and what follows from it: per cell (workload
x runner) the runs, their median, the ratio to native, whether the output
matched native's, and the ptrace stops brandpy counted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .runners import NATIVE
from .stats import geomean, median, ratio
from .stopstats import StopStats
from .workloads import Workload

STDERR_LINES = 5


@dataclass
class Run:
    wall: float
    seconds: float | None             # what the ratio uses: wall, or the workload's own timing
    cpu: float
    status: int
    timed_out: bool
    output: str                       # normalised stdout
    stderr_head: str                  # the program's first stderr lines (stats removed)
    stops: StopStats | None = None
    metrics: dict[str, float] = field(default_factory=dict)   # micro: op -> µs per call

    @property
    def ok(self) -> bool:
        return self.status == 0 and not self.timed_out and self.seconds is not None


@dataclass
class Cell:
    workload: Workload
    runner: str
    runs: list[Run] = field(default_factory=list)
    skipped: int = 0                  # repetitions not run after a timeout
    reference: str | None = None      # native's normalised output, once known

    @property
    def ok_runs(self) -> list[Run]:
        return [r for r in self.runs if r.ok]

    @property
    def failures(self) -> list[Run]:
        return [r for r in self.runs if not r.ok]

    @property
    def mismatches(self) -> list[Run]:
        if self.reference is None:
            return []
        return [r for r in self.ok_runs if r.output != self.reference]

    @property
    def verdict(self) -> str:
        """ok | mismatch | failed | timeout | no reference (native failed)"""
        if any(r.timed_out for r in self.runs):
            return "timeout"
        if self.failures or not self.runs:
            return "failed"
        if self.reference is None:
            return "no reference"
        return "mismatch" if self.mismatches else "ok"

    @property
    def time(self) -> float | None:
        """The median of the runs' measured seconds."""
        return median([r.seconds for r in self.ok_runs if r.seconds is not None])

    def metric(self, name: str) -> float | None:
        return median([r.metrics[name] for r in self.ok_runs if name in r.metrics])

    @property
    def stop_runs(self) -> list[StopStats]:
        return [r.stops for r in self.ok_runs if r.stops is not None]


@dataclass
class Floor:
    """The bare ptrace stop (ptrace_floor.c), µs per trapped getppid."""
    any_cpu: list[float] = field(default_factory=list)
    same_cpu: list[float] = field(default_factory=list)
    native: list[float] = field(default_factory=list)     # getppid without a filter
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"unit": "us per call", "stop_any_cpu": median(self.any_cpu),
                "stop_same_cpu": median(self.same_cpu), "getppid_native": median(self.native),
                "samples": {"stop_any_cpu": self.any_cpu, "stop_same_cpu": self.same_cpu,
                            "getppid_native": self.native},
                "errors": self.errors}


@dataclass
class Results:
    meta: dict[str, Any]
    workloads: list[Workload]
    runners: list[str]                       # available runners, in column order
    labels: dict[str, str]                   # runner -> column title (all runners)
    unavailable: dict[str, str]              # runner -> why
    cells: dict[tuple[str, str], Cell]       # (workload, runner) -> cell
    floor: Floor | None = None

    @property
    def columns(self) -> list[str]:
        """Every runner asked for, available or not, in suite order."""
        return list(self.labels)

    def cell(self, workload: str, runner: str) -> Cell | None:
        return self.cells.get((workload, runner))

    def native_time(self, workload: str) -> float | None:
        cell = self.cell(workload, NATIVE)
        return cell.time if cell else None

    def ratio(self, workload: str, runner: str) -> float | None:
        cell = self.cell(workload, runner)
        if cell is None or cell.verdict in ("failed", "timeout"):
            return None
        return ratio(cell.time, self.native_time(workload))

    def extra_time(self, workload: str, runner: str) -> float | None:
        """The runner's median seconds over native's."""
        cell, native = self.cell(workload, runner), self.native_time(workload)
        if cell is None or cell.time is None or native is None:
            return None
        return cell.time - native

    def ratio_past_startup(self, workload: str, runner: str) -> float | None:
        """The ratio without the runner's extra start-up time (the `startup`
        workload), for workloads timed by wall clock; a workload timing
        itself has none in its time."""
        cell, native = self.cell(workload, runner), self.native_time(workload)
        if cell is None or cell.time is None or native is None or \
                cell.verdict in ("failed", "timeout"):
            return None
        startup = 0.0 if cell.workload.timing else self.extra_time("startup", runner)
        return None if startup is None else ratio(cell.time - startup, native)

    def metric_ratio(self, workload: str, runner: str, name: str) -> float | None:
        cell, base = self.cell(workload, runner), self.cell(workload, NATIVE)
        if cell is None or base is None or cell.verdict in ("failed", "timeout"):
            return None
        return ratio(cell.metric(name), base.metric(name))

    def geomean(self, runner: str) -> tuple[float | None, int, int]:
        """Geometric mean of the runner's ratios over the workloads counted
        in it; with how many ratios it took and how many it should have."""
        counted = [w for w in self.workloads if w.in_geomean]
        ratios = [r for w in counted if (r := self.ratio(w.name, runner)) is not None]
        return geomean(ratios), len(ratios), len(counted)

    def micro_ops(self) -> list[str]:
        """The micro-benchmark's operations, in the order it prints them."""
        ops: list[str] = []
        for cell in self.cells.values():
            if cell.workload.micro:
                for run in cell.runs:
                    ops += [op for op in run.metrics if op not in ops]
        return ops
