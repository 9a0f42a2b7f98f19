"""The claims issue 3 says the benchmark output must show, checked against
one run's numbers: each is "yes", "no" or "n/a" (with why), never assumed."""

from __future__ import annotations

from dataclasses import dataclass

from .results import Results
from .stats import median

FAST = "brandpy-native"
SLOW = "brandpy-python"
ANCHORS = ("proot", "runsc")
PASS_THROUGH = ("dd", "compute")
PASS_THROUGH_LIMIT = 1.1
HOT_CALLS = ("stat", "open+close")
TARGET = 1.5


@dataclass
class Claim:
    text: str
    verdict: str          # yes | no | n/a
    evidence: str


def check(results: Results) -> list[Claim]:
    return [_beats_anchors(results), _pass_through(results), _below_floor(results),
            _outputs_match(results), _target(results)]


def _missing(results: Results, runners: tuple[str, ...]) -> str | None:
    for name in runners:
        if name in results.unavailable:
            return f"{name} unavailable: {results.unavailable[name]}"
        if name not in results.runners:
            return f"{name} not run"
    return None


def _complete_geomean(results: Results, runner: str) -> tuple[float | None, str]:
    value, got, of = results.geomean(runner)
    if value is None or got < of:
        return None, f"{runner}: {got} of {of} workloads usable"
    return value, f"{runner} {value:.2f}×"


def _beats_anchors(results: Results) -> Claim:
    text = "brandpy native's geometric-mean ratio is lower than proot's and runsc-ptrace's"
    if why := _missing(results, (FAST, *ANCHORS)):
        return Claim(text, "n/a", why)
    values = {r: _complete_geomean(results, r) for r in (FAST, *ANCHORS)}
    evidence = ", ".join(e for _, e in values.values())
    if any(v is None for v, _ in values.values()):
        return Claim(text, "n/a", evidence)
    fast = values[FAST][0]
    ok = all(fast < values[a][0] for a in ANCHORS)   # type: ignore[operator]  # no None: checked above
    return Claim(text, "yes" if ok else "no", evidence)


def _pass_through(results: Results) -> Claim:
    text = (f"pass-through-heavy workloads ({', '.join(PASS_THROUGH)}) under brandpy native "
            f"stay within {PASS_THROUGH_LIMIT}× of native (past the runner's start-up, which "
            f"has its own row)")
    if why := _missing(results, (FAST,)):
        return Claim(text, "n/a", why)
    ratios = {w: results.ratio_past_startup(w, FAST) for w in PASS_THROUGH}
    if any(r is None for r in ratios.values()):
        return Claim(text, "n/a", "no ratio for " + ", ".join(w for w, r in ratios.items()
                                                           if r is None))
    ok = all(r <= PASS_THROUGH_LIMIT for r in ratios.values())   # type: ignore[operator]  # no None: checked above
    return Claim(text, "yes" if ok else "no", ", ".join(
        f"{w} {r:.2f}× ({results.ratio(w, FAST):.2f}× with start-up)"
        if results.ratio(w, FAST) != r else f"{w} {r:.2f}×" for w, r in ratios.items()))


def _below_floor(results: Results) -> Claim:
    text = ("hot trapped syscalls (stat, open+close) under brandpy native cost less than one "
            "bare ptrace stop (measured, as brandpy native runs, on any CPU)")
    if results.floor is None or (floor := median(results.floor.any_cpu)) is None:
        return Claim(text, "n/a", "the ptrace floor was not measured")
    same_cpu = median(results.floor.same_cpu)
    python = ", ".join(f"{op} {v:.2f} µs" for op in HOT_CALLS
                       if (c := results.cell("micro", SLOW)) and (v := c.metric(op)) is not None)
    evidence = (f"bare stop {floor:.2f} µs (one CPU: "
                f"{'n/a' if same_cpu is None else f'{same_cpu:.2f} µs'}); "
                f"brandpy python: {python or 'n/a'}")
    if why := _missing(results, (FAST,)):
        return Claim(text, "n/a", f"{why}; {evidence}")
    cell = results.cell("micro", FAST)
    costs = {op: cell.metric(op) if cell else None for op in HOT_CALLS}
    if any(v is None for v in costs.values()):
        return Claim(text, "n/a", f"brandpy native micro-benchmark failed; {evidence}")
    ok = all(v < floor for v in costs.values())   # type: ignore[operator]  # no None: checked above
    native = ", ".join(f"{op} {v:.2f} µs" for op, v in costs.items())
    return Claim(text, "yes" if ok else "no", f"brandpy native: {native}; {evidence}")


def _outputs_match(results: Results) -> Claim:
    text = "every cell's output matches native's"
    bad = [f"{c.workload.name}/{c.runner}: {c.verdict}" for c in results.cells.values()
           if c.verdict != "ok"]
    if not results.cells:
        return Claim(text, "n/a", "nothing ran")
    return Claim(text, "no" if bad else "yes",
                 "; ".join(bad) if bad else f"{len(results.cells)} cells")


def _target(results: Results) -> Claim:
    text = f"target: brandpy native's geometric-mean ratio at or below {TARGET}×"
    if why := _missing(results, (FAST,)):
        return Claim(text, "n/a", why)
    value, evidence = _complete_geomean(results, FAST)
    if value is None:
        return Claim(text, "n/a", evidence)
    return Claim(text, "yes" if value <= TARGET else "no", evidence)
