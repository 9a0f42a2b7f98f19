"""Issue 15, processes brandpy does not see: every process and thread the
container creates is traced before its first instruction, and nothing of
the container outlives `brandpy run`.

tests/security/programs/proc_attack.c, as the entrypoint, makes a
survivor (a process that ignores every signal it can and sleeps) and
exits:

- untraced-fork, untraced-vfork, untraced-thread: clone(CLONE_UNTRACED),
  which ptrace's fork events skip, directly, as a vfork whose child forks,
  and as a thread that forks;
- clone3-untraced, clone3-race (unconfined: Docker's default profile
  answers clone3 with ENOSYS): CLONE_UNTRACED in clone3's flags, and a
  sibling thread flipping it into them while clone3 is checked;
- daemon: fork, setsid, fork, as daemons do.

Before the fix (measured at 5ad53db, every cell): the five untraced cases
left their survivor running after the entrypoint exited and brandpy run
never returned (the subreaper waits for it) in 8 of 8 cells each: 40 of
40; the daemon was already killed. Now CLONE_UNTRACED is dropped from
clone's flags (a register) and clone3 is made as clone from one read of
its arguments.

The signal cases run `daemon-wait` (the entrypoint exits on SIGTERM,
SIGINT or SIGHUP) and signal brandpy run itself: it returns with nothing
left, and SIGKILL of brandpy run takes the container with it
(PTRACE_O_EXITKILL).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Cell, runner_for, spread
from .harness import reap_leftovers

BOUND_S = 20.0
GRACE_S = 3.0          # seconds the container's processes get to go once brandpy run returned
UNCONFINED = ("--security-opt", "seccomp=unconfined")
CASES = {"untraced-fork": (), "untraced-vfork": (), "untraced-thread": (),
         "clone3-untraced": UNCONFINED, "clone3-race": UNCONFINED, "daemon": ()}
SIGNALS = {"SIGTERM": 0, "SIGINT": 0, "SIGHUP": 0, "SIGKILL": -signal.SIGKILL}
CELLS_OF_CASES = spread(list(CASES))
CELLS_OF_SIGNALS = spread(list(SIGNALS))


def _start(cell: Cell, rootfs: Path, argv: list[str], opts: tuple[str, ...],
           unpriv_pythonpath) -> subprocess.Popen:
    runner = runner_for(cell, unpriv_pythonpath)
    return subprocess.Popen(runner.cmd(rootfs, argv, *opts, *cell.opts()), env=runner.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd="/")


def _finish(proc: subprocess.Popen, bound: float, rootfs: Path) -> tuple[int | str, str]:
    """brandpy run's status ("hang" if it or a survivor holding its output
    outlived the bound) and output."""
    try:
        out, err = proc.communicate(timeout=bound)
        return proc.returncode, out.decode(errors="replace") + err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        proc.kill()       # its tracees die with it (PTRACE_O_EXITKILL)
        reap_leftovers(rootfs, GRACE_S)    # untraced ones hold the output pipes
        out, err = proc.communicate()
        return "hang", out.decode(errors="replace") + err.decode(errors="replace")


def check(case: str, cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    rootfs = rootfs_for(cell.uid, "proc_attack")
    proc = _start(cell, rootfs, ["/attack", case], CASES[case], unpriv_pythonpath)
    status, out = _finish(proc, BOUND_S, rootfs)
    left = reap_leftovers(rootfs, GRACE_S)
    assert status == 0 and not left, (status, left, out)
    assert "SPAWNED" in out, out
    # a survivor that ran was traced: getpid gave its container PID
    alive = re.findall(r"ALIVE (-?\d+)", out)
    assert all(int(pid) > 0 for pid in alive), out
    assert alive or case == "clone3-race", out


def check_signal(name: str, cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    rootfs = rootfs_for(cell.uid, "proc_attack")
    proc = _start(cell, rootfs, ["/attack", "daemon-wait"], (), unpriv_pythonpath)
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + BOUND_S
    while b"SPAWNED" not in seen and time.monotonic() < deadline:
        chunk = proc.stdout.read1(256)
        if not chunk:
            break
        seen += chunk
    proc.send_signal(getattr(signal, name))
    status, _out = _finish(proc, BOUND_S, rootfs)
    left = reap_leftovers(rootfs, GRACE_S)
    assert b"SPAWNED" in seen and status == SIGNALS[name] and not left, (seen, status, left)


@pytest.mark.parametrize("case,cell", CELLS_OF_CASES)
def test_every_process_traced_and_gone(case: str, cell: Cell, rootfs_for,
                                       unpriv_pythonpath) -> None:
    check(case, cell, rootfs_for, unpriv_pythonpath)


@pytest.mark.parametrize("name,cell", CELLS_OF_SIGNALS)
def test_signalled_run_leaves_nothing(name: str, cell: Cell, rootfs_for,
                                      unpriv_pythonpath) -> None:
    check_signal(name, cell, rootfs_for, unpriv_pythonpath)
