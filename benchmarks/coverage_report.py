"""The coverage run's results as JSON (everything the tables come from)
and Markdown (the tables; the README quotes the first)."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from typing import Any

from .coverage_modules import BASELINE
from .coverage_results import NOT_RUN, Attribution, CoverageResults, Loss, ModuleRun, own_failures, own_ledger
from .ledger import LedgerRow
from .report import _indent, _table
from .runners import NATIVE

MARKS = {"timeout": "⏱", "crashed": "✗", "not started": "✗", "load error": "✗", "skipped": "↷"}
DETAIL_LINES = 12
BRANDPY = "brandpy"          # runner names starting with this have a ledger


def is_brandpy(runner: str) -> bool:
    return runner.startswith(BRANDPY)


# --- JSON ------------------------------------------------------------------

def to_json(results: CoverageResults) -> dict[str, Any]:
    return {
        "meta": results.meta,
        "modules": results.modules,
        "excluded": results.excluded,
        "runners": [{"name": n, "label": label, "available": n in results.runners,
                     "reason": results.unavailable.get(n)}
                    for n, label in results.labels.items()],
        "totals": {r: {**results.total(r), "wall_s": round(results.wall(r), 1),
                       "lost": sum(len(results.lost(m, r)) for m in results.modules)}
                   for r in results.runners},
        "runs": [_run_json(results, run) for run in results.runs.values()],
        "attributions": [_attribution_json(results, a) for a in results.attributions],
        "baselines": {r: _attribution_json(results, a) for r, a in results.baselines.items()},
        "claims": claims(results),
    }


def _run_json(results: CoverageResults, run: ModuleRun) -> dict[str, Any]:
    r = run.regrtest
    return {
        "module": run.module, "runner": run.runner, "verdict": run.verdict,
        "counts": run.counts(), "wall_s": round(run.wall, 2), "status": run.status,
        "command": shlex.join(run.argv), "regrtest_result": r.verdict,
        "module_skip": r.module_skip, "unfinished_test": r.unfinished, "watchdog": r.watchdog,
        "ledger": None if run.ledger is None else [vars(row) for row in run.ledger],
        "failures": [{"test": t, "outcome": o.outcome, "where": evidence(o.detail)}
                     for t, o in r.tests.items() if o.outcome in ("failed", "error")],
        "lost": [vars(loss) for loss in results.lost(run.module, run.runner)],
        "gained": results.gained(run.module, run.runner),
        "stderr_tail": run.stderr_tail if run.verdict != "completed" else None,
    }


def _attribution_json(results: CoverageResults, a: Attribution) -> dict[str, Any]:
    return {"module": a.module, "runner": a.runner, "test": a.test_id, "rerun": a.outcome,
            "traced_rerun": a.traced,
            "ledger": None if a.ledger is None else [vars(row) for row in a.ledger],
            "own_ledger": [vars(row) for row in results.own_ledger(a)],
            "failed_calls": [vars(c) for c in a.failed],
            "own_failures": [vars(c) for c in results.own_failures(a)],
            "where": evidence(a.detail), "detail": a.detail}


def claims(results: CoverageResults) -> list[dict[str, Any]]:
    """Issue 7: brandpy passes at least as many tests as proot and
    runsc-ptrace on the same run (n/a when a runner did not run)."""
    found = []
    for mine in (r for r in results.columns if is_brandpy(r)):
        for other in ("proot", "runsc"):
            if other not in results.columns:
                continue
            text = f"{results.labels[mine]} passes at least as many tests as " \
                   f"{results.labels[other]}"
            if mine not in results.runners or other not in results.runners:
                found.append({"text": text, "verdict": "n/a", "evidence": "a runner did not run"})
                continue
            a, b = results.total(mine)["passed"], results.total(other)["passed"]
            found.append({"text": text, "verdict": "yes" if a >= b else "no",
                          "evidence": f"{a} against {b}"})
    return found


# --- Markdown --------------------------------------------------------------

def to_markdown(results: CoverageResults) -> str:
    m = results.meta
    python = next((run.regrtest.python for run in results.runs.values()
                   if run.regrtest.python), "?")
    parts = [
        "# brandpy syscall-coverage benchmark",
        f"Run {m['started']}, commit {m['commit']}, Linux {m['kernel']}, {m['cpus']} CPUs, "
        f"as uid {m['user']}; took {_duration(m['duration_s'])}."
        + (f" brandpy imported with PYTHONPATH={m['pythonpath']}." if m.get("pythonpath") else "")
        + f" CPython {python}'s regression tests (Debian's libpython3.11-testsuite) in a "
        f"private copy of the Debian rootfs, one module at a time, no optional regrtest "
        f"resources; {m['network']}. A test running longer than {m['per_test_timeout_s']:.0f} s "
        f"ends its module (⏱), as does a module running longer than "
        f"{m['module_timeout_s']:.0f} s."
        + (f" brandpy ran with `{' '.join(m['brandpy_options'])}`, as privileged as the other "
           "runners and with the host devices they see (Docker's default capabilities and "
           "seccomp profile would add their denials)."
           if m.get("brandpy_options") else "")
        + _partial(results),
        module_table(results),
        claims_section(results),
        losses_section(results),
        ledger_section(results),
        problems_section(results),
        excluded_section(results),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _partial(results: CoverageResults) -> str:
    planned = results.meta.get("modules_planned") or results.modules
    left = [m for m in planned if m not in results.modules]
    if not left:
        return ""
    return (f" **Partial run**: {len(results.modules)} of {len(planned)} modules finished "
            f"before it was stopped; not run: {', '.join(left)}.")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _cell(run: ModuleRun | None) -> str:
    if run is None:
        return "–"
    c = run.counts()
    mark = MARKS.get(run.verdict, "")
    return (f"{c['passed']} / {c['failed']} / {c['error']} / {c['skipped']} · "
            f"{run.wall:.1f} s{' ' + mark if mark else ''}")


def module_table(results: CoverageResults) -> str:
    cols = results.columns
    rows = []
    for module in results.modules:
        row = [module]
        for r in cols:
            row.append("unavailable" if r in results.unavailable
                       else _cell(results.run(module, r)))
        rows.append(row)
    total, lost = ["**total**"], ["**natively passing tests lost**"]
    for r in cols:
        if r in results.unavailable:
            total.append("unavailable")
            lost.append("")
            continue
        t = results.total(r)
        total.append(f"**{t['passed']}** / {t['failed']} / {t['error']} / {t['skipped']} · "
                     f"{results.wall(r):.0f} s")
        lost.append("–" if r == NATIVE else
                    str(sum(len(results.lost(m, r)) for m in results.modules)))
    rows += [total, lost]
    return "\n\n".join([
        "## Tests per module",
        "Each cell: tests passed / failed / errors / skipped · wall time of the module "
        "(runtime start-up included). Expected failures count as passed and unexpected "
        "successes as failed, as unittest counts them; a test with failing subtests counts "
        "once. Marks: ⏱ a test or the module timed out (the counts are of the tests before "
        "it), ✗ the run crashed or did not start, ↷ regrtest skipped the whole module. "
        "*Lost*: tests that pass natively and do not pass under the runner (failed, error, "
        "skipped or never reached).",
        _table(["module", *(results.labels[c] for c in cols)],
               ["---", *("---:" for _ in cols)], rows),
    ])


def claims_section(results: CoverageResults) -> str:
    found = claims(results)
    if not found:
        return ""
    lines = ["## What the benchmark must show (issue 7)"]
    lines += [f"- **{c['verdict']}**: {c['text']} — {c['evidence']}" for c in found]
    return "\n".join(lines)


def _row_text(row: LedgerRow) -> str:
    return f"`{row.syscall}` {row.error} ×{row.calls} ({row.reason})"


def suspects(a: Attribution, base: Attribution | None,
             most: int = 4) -> dict[tuple[str, str, str], str]:
    """The rerun's own ledger rows (less its runner's baseline's), then its
    own failed trapped calls, by (kind, syscall, errno) so that both
    engines' reruns merge."""
    found = {("ledger", row.syscall, row.error): f"ledger: {_row_text(row)}"
             for row in own_ledger(a, base)}
    for c in own_failures(a, base)[:most]:
        found[("failed", c.syscall, c.errno)] = (f"`{c.syscall}` → {c.errno} ×{c.calls} "
                                                 f"({c.disposition}, e.g. "
                                                 f"`{_clip(c.example, 80)}`)")
    return found


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*/test/[^"/]+\.py)", line (?P<line>\d+), in \S+\n'
                    r'(?P<source>.*)$', re.MULTILINE)


def evidence(detail: str | None) -> str:
    """The innermost line of the test suite's own code in a traceback and
    the exception it ended with: `test_x.py:12 os.fork()` → OSError: ..."""
    lines = [ln.strip() for ln in (detail or "").splitlines() if ln.strip()]
    if not lines:
        return ""
    frames = list(_FRAME.finditer(detail or ""))
    if not frames:
        return lines[-1]
    f = frames[-1]
    return f"{f['file'].rsplit('/', 1)[1]}:{f['line']} `{f['source'].strip()}` → {lines[-1]}"


def losses_section(results: CoverageResults) -> str:
    """One row per test lost under a brandpy engine, the engines side by
    side, with what its reruns showed; tests lost only because their
    module timed out first get one row per module."""
    engines = [r for r in results.runners if is_brandpy(r)]
    if not engines:
        return ""
    rows = []
    for module in results.modules:
        lost = {e: {loss.test_id: loss for loss in results.lost(module, e)} for e in engines}
        failing = sorted({t for per in lost.values() for t, loss in per.items()
                          if loss.outcome != NOT_RUN})
        for test_id in failing:
            rows.append(_loss_row(results, module, test_id, engines, lost))
        unreached = [sum(1 for t, loss in lost[e].items()
                         if loss.outcome == NOT_RUN and t not in failing) for e in engines]
        if any(unreached):
            timed_out = {e: run.regrtest.unfinished for e in engines
                         if (run := results.run(module, e)) and run.verdict != "completed"}
            why = "; ".join(f"{results.labels[e]}: the module ended in `{t}`"
                            for e, t in timed_out.items() if t)
            rows.append([module, "*tests never reached*", *(str(n) for n in unreached),
                         why or "–", "see the timeouts below"])
    if not rows:
        return "## Tests brandpy loses\n\nNone: every test that passes natively passes " \
               "under " + " and ".join(results.labels[e] for e in engines) + "."
    intro = (
        "Every test that passes natively and not under brandpy, and what running it again "
        "alone showed: *passes alone* (the loss depends on what ran before it in the module); "
        "*passes traced* (it fails alone but passes under `--trace`, which turns the native "
        "engine's seccomp user notification off: the call is one its C fast path answers); "
        "or the suspects — the rerun's ledger rows (unsupported or denied calls) and, from a "
        "traced rerun, the trapped calls that returned an error, less what a test making no "
        f"call of note also shows under the same engine (`{BASELINE[1]}`). A failed call is a "
        "suspect, not a verdict; with none, the call behind the failure returned success with "
        "a different answer from Linux's, or was not trapped. The last column is the test's "
        "line that failed and the exception, from the module run. To repeat one: "
        "`python -m brandpy run --engine ENGINE --rootfs COPY-OF-DEBIAN -- python3 -m test "
        "-v -m TEST-ID MODULE` (copy the rootfs and add its /etc/hosts as the benchmark does).")
    return "\n\n".join([
        "## Tests brandpy loses", intro,
        _table(["module", "test", *(results.labels[e] for e in engines),
                "rerun alone", "where it failed"],
               ["---", "---", *("---" for _ in engines), "---", "---"], rows)])


def _loss_row(results: CoverageResults, module: str, test_id: str, engines: list[str],
              lost: dict[str, dict[str, Loss]]) -> list[str]:
    outcomes: list[str] = []
    notes: list[str] = []
    found: dict[tuple[str, str, str], str] = {}
    seen = ""
    for e in engines:
        loss = lost[e].get(test_id)
        outcomes.append(loss.outcome if loss else "passed")
        if loss and not seen:
            seen = evidence(loss.detail)
        a = results.attribution(e, test_id)
        label = results.labels[e]
        if a is None:
            if loss and loss.outcome != NOT_RUN:
                notes.append(f"{label}: not run again")
        elif a.outcome == "passed":
            notes.append(f"{label}: passes alone")
        elif a.traced == "passed":
            notes.append(f"{label}: {a.outcome} alone, passes traced")
        else:
            found = {**suspects(a, results.baselines.get(e)), **found}
    short = test_id.removeprefix(f"test.{module}.")
    return [module, f"`{short}`", *outcomes,
            "; ".join([*found.values(), *notes]) or "no suspect", _escape(seen)]


def _escape(text: str) -> str:
    return _clip(text, 240).replace("|", "\\|")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def ledger_section(results: CoverageResults) -> str:
    """Every ledger row of the module runs, summed per (syscall, errno,
    reason), with the modules it came from."""
    engines = [r for r in results.runners if is_brandpy(r)]
    calls: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    where: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for (module, runner), run in results.runs.items():
        for row in run.ledger or []:
            key = (row.syscall, row.error, row.reason)
            calls[key][runner] += row.calls
            where[key].add(module)
    if not engines:
        return ""
    rows = [[f"`{s}`", e, reason, *(str(calls[s, e, reason].get(r, 0)) for r in engines),
             ", ".join(sorted(where[s, e, reason]))]
            for s, e, reason in sorted(calls)]
    if not rows:
        return "## brandpy's ledger\n\nNo unsupported or denied syscall in any module."
    return "\n\n".join([
        "## brandpy's ledger",
        "Unsupported and denied syscalls over all module runs (`--report`), in calls.",
        _table(["syscall", "error", "reason", *(results.labels[e] for e in engines), "modules"],
               ["---", "---", "---", *("---:" for _ in engines), "---"], rows)])


def problems_section(results: CoverageResults) -> str:
    lines = [f"- runner **{results.labels[n]}** unavailable: {why}"
             for n, why in results.unavailable.items()]
    for run in results.runs.values():
        if run.verdict in ("completed", "skipped"):
            continue
        r = run.regrtest
        what = {"timeout": "timed out", "crashed": f"ended without regrtest's result "
                f"(exit {run.status})", "not started": f"never started the tests "
                f"(exit {run.status})", "load error": "ran no test"}[run.verdict]
        if r.unfinished:
            what += f" in `{r.unfinished}`"
        lines.append(f"- **{run.module}** under **{results.labels[run.runner]}** {what}")
        lines.append(f"  command: `{shlex.join(run.argv)}`")
        output = r.watchdog or run.stderr_tail
        if output:
            kept = output.splitlines()[:DETAIL_LINES]
            lines.append("  ```\n" + _indent("\n".join(kept)) + "\n  ```")
    if not lines:
        return ""
    return "## Timeouts, crashes and unavailable runners\n\n" + "\n".join(lines)


def excluded_section(results: CoverageResults) -> str:
    if not results.excluded:
        return ""
    lines = ["## Left out, for every runner"]
    lines += [f"- `{module}`: `{pattern}` — {why}"
              for module, patterns in results.excluded.items()
              for pattern, why in patterns.items()]
    return "\n".join(lines)
