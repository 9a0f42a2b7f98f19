"""Running one command of the suite: timed, with a timeout, its output
captured, and nothing it started left behind.

The suite's process becomes a child subreaper, so whatever a runner leaves
behind (runsc's sandbox puts itself in a new session, a tracee whose tracer
died, a daemon of the workload) is re-parented to us; after every command
the children we did not have before it are killed and reaped."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Outcome:
    status: int          # as a shell reports it: 128+N when killed by signal N
    wall: float          # seconds, from spawn to reaping
    cpu: float           # user+system seconds of the command and its reaped children
    stdout: str
    stderr: str
    timed_out: bool = False


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


# Signals an orphan re-parented to us may send its new parent (stress-ng's
# daemon stressor SIGALRMs it, which would end the suite): caught and
# dropped. Caught, not ignored: exec resets a handler, so the commands we
# start still get each at its default disposition.
STRAY_SIGNALS = (signal.SIGALRM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                 signal.SIGVTALRM, signal.SIGPROF, signal.SIGIO)


def drop_stray_signals() -> None:
    for sig in STRAY_SIGNALS:
        signal.signal(sig, lambda signum, frame: None)


def execute(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> Outcome:
    """Run argv in a session of its own with stdin from /dev/null; on
    timeout kill its process group (SIGKILL) and report status 137."""
    # Files, not pipes: no reader thread in the timed path, and runsc's
    # sandbox writes to them directly.
    before = set(children(os.getpid()))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=dict(env), cwd="/", start_new_session=True)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _killpg(proc.pid)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            # wait4 rather than proc.wait(): it also gives the CPU time used.
            _, wstatus, usage = os.wait4(proc.pid, 0)
        except BaseException:
            # Ctrl-C reaches only our process group, not the command's session.
            _killpg(proc.pid)
            kill_new_children(before)
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = status = _exit_status(wstatus)
        kill_new_children(before)
        out.seek(0)
        err.seek(0)
        return Outcome(status=status, wall=wall, cpu=usage.ru_utime + usage.ru_stime,
                       stdout=out.read().decode(errors="replace"),
                       stderr=err.read().decode(errors="replace"),
                       timed_out=expired.is_set())


def kill_new_children(before: set[int]) -> None:
    """SIGKILL and reap every child of ours not in `before`, until none is
    left (each kill may re-parent its own children to us)."""
    while new := [p for p in children(os.getpid()) if p not in before]:
        for pid in new:
            _killpg(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in new:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The comm field may hold spaces and parentheses: parse after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry))
    return found


def stop_children(pids: set[int], grace: float = 10.0) -> None:
    """SIGTERM those of our children (a zygote tidies up on it), then
    kill what is left."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and set(children(os.getpid())) & pids:
        for pid in pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.05)
    kill_new_children(set())


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_status(wstatus: int) -> int:
    code = os.waitstatus_to_exitcode(wstatus)
    return 128 - code if code < 0 else code
