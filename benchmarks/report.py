"""The suite's results as JSON (everything, for tools) and Markdown (the
tables a reader needs; the README quotes it)."""

from __future__ import annotations

import shlex
from typing import Any

from . import claims
from .results import Cell, Results
from .runners import NATIVE
from .stats import median

MIN_CALLS_PER_COST = 1000   # fewer trapped calls: start-up noise swamps the per-call cost
MARKS = {"mismatch": "≠", "failed": "✗", "timeout": "⏱", "no reference": "?"}


# --- JSON ------------------------------------------------------------------

def to_json(results: Results) -> dict[str, Any]:
    return {
        "meta": results.meta,
        "runners": [{"name": n, "label": label, "available": n in results.runners,
                     "reason": results.unavailable.get(n)}
                    for n, label in results.labels.items()],
        "workloads": [{"name": w.name, "title": w.title, "image": w.image, "argv": list(w.argv),
                       "in_geomean": w.in_geomean, "micro": w.micro}
                      for w in results.workloads],
        "cells": [_cell_json(results, c) for c in results.cells.values()],
        "geomean": {r: dict(zip(("ratio", "counted", "of"), results.geomean(r), strict=True))
                    for r in results.runners},
        "floor": results.floor.to_json() if results.floor else None,
        "claims": [vars(c) for c in claims.check(results)],
    }


def _cell_json(results: Results, cell: Cell) -> dict[str, Any]:
    name = cell.workload.name
    out: dict[str, Any] = {
        "workload": name, "runner": cell.runner, "verdict": cell.verdict,
        "median_s": cell.time, "ratio": results.ratio(name, cell.runner),
        "skipped": cell.skipped,
        "runs": [{"wall_s": r.wall, "seconds": r.seconds, "cpu_s": r.cpu, "status": r.status,
                  "timed_out": r.timed_out, "stderr_head": r.stderr_head,
                  "matches": None if cell.reference is None or not r.ok
                  else r.output == cell.reference,
                  "metrics": r.metrics or None,
                  "stops": None if r.stops is None else
                  {"trapped": r.stops.calls, "stops_per_trapped": r.stops.stops_per_call,
                   "event_stops": r.stops.event_stops, "totals": r.stops.totals}}
                 for r in cell.runs],
    }
    if cell.workload.micro:
        out["metrics"] = {op: {"median_us": cell.metric(op),
                               "ratio": results.metric_ratio(name, cell.runner, op)}
                          for op in results.micro_ops()}
    if cell.stop_runs:
        out["stops"] = stop_summary(results, cell)
    if cell.mismatches:
        out["mismatch"] = {"expected": cell.reference, "got": cell.mismatches[0].output}
    return out


def stop_summary(results: Results, cell: Cell) -> dict[str, Any]:
    """Per run: trapped calls, ptrace stops per trapped call, other stops,
    and what one trapped call added: the runner's extra time over native,
    less its extra start-up time (the `startup` workload), divided by the
    trapped calls. Only where there are enough calls for that to mean
    something."""
    runs = cell.stop_runs
    calls = median([s.calls for s in runs])
    # Weighted by calls: the stops of all runs over their trapped calls.
    counted = [(s.stops_per_call, s.calls) for s in runs
               if s.stops_per_call is not None and s.calls]
    per_call = (sum(p * c for p, c in counted) / sum(c for _, c in counted)
                if counted else None)
    added = None
    extra = results.extra_time(cell.workload.name, cell.runner)
    # A workload timing itself has no start-up in its time; micro's time is fixed.
    startup = None if cell.workload.timing else results.extra_time("startup", cell.runner)
    if (calls and calls >= MIN_CALLS_PER_COST and extra is not None
            and not cell.workload.micro):
        added = (extra - (startup or 0.0)) / calls * 1e6
    return {"trapped_per_run": calls,
            "stops_per_trapped": per_call,
            "event_stops_per_run": median([s.event_stops for s in runs
                                           if s.event_stops is not None]),
            "added_us_per_trapped": added,
            "per_syscall_last_run": runs[-1].per_syscall}


# --- Markdown --------------------------------------------------------------

def to_markdown(results: Results) -> str:
    m = results.meta
    parts = [
        "# brandpy benchmarks",
        f"Run {m['started']}, commit {m['commit']}, Linux {m['kernel']}, {m['cpus']} CPUs, "
        f"{m['reps']} runs per cell (medians), runners interleaved round-robin; "
        f"took {m['duration_s']:.0f} s."
        + (f" brandpy imported with PYTHONPATH={m['pythonpath']}." if m.get("pythonpath") else ""),
        workload_table(results),
        micro_table(results),
        stops_table(results),
        claims_section(results),
        problems_section(results),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _unavailable(results: Results, runner: str) -> str | None:
    return "unavailable" if runner in results.unavailable else None


def _ratio_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def workload_table(results: Results) -> str:
    timed = [w for w in results.workloads if not w.micro]
    if not timed:
        return ""
    cols = results.columns
    rows = []
    for w in timed:
        notes = ("" if w.in_geomean else " ¹") + (" ²" if w.timing else "")
        row = [w.title + notes, w.image]
        for r in cols:
            cell = results.cell(w.name, r)
            if (text := _unavailable(results, r)) or cell is None:
                row.append(text or "–")
                continue
            mark = MARKS.get(cell.verdict, "")
            if r == NATIVE:
                row.append(f"{cell.time:.3f} s{mark}" if cell.time is not None else mark)
            elif cell.verdict in ("failed", "timeout"):
                row.append(f"{mark} {cell.verdict}")
            else:
                secs = f" ({cell.time:.2f} s)" if cell.time is not None else ""
                row.append(f"{_ratio_text(results.ratio(w.name, r))}{secs}{mark}")
        rows.append(row)
    geo = ["**geometric mean**", ""]
    for r in cols:
        if text := _unavailable(results, r):
            geo.append(text)
            continue
        value, got, of = results.geomean(r)
        note = "" if got == of else f" ({got} of {of})"
        geo.append(f"**{_ratio_text(value)}**{note}")
    rows.append(geo)
    table = _table(["workload", "rootfs", *(results.labels[c] for c in cols)],
                   ["---", "---", *("---:" for _ in cols)], rows)
    return "\n\n".join([
        "## Workloads: time relative to native",
        "Median wall time of the whole command, runner start-up included, as a ratio to "
        "native's median (native: chroot; its median in seconds).",
        table,
        "¹ not in the geometric mean. ² timed by the workload's own report (dd: its copy "
        "loop), not by wall clock. Marks: ≠ output differs from native's, ✗ failed, "
        "⏱ timed out, ? no native reference (details below).",
    ])


def micro_table(results: Results) -> str:
    ops = results.micro_ops()
    if not ops:
        return ""
    cols = results.columns
    rows = []
    for op in ops:
        row = [f"`{op}`"]
        for r in cols:
            cell = results.cell("micro", r)
            if (text := _unavailable(results, r)) or cell is None:
                row.append(text or "–")
            elif cell.verdict in ("failed", "timeout"):
                row.append(f"{MARKS[cell.verdict]} {cell.verdict}")
            elif (value := cell.metric(op)) is None:
                row.append("–")
            elif r == NATIVE:
                row.append(f"{value:.2f}")
            else:
                row.append(f"{value:.2f} ({_ratio_text(results.metric_ratio('micro', r, op))})")
        rows.append(row)
    parts = ["## Syscall cost: micro-benchmark (µs per call)",
             "micro.c (static) in the busybox rootfs: median µs per call, ratio to native "
             "in parentheses. `read` is a pread of an open file (never trapped).",
             _table(["call", *(results.labels[c] for c in cols)],
                    ["---", *("---:" for _ in cols)], rows)]
    if (floor := results.floor) is not None:
        parts.append(floor_sentence(floor.to_json()))
    return "\n\n".join(parts)


def floor_sentence(floor: dict[str, Any]) -> str:
    def us(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f} µs"
    text = ("The floor for one stop (ptrace_floor.c: seccomp RET_TRACE on getppid, a C tracer "
            f"that only resumes): **{us(floor['stop_any_cpu'])}** per call, "
            f"**{us(floor['stop_same_cpu'])}** with tracer and tracee pinned to one CPU; "
            f"getppid without a filter {us(floor['getppid_native'])}.")
    if floor["errors"]:
        text += " Errors: " + "; ".join(floor["errors"])
    return text


def stops_table(results: Results) -> str:
    rows = []
    for cell in results.cells.values():
        if not cell.stop_runs:
            continue
        s = stop_summary(results, cell)
        rows.append([cell.workload.title, results.labels[cell.runner],
                     _num(s["trapped_per_run"], "{:.0f}"), _num(s["stops_per_trapped"], "{:.3f}"),
                     _num(s["event_stops_per_run"], "{:.0f}"),
                     _num(s["added_us_per_trapped"], "{:.1f}")])
    if not rows:
        return ""
    return "\n\n".join([
        "## ptrace stops (brandpy `--stats`)",
        "Per run (medians): syscalls trapped by the filter, ptrace stops per trapped syscall "
        "(1.000 is the design's goal), other stops (fork, exec, signals), and the time one "
        "trapped call added: the runner's extra time over native, less its extra start-up "
        f"time, divided by its trapped calls (shown from {MIN_CALLS_PER_COST} calls per run).",
        _table(["workload", "runner", "trapped calls", "stops per trapped call", "other stops",
                "added µs per trapped call"], ["---", "---", "---:", "---:", "---:", "---:"],
               rows)])


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def claims_section(results: Results) -> str:
    lines = ["## What the suite must show (issue 3)"]
    lines += [f"- **{c.verdict}**: {c.text} — {c.evidence}" for c in claims.check(results)]
    return "\n".join(lines)


def problems_section(results: Results) -> str:
    lines = []
    for name, reason in results.unavailable.items():
        lines.append(f"- runner **{results.labels[name]}** unavailable: {reason}")
    for cell in results.cells.values():
        if cell.verdict == "ok":
            continue
        head = f"- **{cell.workload.name}** under **{results.labels[cell.runner]}**: "
        cmd = f"  guest command: `{shlex.join(cell.workload.argv)}` ({cell.workload.image})"
        if cell.verdict in ("failed", "timeout"):
            bad = cell.failures
            first = bad[0]
            what = ("timed out" if first.timed_out else f"exit {first.status}"
                    if first.status else "no timing in the output")
            skipped = f", {cell.skipped} skipped after it" if cell.skipped else ""
            lines += [head + f"{what} in {len(bad)} of {len(cell.runs)} runs{skipped}", cmd]
            if first.stderr_head:
                lines.append("  ```\n" + _indent(first.stderr_head) + "\n  ```")
        elif cell.verdict == "mismatch":
            got = cell.mismatches[0].output
            lines += [head + f"output differs from native's in {len(cell.mismatches)} of "
                      f"{len(cell.ok_runs)} runs", cmd,
                      "  expected:\n  ```\n" + _indent(_clip(cell.reference or "")) + "\n  ```",
                      "  got:\n  ```\n" + _indent(_clip(got)) + "\n  ```"]
        else:
            lines += [head + "native failed, so there is nothing to compare with", cmd]
    if not lines:
        return ""
    return "## Unavailable runners, failures and mismatches\n\n" + "\n".join(lines)


def _clip(text: str, lines: int = 8) -> str:
    kept = text.splitlines()
    return "\n".join(kept[:lines] + ([f"... ({len(kept) - lines} more lines)"]
                                     if len(kept) > lines else []))


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
