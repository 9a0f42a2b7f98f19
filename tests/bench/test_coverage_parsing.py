"""Reading back what the coverage benchmark's runs print: the regrtest
driver's records, brandpy's ledger and its JSON trace."""

import json

import pytest

from benchmarks.coverage_modules import regrtest_args
from benchmarks.ledger import LedgerRow, parse_ledger
from benchmarks.regrtest_driver import MARK
from benchmarks.regrtest_records import parse
from benchmarks.syscall_trace import failed_calls

pytestmark = pytest.mark.bench

PID = 7


def rec(ev: str, t: float = 0.0, pid: int = PID, **kw) -> str:
    return "\n" + MARK + json.dumps({"ev": ev, "pid": pid, "t": t, **kw}) + "\n"


def begin() -> str:
    return rec("begin", python="3.11.2", argv=["test_x"])


def result(test_id: str, outcome: str, t: float = 1.0, detail: str | None = None, **kw) -> str:
    return rec("result", t, id=test_id, outcome=outcome, detail=detail, **kw)


def test_outcomes_fold_into_four_counts_with_durations():
    out = (begin() + "0:00:00 [1/1] test_x\n"
           + rec("start", 1.0, id="t.a") + "noise a test printed" + result("t.a", "passed", 1.5)
           + rec("start", 2.0, id="t.b") + result("t.b", "failed", 2.0, "Traceback\nE: b")
           + rec("start", 3.0, id="t.c") + result("t.c", "error", 3.0, "E: c")
           + rec("start", 4.0, id="t.d") + result("t.d", "skipped", 4.0, "needs a GPU")
           + rec("start", 5.0, id="t.e") + result("t.e", "xfail", 5.0)
           + rec("start", 6.0, id="t.f") + result("t.f", "xpass", 6.0)
           + "\nTests result: FAILURE\n")
    run = parse(out, "")
    assert run.began and run.python == "3.11.2"
    assert run.counts() == {"passed": 2, "failed": 2, "error": 1, "skipped": 1}
    assert run.tests["t.a"].seconds == pytest.approx(0.5)
    assert run.tests["t.b"].detail == "Traceback\nE: b"
    assert run.tests["t.d"].detail == "needs a GPU"
    assert (run.verdict, run.unfinished, run.watchdog) == ("FAILURE", None, None)


def test_failed_subtests_make_the_test_fail_once():
    out = (begin() + rec("start", id="t.s")
           + result("t.s", "failed", detail="E: 1", sub="(i=1)")
           + result("t.s", "error", detail="E: 2", sub="(i=2)")
           + rec("start", id="t.k") + result("t.k", "skipped", detail="r", sub="(i=0)")
           + result("t.k", "passed")
           + "Tests result: FAILURE\n")
    run = parse(out, "")
    assert run.counts() == {"passed": 1, "failed": 0, "error": 1, "skipped": 0}
    assert run.tests["t.s"].detail.startswith("subtest (i=2)\n")
    assert run.unfinished is None


def test_a_class_setup_error_counts_as_an_error():
    out = begin() + result("setUpClass (test.test_x.T)", "error", detail="E") + \
        "Tests result: FAILURE\n"
    assert parse(out, "").counts()["error"] == 1


def test_the_test_running_at_the_end_is_named_and_a_watchdog_dump_kept():
    stderr = ("some warning\nTimeout (0:05:00)!\nThread 0x00007f (most recent call first):\n"
              '  File "/usr/lib/python3.11/socket.py", line 294 in accept\n')
    out = begin() + rec("start", id="t.a") + result("t.a", "passed") + rec("start", id="t.hang")
    run = parse(out, stderr)
    assert run.unfinished == "t.hang"
    assert run.watchdog.startswith("Timeout (0:05:00)!\nThread")
    assert run.watchdog.endswith("in accept")
    assert run.verdict is None and run.counts()["passed"] == 1


def test_records_of_forked_children_are_ignored():
    out = begin() + rec("start", id="t.a") + result("t.a", "error", pid=99, detail="child") \
        + result("t.a", "passed")
    assert parse(out, "").counts() == {"passed": 1, "failed": 0, "error": 0, "skipped": 0}


def test_a_skipped_module_and_a_run_that_never_began():
    run = parse(begin() + "0:00:00 [1/1] test_epoll\ntest_epoll skipped -- test works only on "
                "Linux 2.6\n\nTests result: SUCCESS\n", "")
    assert run.module_skip == "test works only on Linux 2.6"
    nothing = parse("", "python3: not found\n")
    assert not nothing.began and nothing.tests == {}


def test_regrtest_args_ignore_excluded_cases_and_match_one_test():
    assert regrtest_args("test_stat") == ["test_stat"]
    args = regrtest_args("test_socket", "test.test_socket.X.test_y")
    assert args[-3:] == ["-m", "test.test_socket.X.test_y", "test_socket"]
    assert args[:2] == ["-i", "ThreadedVSOCKSocketStreamTest"]


LEDGER = """\
syscall                 calls  exit stops  emulated  errors
total                      21           1         0       1
ptrace stops per trapped syscall: 1.048; other stops (fork/exec/signals): 9
syscall               calls  error   reason
clone3                   12  ENOSYS  seccomp profile: denied by the seccomp profile
set_mempolicy_home_node     3  EPERM   unsupported: denied (EPERM) as in Docker's default profile
"""


def test_ledger_rows_after_the_stats():
    assert parse_ledger("program output\n" + LEDGER) == [
        LedgerRow("clone3", 12, "ENOSYS", "seccomp profile: denied by the seccomp profile"),
        LedgerRow("set_mempolicy_home_node", 3, "EPERM",
                  "unsupported: denied (EPERM) as in Docker's default profile")]


def test_ledger_empty_or_missing():
    assert parse_ledger("x\nno unsupported or denied syscalls\n") == []
    assert parse_ledger("killed before it could print\n") is None


def test_failed_calls_from_a_trace(tmp_path):
    lines = [{"syscall": "openat", "errno": "ENOENT", "call": "openat(AT_FDCWD, '/a')",
              "disposition": "translated"},
             {"syscall": "prlimit64", "errno": "EINVAL", "call": "prlimit64(-1, 9, NULL, 0x1)",
              "disposition": "emulated"},
             {"syscall": "openat", "errno": "ENOENT", "call": "openat(AT_FDCWD, '/b')",
              "disposition": "translated"},
             {"syscall": "getpid", "errno": None, "call": "getpid()", "disposition": "emulated"}]
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"syscall": "cut sh')
    found = failed_calls(path)
    assert [(c.syscall, c.errno, c.calls) for c in found] == [("openat", "ENOENT", 2),
                                                             ("prlimit64", "EINVAL", 1)]
    assert found[0].example == "openat(AT_FDCWD, '/a')"
    assert failed_calls(tmp_path / "missing.jsonl") == []
