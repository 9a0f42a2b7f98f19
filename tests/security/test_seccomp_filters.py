"""Issue 15, the container's own seccomp filters: a filter the container
stacks on brandpy's must never make a call brandpy denies or translates
run untranslated, and the restrictions it adds apply as on Linux.

tests/security/programs/seccomp_attack.c, as the entrypoint, tries:

- pass, pass-prctl: RET_TRACE with the data brandpy's filter uses for
  "trapped only to be seen" on io_uring (the kernel reports the newest
  filter's data between equal actions), installed with seccomp() or
  prctl(PR_SET_SECCOMP); io_uring, which brandpy denies, then opens the
  canary's secret by its host path;
- listener: RET_USER_NOTIF on openat (it outranks brandpy's RET_TRACE) to
  a listener of its own answering "continue": the kernel opens the host
  path as given.

Before the fix (measured at 5ad53db on every cell): pass and pass-prctl
read the secret in 8 of 8 cells each, listener in 6 (all but the native
engine untraced, whose own listener made the kernel refuse the
container's with EBUSY): 22 of 24. Now brandpy never reads the trace data
(it evaluates its own filter for the call) and every container process
has brandpy's listener on its chain, so the kernel refuses the
container's (EBUSY) in every engine and mode.

`restrict` checks the other side: the container's ERRNO, TRAP, KILL and a
TRACE without a tracer of its own give what Linux gives them (the same
program run natively), whether brandpy traps, notifies or allows the call
(before: the TRACE ran the call instead of ENOSYS, in 8 of 8 cells).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import Cell, runner_for, spread
from .harness import run_attack

BOUND_S = 5.0
ATTACKS = ["pass", "pass-prctl", "listener"]
# what the attack meets instead (its own error message)
REFUSED = {"pass": "io_uring_setup: Operation not permitted",
           "pass-prctl": "io_uring_setup: Operation not permitted",
           "listener": "seccomp NEW_LISTENER: Device or resource busy"}
CASES = spread(ATTACKS + ["restrict"])


def check(case: str, cell: Cell, canary_for, rootfs_for, security_bin: Path,
          unpriv_pythonpath) -> None:
    runner = runner_for(cell, unpriv_pythonpath)
    rootfs = rootfs_for(cell.uid, "seccomp_attack")
    if case == "restrict":
        got = runner(rootfs, ["/attack", "restrict"], *cell.opts(), timeout=60)
        with tempfile.TemporaryDirectory(dir=rootfs.parent) as cwd:
            native = subprocess.run([str(security_bin / "seccomp_attack"), "restrict"], cwd=cwd,
                                    capture_output=True, text=True, timeout=60)
        assert "sched_yield=ENOSYS" in native.stdout and "getppid trapped=110" in native.stdout

        def but_pid(text: str) -> list[str]:
            return [line for line in text.splitlines() if not line.startswith("getpid=")]
        assert but_pid(got.out) == but_pid(native.stdout) and "getpid=1\n" in got.out, got
        return
    canary = canary_for(cell.uid)
    outcome = run_attack(runner, rootfs, ["/attack", case, str(canary.dir / "secret")], canary,
                         BOUND_S, cell.opts())
    assert not outcome.escapes, outcome
    assert REFUSED[case] in outcome.out, outcome


@pytest.mark.parametrize("case,cell", CASES)
def test_own_filter(case: str, cell: Cell, canary_for, rootfs_for, security_bin,
                    unpriv_pythonpath) -> None:
    check(case, cell, canary_for, rootfs_for, security_bin, unpriv_pythonpath)
