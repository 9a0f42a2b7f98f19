"""The stress-ng run's results as JSON (every run of every stressor) and
Markdown (the tables; the README quotes the first)."""

from __future__ import annotations

import shlex
from collections import defaultdict
from typing import Any

from .coverage_report import _clip, is_brandpy, suspects
from .coverage_results import Attribution
from .report import _table
from .runners import NATIVE
from .stressng_results import BASELINE, EXIT_MEANING, PASSED, StressResults, StressRun

# --- JSON ------------------------------------------------------------------


def to_json(results: StressResults) -> dict[str, Any]:
    return {
        "meta": results.meta,
        "command": shlex.join(results.argv),
        "classes": results.classes,
        "runners": [{"name": n, "label": label, "available": n in results.runners,
                     "reason": results.unavailable.get(n)}
                    for n, label in results.labels.items()],
        "totals": {r: {"passed": len(results.passing(r)), "lost": results.lost(r),
                       "wall_s": round(results.wall(r), 1)} for r in results.runners},
        "counted": results.eligible(),
        "set_aside": {v: results.set_aside(v) for v in ("skipped", "fails", "flaky")},
        "stressors": [{"stressor": s, "classes": results.classes_of(s),
                       "native": results.native_verdict(s),
                       "runs": {r: [_run_json(run) for run in results.runs.get((s, r), [])]
                                for r in results.runners}}
                      for s in results.stressors],
        "attributions": [_attribution_json(results, a) for a in results.attributions],
        "baselines": {r: _attribution_json(results, a) for r, a in results.baselines.items()},
    }


def _run_json(run: StressRun) -> dict[str, Any]:
    return {"repeat": run.repeat, "outcome": run.outcome, "status": run.status,
            "wall_s": round(run.wall, 2), "detail": run.detail or None,
            "ledger": None if run.ledger is None else [vars(row) for row in run.ledger]}


def _attribution_json(results: StressResults, a: Attribution) -> dict[str, Any]:
    return {"stressor": a.test_id, "runner": a.runner, "outcome": a.outcome,
            "traced_rerun": a.traced, "detail": a.detail,
            "ledger": None if a.ledger is None else [vars(row) for row in a.ledger],
            "own_ledger": [vars(row) for row in results.own_ledger(a)],
            "failed_calls": [vars(c) for c in a.failed],
            "own_failures": [vars(c) for c in results.own_failures(a)]}


# --- Markdown --------------------------------------------------------------

def to_markdown(results: StressResults) -> str:
    m = results.meta
    parts = [
        "# brandpy stress-ng benchmark",
        f"Run {m['started']}, commit {m['commit']}, Linux {m['kernel']}, {m['cpus']} CPUs, "
        f"as uid {m['user']}; took {m['duration_s'] / 60:.0f} min."
        + (f" brandpy imported with PYTHONPATH={m['pythonpath']}." if m.get("pythonpath") else "")
        + f" {m['stress_ng']} (Debian's package) in a private copy of the Debian rootfs; "
        f"classes {', '.join(results.classes)}; each stressor alone, "
        f"`{shlex.join(results.argv)}`, {m['repeats']} times; {m['network']}. A stressor "
        "passes when stress-ng exits 0 having run it. Natively first: a stressor that does "
        "not pass in every native repeat (skipped by stress-ng itself for want of hardware, "
        "kernel support or privilege, failing, or flaky) is set aside and not run under the "
        f"other runners. Each run is killed after {m['backstop_s']:.0f} s; every runner's "
        f"runs share one cgroup's limits ({m.get('cgroup_limits', 'none')})."
        + (f" brandpy ran with `{' '.join(m['brandpy_options'])}`, as privileged as the other "
           "runners (all run as root)." if m.get("brandpy_options") else ""),
        class_table(results),
        losses_section(results),
        ledger_section(results),
        set_aside_section(results),
        unavailable_section(results),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def class_table(results: StressResults) -> str:
    cols = results.columns
    counted = set(results.eligible())
    rows = []
    for name, members in [*results.classes.items(), ("**all**", results.stressors)]:
        chosen = [s for s in members if s in results.stressors]
        row = [name, str(len(chosen))]
        for r in cols:
            if r in results.unavailable:
                row.append("unavailable")
                continue
            passing = set(results.passing(r)) & set(chosen)
            lost = len(set(results.lost(r)) & set(chosen))
            row.append(f"{len(passing)}" + (f" (−{lost})" if lost else ""))
        rows.append(row)
    rows[-1] = [f"**{c}**" if i else c for i, c in enumerate(rows[-1])]
    total_wall = ["wall time", ""] + [
        "" if r in results.unavailable else f"{results.wall(r) / 60:.1f} min" for r in cols]
    return "\n\n".join([
        "## Stressors passed, per class",
        f"Stressors that pass in every repeat; the native column counts the "
        f"{len(counted)} that pass natively every time, which are the ones run under the "
        "others. (−N): stressors passing natively every time that did not pass every time "
        "under that runner. A stressor may belong to several classes.",
        _table(["class", "stressors", *(results.labels[c] for c in cols)],
               ["---", "---:", *("---:" for _ in cols)], [*rows, total_wall])])


def _cell(results: StressResults, stressor: str, runner: str) -> str:
    runs = results.runs.get((stressor, runner), [])
    if not runs:
        return "–"
    passed = sum(r.outcome == PASSED for r in runs)
    if passed == len(runs):
        return "passed"
    kinds = sorted({f"{r.outcome} (exit {r.status}: {EXIT_MEANING.get(r.status, '?')})"
                    if r.outcome == "failed" else r.outcome for r in runs if r.outcome != PASSED})
    return f"{passed}/{len(runs)}; " + ", ".join(kinds)


def losses_section(results: StressResults) -> str:
    others = [r for r in results.runners if r != NATIVE]
    lost = sorted({s for r in others for s in results.lost(r)})
    if not lost:
        return "## Stressors lost\n\nNone: every stressor that passes natively passes under " \
               "every runner."
    rows = []
    for s in lost:
        found: dict[tuple[str, str, str], str] = {}
        notes, said = [], ""
        for r in others:
            if s not in results.lost(r):
                continue
            failing = next(run for run in results.runs[s, r] if run.outcome != PASSED)
            if is_brandpy(r):
                said = said or failing.detail
                a = results.attribution(r, s)
                if a is None:
                    notes.append(f"{results.labels[r]}: not run again")
                    continue
                found = {**suspects(a, results.baselines.get(r)), **found}
                if a.traced == PASSED:
                    notes.append(f"{results.labels[r]}: passes traced")
        rows.append([f"`{s}`", ", ".join(results.classes_of(s)),
                     *(_cell(results, s, r) for r in others),
                     "; ".join([*found.values(), *notes]) or "–",
                     _clip(said.replace("\n", " ⏎ "), 300).replace("|", "\\|") or "–"])
    return "\n\n".join([
        "## Stressors lost",
        "Every stressor that passes natively every time and not under some runner: passes "
        "out of repeats and how the others ended. For brandpy, the calls behind the loss: "
        "the ledger of its failed run (unsupported or denied calls) and, from a traced rerun, "
        f"the trapped calls that returned an error, less what the `{BASELINE}` "
        "stressor's run shows (stress-ng's own harness). A failed call is a suspect, not a "
        "verdict. The last column is what stress-ng said under brandpy.",
        _table(["stressor", "classes", *(results.labels[r] for r in others),
                "brandpy's calls", "stress-ng said (brandpy)"],
               ["---", "---", *("---" for _ in others), "---", "---"], rows)])


def ledger_section(results: StressResults) -> str:
    engines = [r for r in results.runners if is_brandpy(r)]
    if not engines:
        return ""
    calls: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    where: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for (stressor, runner), runs in results.runs.items():
        for run in runs:
            for row in run.ledger or []:
                key = (row.syscall, row.error, row.reason)
                calls[key][runner] += row.calls
                where[key].add(stressor)
    if not calls:
        return "## brandpy's ledger\n\nNo unsupported or denied syscall under any stressor."
    rows = [[f"`{s}`", e, reason, *(str(calls[s, e, reason].get(r, 0)) for r in engines),
             _clip(", ".join(sorted(where[s, e, reason])), 200)]
            for s, e, reason in sorted(calls)]
    return "\n\n".join([
        "## brandpy's ledger",
        "Unsupported and denied syscalls over all runs (`--report`), in calls, with the "
        "stressors that made them.",
        _table(["syscall", "error", "reason", *(results.labels[e] for e in engines),
                "stressors"], ["---", "---", "---", *("---:" for _ in engines), "---"], rows)])


def set_aside_section(results: StressResults) -> str:
    lines = ["## Set aside natively"]
    for verdict, why in (("skipped", "stress-ng skipped them natively (no hardware, kernel "
                          "support or privilege for them here)"),
                         ("fails", "they fail natively"),
                         ("flaky", "they pass in some native repeats only")):
        names = results.set_aside(verdict)
        if not names:
            continue
        lines.append(f"- {len(names)} because {why}: " + ", ".join(
            f"`{s}`" + (f" ({_native_said(results, s)})" if verdict != "skipped" else "")
            for s in names))
    return "\n".join(lines) if len(lines) > 1 else ""


def _native_said(results: StressResults, stressor: str) -> str:
    run = next((r for r in results.runs.get((stressor, NATIVE), []) if r.outcome != PASSED),
               None)
    if run is None:
        return ""
    first = run.detail.splitlines()[0] if run.detail else f"exit {run.status}"
    return _clip(first, 120).replace("|", "\\|")


def unavailable_section(results: StressResults) -> str:
    if not results.unavailable:
        return ""
    return "## Unavailable runners\n\n" + "\n".join(
        f"- **{results.labels[n]}**: {why}" for n, why in results.unavailable.items())

