"""What one run of regrtest_driver.py said, read back on the host: every
test's outcome from the driver's records, the test that was running when
the run ended (if it had not finished), regrtest's own verdict and, when
the per-test watchdog fired, the stacks it dumped.

Outcomes are unittest's, folded into four counts: passed (expected
failures included, as unittest counts them), failed (unexpected successes
included, likewise), error and skipped. A test whose subtests failed has no
outcome of its own from unittest: it takes its worst subtest's."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .regrtest_driver import MARK

OUTCOMES = ("passed", "failed", "error", "skipped")
_FOLD = {"xfail": "passed", "xpass": "failed"}
# Worst first: the outcome a test with several records ends with.
_SEVERITY = {"error": 0, "failed": 1, "passed": 2, "skipped": 3}
_RECORD = re.compile(re.escape(MARK) + r"(\{.*\})$", re.MULTILINE)
_VERDICT = re.compile(r"^Tests result: (.+)$", re.MULTILINE)
_MODULE_SKIP = re.compile(r"^(?:\S+ )?(test_\w+) skipped -- (.+)$", re.MULTILINE)
_WATCHDOG = re.compile(r"^Timeout \((\d+:\d\d:\d\d)\)!\n(?:.+\n?)*", re.MULTILINE)


@dataclass
class CaseOutcome:
    outcome: str                 # one of OUTCOMES
    detail: str | None = None    # traceback, or the skip reason
    seconds: float | None = None


@dataclass
class RegrtestRun:
    tests: dict[str, CaseOutcome] = field(default_factory=dict)
    unfinished: str | None = None    # the test running when the process ended
    python: str | None = None        # the guest's Python version, once the driver started
    verdict: str | None = None       # regrtest's "Tests result: ..." (None: it never got there)
    module_skip: str | None = None   # why regrtest skipped the whole module
    watchdog: str | None = None      # faulthandler's dump when one test overran

    @property
    def began(self) -> bool:
        return self.python is not None

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(OUTCOMES, 0)
        for t in self.tests.values():
            found[t.outcome] += 1
        return found


def parse(stdout: str, stderr: str) -> RegrtestRun:
    run = RegrtestRun()
    records = [json.loads(m.group(1)) for m in _RECORD.finditer(stdout)]
    begin = next((r for r in records if r["ev"] == "begin"), None)
    if begin is not None:
        run.python = begin["python"]
        records = [r for r in records if r["pid"] == begin["pid"]]
    started: dict[str, float] = {}
    subtests: dict[str, list[dict]] = {}
    current = None
    for rec in records:
        if rec["ev"] == "start":
            current = rec["id"]
            started[current] = rec["t"]
        elif rec["ev"] == "result":
            if "sub" in rec:
                subtests.setdefault(rec["id"], []).append(rec)
                continue
            outcome = _FOLD.get(rec["outcome"], rec["outcome"])
            seconds = rec["t"] - started[rec["id"]] if rec["id"] in started else None
            _merge(run.tests, rec["id"], CaseOutcome(outcome, rec["detail"], seconds))
            if rec["id"] == current:
                current = None
    for test_id, subs in subtests.items():
        worst = min(subs, key=lambda r: _SEVERITY[r["outcome"]])
        detail = f"subtest {worst['sub']}\n{worst['detail']}"
        _merge(run.tests, test_id, CaseOutcome(worst["outcome"], detail))
        if test_id == current:
            current = None
    run.unfinished = current
    if verdicts := _VERDICT.findall(stdout):
        run.verdict = verdicts[-1].strip()
    if m := _MODULE_SKIP.search(stdout):
        run.module_skip = m.group(2).strip()
    if m := _WATCHDOG.search(stderr):
        run.watchdog = m.group(0).rstrip()
    return run


def _merge(tests: dict[str, CaseOutcome], test_id: str, new: CaseOutcome) -> None:
    """Keep the worse outcome; a subtest's failure outranks the test's own
    later skip or success, and a setUp error the test's record."""
    old = tests.get(test_id)
    if old is None or _SEVERITY[new.outcome] < _SEVERITY[old.outcome]:
        if old is not None and new.seconds is None:
            new.seconds = old.seconds
        tests[test_id] = new
