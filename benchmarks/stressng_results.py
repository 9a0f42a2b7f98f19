"""What a stress-ng run produced: each stressor's outcome per runner and
repeat, read from stress-ng's exit status and log, and what follows from
it: which stressors pass natively every time (the others are set aside),
which of those a runner loses, and for brandpy the calls behind each loss."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .coverage_results import Attribution, own_failures, own_ledger
from .ledger import LedgerRow
from .runners import NATIVE
from .syscall_trace import FailedCall

PASSED, SKIPPED, FAILED, TIMEOUT = "passed", "skipped", "failed", "timeout"
# stress-ng's exit statuses (stress-ng(1), EXIT STATUS)
EXIT_MEANING = {0: "success", 1: "harness error", 2: "stressor failed", 3: "no resources",
                4: "not implemented", 5: "killed by a signal", 6: "exited unexpectedly",
                7: "metrics untrustworthy"}
EXIT_SKIPPED = (3, 4)
# A stressor stress-ng finds no support for, or would not run without
# --pathological (it may hang the machine: not given here), says so and is not
# run; stress-ng exits 0 or 1 all the same.
_NOT_RUN = re.compile(r"No stress workers invoked|stressor will be skipped|skipping (?:the )?stress"
                      r"|disabled '[\w-]+' as it may hang")
_SUCCESS = "successful run completed"
# Lines that say what went wrong; "no CPUs found" is the native chroot's missing
# /sys, harmless to every stressor.
_PROBLEM = re.compile(r"^stress-ng: (?:error|fail|warn)[^\n]*$|^.*(?:FAIL|fail(?:ed|ure)|"
                      r"untrustworthy|skipp|unrecognized|disabled)[^\n]*$", re.MULTILINE)
_PID = re.compile(r" \[\d+\]")        # stress-ng's "[pid]": the same line from each process once
_NOISE = ("no CPUs found in /sys/devices/system/cpu",)
DETAIL_LINES = 6
BASELINE = "nop"             # a stressor making no call of note: the harness's own calls


def classify(status: int, output: str, killed: bool) -> str:
    """passed | skipped | failed | timeout, from one run's exit status and log."""
    if killed:
        return TIMEOUT
    if status in EXIT_SKIPPED or (status in (0, 1) and _NOT_RUN.search(output)):
        return SKIPPED
    if status == 0 and _SUCCESS in output:
        return PASSED
    return FAILED


def problems(output: str) -> str:
    """The log lines that say why a run did not pass, each once, noise left out."""
    found = dict.fromkeys(_PID.sub("", m.group(0).strip()) for m in _PROBLEM.finditer(output)
                          if not any(n in m.group(0) for n in _NOISE))
    return "\n".join(list(found)[:DETAIL_LINES])


@dataclass
class StressRun:
    stressor: str
    runner: str
    repeat: int
    status: int                      # exit status, 128+N when killed by signal N
    wall: float
    outcome: str                     # passed | skipped | failed | timeout
    detail: str                      # the log's error lines (empty when it passed)
    ledger: list[LedgerRow] | None = None    # brandpy only


@dataclass
class StressResults:
    meta: dict[str, Any]
    classes: dict[str, list[str]]    # stress-ng class -> its stressors (as stress-ng lists them)
    stressors: list[str]             # what was run, in order
    runners: list[str]               # available runners, in column order
    labels: dict[str, str]           # runner -> column title (all asked for)
    unavailable: dict[str, str]      # runner -> why
    argv: list[str] = field(default_factory=list)    # one stressor's stress-ng command, STRESSOR for it
    runs: dict[tuple[str, str], list[StressRun]] = field(default_factory=dict)
    attributions: list[Attribution] = field(default_factory=list)
    baselines: dict[str, Attribution] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return list(self.labels)

    def outcomes(self, stressor: str, runner: str) -> list[str]:
        return [r.outcome for r in self.runs.get((stressor, runner), [])]

    def passes(self, stressor: str, runner: str) -> int:
        return self.outcomes(stressor, runner).count(PASSED)

    def native_verdict(self, stressor: str) -> str:
        """passes (every repeat) | skipped | fails | flaky | not run."""
        got = self.outcomes(stressor, NATIVE)
        if not got:
            return "not run"
        if all(o == PASSED for o in got):
            return "passes"
        if PASSED in got:
            return "flaky"
        return "skipped" if all(o == SKIPPED for o in got) else "fails"

    def eligible(self) -> list[str]:
        """The stressors that passed natively in every repeat: the ones counted."""
        return [s for s in self.stressors if self.native_verdict(s) == "passes"]

    def set_aside(self, verdict: str) -> list[str]:
        return [s for s in self.stressors if self.native_verdict(s) == verdict]

    def repeats(self, stressor: str, runner: str) -> int:
        return len(self.runs.get((stressor, runner), []))

    def passing(self, runner: str) -> list[str]:
        """Eligible stressors the runner passed in every repeat it ran."""
        return [s for s in self.eligible()
                if (n := self.repeats(s, runner)) and self.passes(s, runner) == n]

    def lost(self, runner: str) -> list[str]:
        """Eligible stressors the runner did not pass every time."""
        if runner == NATIVE:
            return []
        return [s for s in self.eligible()
                if self.repeats(s, runner) and self.passes(s, runner) < self.repeats(s, runner)]

    def gained(self, runner: str) -> list[str]:
        """Set-aside stressors (failing or skipped natively) the runner passed every time."""
        return [s for s in self.stressors if self.native_verdict(s) in ("fails", "skipped")
                and (n := self.repeats(s, runner)) and self.passes(s, runner) == n]

    def wall(self, runner: str) -> float:
        return sum(r.wall for (_, name), runs in self.runs.items() if name == runner for r in runs)

    def classes_of(self, stressor: str) -> list[str]:
        return [c for c, members in self.classes.items() if stressor in members]

    def attribution(self, runner: str, stressor: str) -> Attribution | None:
        return next((a for a in self.attributions
                     if a.runner == runner and a.test_id == stressor), None)

    def own_ledger(self, a: Attribution) -> list[LedgerRow]:
        return own_ledger(a, self.baselines.get(a.runner))

    def own_failures(self, a: Attribution) -> list[FailedCall]:
        return own_failures(a, self.baselines.get(a.runner))
