"""Losses against native, attribution, claims and the Markdown/JSON of the
coverage benchmark, on results made up here (no runner involved)."""

import json

import pytest

from benchmarks.coverage_report import evidence, to_json, to_markdown
from benchmarks.coverage_results import Attribution, CoverageResults, ModuleRun
from benchmarks.ledger import LedgerRow
from benchmarks.regrtest_records import CaseOutcome, RegrtestRun
from benchmarks.syscall_trace import FailedCall

pytestmark = pytest.mark.bench

LABELS = {"native": "native", "proot": "proot", "runsc": "runsc-ptrace",
          "brandpy-python": "brandpy python"}
CLONE3 = LedgerRow("clone3", 3, "ENOSYS", "seccomp profile: denied by the seccomp profile")
TRACEBACK = ('Traceback (most recent call last):\n'
             '  File "/usr/lib/python3.11/unittest/case.py", line 579, in _callTestMethod\n'
             '    if method() is not None:\n'
             '  File "/usr/lib/python3.11/test/test_resource.py", line 156, in test_prlimit\n'
             '    self.assertRaises(ProcessLookupError, resource.prlimit,\n'
             'ValueError: current limit exceeds maximum limit\n')


def module_run(module: str, runner: str, outcomes: dict[str, str], verdict: str = "SUCCESS",
               ledger=None, unfinished=None, watchdog=None) -> ModuleRun:
    tests = {t: CaseOutcome(o, TRACEBACK if o in ("failed", "error") else None)
             for t, o in outcomes.items()}
    reg = RegrtestRun(tests=tests, unfinished=unfinished, python="3.11.2", verdict=verdict,
                      watchdog=watchdog)
    return ModuleRun(module=module, runner=runner, argv=["run", module], status=0, wall=2.0,
                     killed=False, regrtest=reg, ledger=ledger, stderr_tail="")


@pytest.fixture
def results() -> CoverageResults:
    r = CoverageResults(
        meta={"started": "2026-01-01T00:00:00Z", "duration_s": 120.0, "kernel": "6.x",
              "cpus": 2, "commit": "abc", "user": 0, "network": "own network namespace: lo",
              "per_test_timeout_s": 300.0, "module_timeout_s": 3600.0},
        modules=["test_a", "test_resource"], runners=["native", "proot", "brandpy-python"],
        labels=LABELS, unavailable={"runsc": "`runsc` is not installed"},
        excluded={"test_a": {"Vsock": "not loopback"}})
    r.runs["test_a", "native"] = module_run("test_a", "native",
                                            {"x.1": "passed", "x.2": "passed", "x.3": "failed"})
    r.runs["test_a", "proot"] = module_run("test_a", "proot", {"x.1": "passed"}, verdict=None,
                                           unfinished="x.2", watchdog="Timeout (0:05:00)!\n  at")
    r.runs["test_a", "brandpy-python"] = module_run(
        "test_a", "brandpy-python", {"x.1": "passed", "x.2": "passed", "x.3": "passed"},
        ledger=[CLONE3])
    r.runs["test_resource", "native"] = module_run("test_resource", "native",
                                                   {"test.test_resource.R.test_prlimit": "passed"})
    r.runs["test_resource", "proot"] = module_run("test_resource", "proot",
                                                  {"test.test_resource.R.test_prlimit": "passed"})
    r.runs["test_resource", "brandpy-python"] = module_run(
        "test_resource", "brandpy-python", {"test.test_resource.R.test_prlimit": "error"},
        ledger=[CLONE3])
    base = [FailedCall("openat", "ENOENT", 9, "translated", "openat(AT_FDCWD, '/x')")]
    r.baselines["brandpy-python"] = Attribution("test_stat", "brandpy-python", "t.base",
                                                "passed", [CLONE3], None, "passed", base)
    r.attributions.append(Attribution(
        "test_resource", "brandpy-python", "test.test_resource.R.test_prlimit", "error",
        [CLONE3], TRACEBACK, "error",
        [*base, FailedCall("prlimit64", "EINVAL", 1, "emulated", "prlimit64(-1, 9, NULL, 0x7)")]))
    return r


def add_engine(r: CoverageResults) -> None:
    """brandpy's native engine: a test that fails only with user
    notification on, and a module cut short by a timeout."""
    r.runners.append("brandpy-native")
    r.labels["brandpy-native"] = "brandpy native"
    r.runs["test_a", "brandpy-native"] = module_run(
        "test_a", "brandpy-native", {"x.1": "failed"}, verdict=None, unfinished="x.3",
        watchdog="Timeout (0:05:00)!")
    r.runs["test_resource", "brandpy-native"] = module_run(
        "test_resource", "brandpy-native", {"test.test_resource.R.test_prlimit": "passed"})
    r.attributions.append(Attribution("test_a", "brandpy-native", "x.1", "failed", [],
                                      TRACEBACK, "passed"))


def test_losses_and_gains_against_native(results):
    assert [loss.test_id for loss in results.lost("test_a", "proot")] == ["x.2"]
    assert results.lost("test_a", "proot")[0].outcome == "not run"
    assert results.lost("test_a", "brandpy-python") == []
    assert results.gained("test_a", "brandpy-python") == ["x.3"]
    assert results.run("test_a", "proot").verdict == "timeout"
    assert results.total("brandpy-python") == {"passed": 3, "failed": 0, "error": 1,
                                               "skipped": 0}


def test_the_baseline_is_taken_out_of_the_suspects(results):
    a = results.attributions[0]
    assert results.own_ledger(a) == []
    assert [c.syscall for c in results.own_failures(a)] == ["prlimit64"]


def test_evidence_is_the_test_files_line_and_the_exception():
    assert evidence(TRACEBACK) == ("test_resource.py:156 `self.assertRaises(ProcessLookupError, "
                                   "resource.prlimit,` → ValueError: current limit exceeds "
                                   "maximum limit")
    assert evidence("AssertionError: 1 != 2") == "AssertionError: 1 != 2"
    assert evidence(None) == ""


def test_markdown_tables_claims_and_problems(results):
    md = to_markdown(results)
    header = next(line for line in md.splitlines() if line.startswith("| module | native"))
    assert header == "| module | native | proot | runsc-ptrace | brandpy python |"
    row = next(line for line in md.splitlines() if line.startswith("| test_a |"))
    assert "2 / 1 / 0 / 0 · 2.0 s" in row and "1 / 0 / 0 / 0 · 2.0 s ⏱" in row
    assert row.rstrip(" |").endswith("3 / 0 / 0 / 0 · 2.0 s")
    assert "**3** / 0 / 1 / 0" in md                 # brandpy's total
    assert "- **yes**: brandpy python passes at least as many tests as proot — 3 against 2" in md
    assert "- **n/a**: brandpy python passes at least as many tests as runsc-ptrace" in md
    loss = next(line for line in md.splitlines() if "`R.test_prlimit`" in line)
    assert "`prlimit64` → EINVAL ×1 (emulated" in loss and "openat" not in loss
    assert "test_resource.py:156" in loss
    assert "**test_a** under **proot** timed out in `x.2`" in md
    assert "| `clone3` | ENOSYS |" in md
    assert "`runsc` is not installed" in md and "`Vsock` — not loopback" in md


def test_json_is_complete_and_serialisable(results):
    data = json.loads(json.dumps(to_json(results)))
    assert data["totals"]["proot"]["lost"] == 1
    run = next(r for r in data["runs"] if (r["module"], r["runner"]) == ("test_a", "proot"))
    assert (run["verdict"], run["unfinished_test"]) == ("timeout", "x.2")
    assert run["lost"] == [{"test_id": "x.2", "outcome": "not run", "detail": None}]
    (a,) = data["attributions"]
    assert [c["syscall"] for c in a["own_failures"]] == ["prlimit64"]
    assert data["baselines"]["brandpy-python"]["rerun"] == "passed"
    assert {c["verdict"] for c in data["claims"]} == {"yes", "n/a"}


def test_fails_alone_passes_traced_and_tests_never_reached(results):
    add_engine(results)
    md = to_markdown(results)
    row = next(line for line in md.splitlines() if line.startswith("| test_a | `x.1` |"))
    assert "| passed | failed |" in row and "brandpy native: failed alone, passes traced" in row
    unreached = next(line for line in md.splitlines() if "*tests never reached*" in line)
    assert "| 0 | 1 |" in unreached and "the module ended in `x.3`" in unreached
    prlimit = next(line for line in md.splitlines() if "`R.test_prlimit`" in line)
    assert "| error | passed |" in prlimit


def test_a_stopped_run_says_which_modules_it_left_out(results):
    assert "Partial run" not in to_markdown(results)
    results.meta["modules_planned"] = ["test_a", "test_resource", "test_os", "test_io"]
    md = to_markdown(results)
    assert "**Partial run**: 2 of 4 modules finished" in md and "not run: test_os, test_io" in md
