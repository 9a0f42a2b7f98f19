"""Issue 17, class 5: a tracer in the container (ptrace is emulated, the
supervisor being every process's real tracer) is attack surface.
tests/security/programs/ptrace_attack.c, as the entrypoint:

- rewrite: at each syscall-entry stop of its tracee it rewrites the path
  of open, stat and execve to a host canary's files (the string in place,
  or the argument register pointed at a copy; "/../../.." too). brandpy
  reports the entry stop before seccomp runs, so the call is resolved on
  what the tracer left, inside the container: ENOENT, nothing reached.
  Run natively (the control), the same program reads the secret and
  writes the victim.
- attach: PTRACE_ATTACH, SEIZE, PEEKDATA, POKEUSER, INTERRUPT and KILL of
  a host process of the same user: its PID names nothing in the container
  (ESRCH), and the process is untouched.
- suid: with emulated identities a setuid-root program elevates a
  container user, but not while a tracer without CAP_SYS_PTRACE traces it
  (Linux's LSM_UNSAFE_PTRACE), which could take it over; before, it did
  (TRACED EUID 0).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SETPRIV

from .conftest import CELLS, Cell, runner_for, spread
from .harness import run_attack

BOUND_S = 20.0
CASES = spread(["rewrite", "attach"])
# emulated identities: an unprivileged supervisor's (as root, setuid never elevates)
EMULATED_IDS = [pytest.param(c, id=c.id) for c in CELLS if c.user == "nobody"]


def test_rewrite_escapes_natively(canary_for, security_bin: Path) -> None:
    """The control: without a container the attack reaches the canary."""
    canary = canary_for(0)
    p = subprocess.run([str(security_bin / "ptrace_attack"), "rewrite", str(canary.dir)],
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert canary.evidence(p.stdout), p.stdout[-2000:]


@pytest.mark.parametrize("case,cell", CASES)
def test_guest_tracer_cannot_escape(case: str, cell: Cell, canary_for, rootfs_for,
                                    unpriv_pythonpath) -> None:
    runner = runner_for(cell, unpriv_pythonpath)
    rootfs = rootfs_for(cell.uid, "ptrace_attack")
    canary = canary_for(cell.uid)
    if case == "rewrite":
        outcome = run_attack(runner, rootfs, ["/attack", "rewrite", str(canary.dir)], canary,
                             BOUND_S, cell.opts())
        assert not outcome.escapes, outcome
        assert "FAILED open ENOENT" in outcome.out and "DONE" in outcome.out, outcome
        return
    peer = subprocess.Popen((SETPRIV if cell.uid else []) + ["sleep", "600"], cwd="/")
    try:
        outcome = run_attack(runner, rootfs, ["/attack", "attach", str(peer.pid)], canary,
                             BOUND_S, cell.opts())
        assert not outcome.escapes, outcome
        assert "ATTACHED" not in outcome.out and "DONE" in outcome.out, outcome
        with open(f"/proc/{peer.pid}/status") as f:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        assert status["TracerPid"] == "0" and status["State"].startswith("S"), status
        assert peer.poll() is None
    finally:
        peer.kill()
        peer.wait()


@pytest.mark.parametrize("cell", EMULATED_IDS)
def test_traced_exec_does_not_elevate(cell: Cell, rootfs_for, unpriv_pythonpath) -> None:
    runner = runner_for(cell, unpriv_pythonpath)
    rootfs = rootfs_for(cell.uid, "ptrace_attack")
    suid = rootfs / "attack-suid"
    shutil.copy(rootfs / "attack", suid)
    os.chown(suid, cell.uid, cell.uid)     # the container's root (its host user)
    suid.chmod(0o4755)
    r = runner(rootfs, ["/attack", "suid", "/attack-suid"], "--user", "1000", *cell.opts())
    assert "EUID 0\n" in r.out and "TRACED EUID 1000\n" in r.out, r
