"""The stress-ng benchmark's reading of stress-ng's exit status and log,
its verdicts across repeats and runners, and its Markdown/JSON, on results
made up here from what stress-ng 0.15 prints (no runner involved)."""

import json

import pytest

from benchmarks.coverage_results import Attribution
from benchmarks.ledger import LedgerRow
from benchmarks.stressng_report import to_json, to_markdown
from benchmarks.stressng_results import StressResults, StressRun, classify, problems
from benchmarks.stressng_suite import choose
from benchmarks.syscall_trace import FailedCall

pytestmark = pytest.mark.bench

OK = ("stress-ng: info:  [7] dispatching hogs: 1 fork\n"
      "stress-ng: error: [7] no CPUs found in /sys/devices/system/cpu\n"
      "stress-ng: metrc: [7] fork 100 0.01 0.00 0.01 4044.26 4653.33\n"
      "stress-ng: info:  [7] successful run completed in 0.01s\n")
UNSUPPORTED = ("stress-ng: info:  [7] apparmor stressor will be skipped, AppArmor is not enabled\n"
               "stress-ng: error: [7] No stress workers invoked (one or more were unsupported)\n")
SKIPPED_INSIDE = ("stress-ng: info:  [8] dccp: DCCP protocol not supported, skipping stressor\n"
                  "stress-ng: info:  [7] successful run completed in 0.00s\n")
PATHOLOGICAL = ("stress-ng: info: [7] disabled 'watchdog' as it may hang or reboot the machine "
                "(enable it with the --pathological option)\n"
                "stress-ng: error: [7] No stress workers invoked\n")
FAIL = ("stress-ng: fail:  [8] io-uring: completion opcode=21 (IORING_OP_STATX), error=2\n"
        "stress-ng: error: [7] io-uring: [8] terminated with an error, exit status=2 (stressor failed)\n"
        "stress-ng: info:  [7] unsuccessful run completed in 0.20s\n")


@pytest.mark.parametrize("status, output, killed, expected", [
    (0, OK, False, "passed"),
    (0, UNSUPPORTED, False, "skipped"),
    (0, SKIPPED_INSIDE, False, "skipped"),
    (1, PATHOLOGICAL, False, "skipped"),
    (3, "stress-ng: info:  [7] successful run completed in 0.00s\n", False, "skipped"),
    (4, "", False, "skipped"),
    (2, FAIL, False, "failed"),
    (0, "stress-ng: info:  [7] dispatching hogs: 1 fork\n", False, "failed"),   # cut short
    (1, "stress-ng: unrecognized option '--binderfs-ops'\n", False, "failed"),
    (137, OK, True, "timeout"),
])
def test_classify(status, output, killed, expected):
    assert classify(status, output, killed) == expected


def test_problems_keep_what_went_wrong_once_and_drop_the_chroots_missing_sys():
    assert problems(OK) == ""
    assert problems(FAIL + FAIL.replace("[8]", "[9]")).splitlines() == [
        "stress-ng: fail:  io-uring: completion opcode=21 (IORING_OP_STATX), error=2",
        "stress-ng: error: io-uring: terminated with an error, exit status=2 (stressor failed)"]
    assert "unrecognized option" in problems("stress-ng: unrecognized option '--x-ops'\n")


def test_choose_takes_each_stressor_once_and_refuses_strangers():
    classes = {"os": ["fork", "pipe", "kill"], "pipe": ["pipe", "tee"]}
    assert choose(classes, None) == ["fork", "kill", "pipe", "tee"]
    assert choose(classes, ["tee", "fork"]) == ["fork", "tee"]
    with pytest.raises(ValueError, match="not a stressor of the classes os, pipe: nope"):
        choose(classes, ["fork", "nope"])


LABELS = {"native": "native", "proot": "proot", "brandpy-native": "brandpy native"}
DENIED = LedgerRow("vhangup", 100, "EPERM", "denied")
HARNESS = LedgerRow("sched_setattr", 1, "ENOSYS", "unsupported")


def run(stressor: str, runner: str, rep: int, outcome: str, ledger=None) -> StressRun:
    return StressRun(stressor=stressor, runner=runner, repeat=rep,
                     status={"passed": 0, "failed": 2, "skipped": 3}[outcome], wall=0.5,
                     outcome=outcome, detail="" if outcome == "passed" else f"{stressor} said no",
                     ledger=ledger)


@pytest.fixture
def results() -> StressResults:
    r = StressResults(
        meta={"started": "2026-01-01T00:00:00Z", "duration_s": 600.0, "kernel": "6.x",
              "cpus": 2, "commit": "abc", "user": 0, "network": "own network namespace: lo",
              "stress_ng": "stress-ng, version 0.15.06", "repeats": 3, "ops": 100,
              "timeout_s": 2, "backstop_s": 60.0, "brandpy_options": ["--cap-add", "ALL"]},
        classes={"os": ["fork", "kvm", "race", "pty"], "pipe": ["pipe", "pty"]},
        stressors=["fork", "kvm", "pipe", "pty", "race"],
        runners=["native", "proot", "brandpy-native"], labels={**LABELS, "runsc": "runsc"},
        unavailable={"runsc": "`runsc` is not installed"},
        argv=["stress-ng", "--STRESSOR", "1"])
    native = {"fork": "ppp", "kvm": "sss", "pipe": "ppp", "pty": "ppp", "race": "pfp"}
    for s, seq in native.items():
        r.runs[s, "native"] = [run(s, "native", i, {"p": "passed", "f": "failed", "s": "skipped"}[c])
                               for i, c in enumerate(seq)]
    for s in ("fork", "pipe", "pty"):
        r.runs[s, "proot"] = [run(s, "proot", i, "passed") for i in range(3)]
    r.runs["fork", "brandpy-native"] = [run("fork", "brandpy-native", i, "passed", [DENIED])
                                        for i in range(3)]
    r.runs["pipe", "brandpy-native"] = [run("pipe", "brandpy-native", 0, "passed", []),
                                        run("pipe", "brandpy-native", 1, "failed", []),
                                        run("pipe", "brandpy-native", 2, "passed", [])]
    r.runs["pty", "brandpy-native"] = [run("pty", "brandpy-native", i, "failed", [HARNESS, DENIED])
                                       for i in range(3)]
    r.baselines["brandpy-native"] = Attribution(
        "stress-ng", "brandpy-native", "nop", "passed", [HARNESS], None, traced="passed",
        failed=[FailedCall("sched_setattr", "ENOSYS", 1, "unsupported", "sched_setattr(...)")])
    r.attributions.append(Attribution(
        "stress-ng", "brandpy-native", "pty", "failed", [HARNESS, DENIED], "pty said no",
        traced="failed",
        failed=[FailedCall("sched_setattr", "ENOSYS", 1, "unsupported", "sched_setattr(...)"),
                FailedCall("ioctl", "ENOTTY", 4, "emulated", "ioctl(3, TIOCGPTPEER)")]))
    return r


def test_natively_flaky_failing_and_skipped_stressors_are_set_aside(results):
    assert results.eligible() == ["fork", "pipe", "pty"]
    assert [results.native_verdict(s) for s in results.stressors] == [
        "passes", "skipped", "passes", "passes", "flaky"]
    assert results.set_aside("flaky") == ["race"]


def test_a_stressor_not_passing_every_repeat_is_lost(results):
    assert results.passing("brandpy-native") == ["fork"]
    assert results.lost("brandpy-native") == ["pipe", "pty"]
    assert results.passing("proot") == ["fork", "pipe", "pty"] and results.lost("proot") == []
    assert results.lost("native") == []


def test_markdown_names_the_calls_behind_a_loss_less_the_harnesss_own(results):
    md = to_markdown(results)
    assert "| **all** | **5** | **3** | **3** | **1 (−2)** | **unavailable** |" in md
    row = next(line for line in md.splitlines() if line.startswith("| `pty` |"))
    assert "0/3; failed (exit 2: stressor failed)" in row
    assert "ledger: `vhangup` EPERM ×100 (denied)" in row
    assert "`ioctl` → ENOTTY ×4" in row
    assert "sched_setattr" not in row            # the baseline has it
    pipe = next(line for line in md.splitlines() if line.startswith("| `pipe` |"))
    assert "2/3; failed" in pipe and "brandpy native: not run again" in pipe
    assert "1 because they pass in some native repeats only: `race` (race said no)" in md
    assert "`kvm`" in md.split("## Set aside natively")[1]


def test_json_has_every_run_and_the_totals(results):
    data = json.loads(json.dumps(to_json(results)))
    assert data["totals"]["brandpy-native"]["passed"] == 1
    assert data["totals"]["brandpy-native"]["lost"] == ["pipe", "pty"]
    assert data["set_aside"] == {"skipped": ["kvm"], "fails": [], "flaky": ["race"]}
    pty = next(s for s in data["stressors"] if s["stressor"] == "pty")
    assert pty["classes"] == ["os", "pipe"]
    assert [r["outcome"] for r in pty["runs"]["brandpy-native"]] == ["failed"] * 3
    assert data["attributions"][0]["own_failures"][0]["syscall"] == "ioctl"
