"""What a coverage run produced, and what follows from it: per module and
runner the test counts, the wall time, how the run ended, brandpy's
ledger; across runners the tests that pass natively but not under a
runner ("lost") and, for brandpy, the syscall behind each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .ledger import LedgerRow
from .regrtest_records import OUTCOMES, CaseOutcome, RegrtestRun
from .runners import NATIVE
from .syscall_trace import FailedCall

NOT_RUN = "not run"          # the outcome of a test the runner never reached


@dataclass
class ModuleRun:
    module: str
    runner: str
    argv: list[str]                  # the host command line
    status: int                      # exit status, 128+N when killed by signal N
    wall: float
    killed: bool                     # the module timeout expired (the backstop)
    regrtest: RegrtestRun
    ledger: list[LedgerRow] | None   # brandpy only; None when none was printed
    stderr_tail: str                 # the end of stderr, runtime reports removed

    @property
    def verdict(self) -> str:
        """completed | skipped | load error | timeout | crashed | not started"""
        r = self.regrtest
        if not r.began:
            return "not started"
        if self.killed or r.watchdog:
            return "timeout"
        if r.verdict is None:
            return "crashed"
        if r.module_skip:
            return "skipped"
        if not r.tests:
            return "load error"
        return "completed"

    def counts(self) -> dict[str, int]:
        return self.regrtest.counts()

    def outcome(self, test_id: str) -> CaseOutcome:
        return self.regrtest.tests.get(test_id) or CaseOutcome(NOT_RUN)


@dataclass
class Attribution:
    """A test run again on its own under a brandpy engine, with the ledger
    of that run (the unsupported or denied calls it made); when it failed
    again, once more with --trace for the trapped calls that failed."""
    module: str
    runner: str
    test_id: str
    outcome: str                     # the rerun's outcome (passed: the loss did not repeat)
    ledger: list[LedgerRow] | None
    detail: str | None
    traced: str | None = None        # the traced rerun's outcome, when there was one
    failed: list[FailedCall] = field(default_factory=list)   # from the traced rerun


@dataclass
class Loss:
    test_id: str
    outcome: str                     # what the runner got instead of a pass
    detail: str | None


@dataclass
class CoverageResults:
    meta: dict[str, Any]
    modules: list[str]
    runners: list[str]               # available runners, in column order
    labels: dict[str, str]           # runner -> column title (all asked for)
    unavailable: dict[str, str]      # runner -> why
    excluded: dict[str, dict[str, str]]
    runs: dict[tuple[str, str], ModuleRun] = field(default_factory=dict)
    attributions: list[Attribution] = field(default_factory=list)
    # runner -> the rerun of a test that makes no call worth noting: what
    # every rerun shows because of regrtest and the driver themselves
    baselines: dict[str, Attribution] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return list(self.labels)

    def run(self, module: str, runner: str) -> ModuleRun | None:
        return self.runs.get((module, runner))

    def total(self, runner: str) -> dict[str, int]:
        found = dict.fromkeys(OUTCOMES, 0)
        for m in self.modules:
            if run := self.run(m, runner):
                for k, v in run.counts().items():
                    found[k] += v
        return found

    def wall(self, runner: str) -> float:
        return sum(run.wall for m in self.modules if (run := self.run(m, runner)))

    def native_passes(self, module: str) -> list[str]:
        native = self.run(module, NATIVE)
        if native is None:
            return []
        return [t for t, o in native.regrtest.tests.items() if o.outcome == "passed"]

    def lost(self, module: str, runner: str) -> list[Loss]:
        """Tests that pass natively and do not pass under the runner."""
        run = self.run(module, runner)
        if run is None or runner == NATIVE:
            return []
        losses = []
        for test_id in self.native_passes(module):
            got = run.outcome(test_id)
            if got.outcome != "passed":
                losses.append(Loss(test_id, got.outcome, got.detail))
        return losses

    def gained(self, module: str, runner: str) -> list[str]:
        """Tests that pass under the runner and not natively."""
        run, native = self.run(module, runner), self.run(module, NATIVE)
        if run is None or native is None or runner == NATIVE:
            return []
        return [t for t, o in run.regrtest.tests.items()
                if o.outcome == "passed" and native.outcome(t).outcome != "passed"]

    def attribution(self, runner: str, test_id: str) -> Attribution | None:
        return next((a for a in self.attributions
                     if a.runner == runner and a.test_id == test_id), None)

    def own_ledger(self, a: Attribution) -> list[LedgerRow]:
        return own_ledger(a, self.baselines.get(a.runner))

    def own_failures(self, a: Attribution) -> list[FailedCall]:
        return own_failures(a, self.baselines.get(a.runner))


def own_ledger(a: Attribution, base: Attribution | None) -> list[LedgerRow]:
    """The rerun's ledger without the rows its runner's baseline has."""
    background = {(r.syscall, r.error) for r in ((base.ledger or []) if base else [])}
    return [r for r in a.ledger or [] if (r.syscall, r.error) not in background]


def own_failures(a: Attribution, base: Attribution | None) -> list[FailedCall]:
    """The rerun's failed trapped calls that the baseline never had."""
    background = {(c.syscall, c.errno) for c in base.failed} if base else set()
    return [c for c in a.failed if (c.syscall, c.errno) not in background]
