"""Running one command: status, output, timeout, and nothing left behind."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.execute import execute

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
ENV = {"PATH": "/usr/bin:/bin"}


def test_status_and_output():
    out = execute(["sh", "-c", "echo out; echo err >&2; exit 3"], ENV, timeout=30)
    assert (out.status, out.stdout, out.stderr, out.timed_out) == (3, "out\n", "err\n", False)
    assert out.wall > 0
    assert execute(["sh", "-c", "kill -TERM $$"], ENV, timeout=30).status == 128 + 15


def test_timeout_kills_the_group_and_escaped_descendants():
    # The grandchild leaves the process group (as runsc's sandbox does);
    # only the subreaper catches it, so this runs in a process of its own.
    marker = f"{os.getpid() % 1000}.4321"
    code = ("from benchmarks.execute import become_subreaper, execute\n"
            "become_subreaper()\n"
            f"out = execute(['sh', '-c', 'setsid sleep {marker} & echo started; sleep 600'],"
            " {'PATH': '/usr/bin:/bin'}, timeout=1.0)\n"
            "print(out.timed_out, out.status, out.stdout.strip(), out.wall)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    timed_out, status, started, wall = proc.stdout.split()
    assert (timed_out, status, started) == ("True", "137", "started"), proc.stderr
    assert 1.0 <= float(wall) < 10
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline_has(pid, marker)]


def _cmdline_has(pid: str, marker: str) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def test_a_stray_signal_to_the_suite_is_dropped():
    # stress-ng's daemon stressor SIGALRMs the parent its orphan is
    # re-parented to (the subreaper); here the command sends it itself. The
    # command after it still gets SIGALRM at its default disposition.
    code = ("from benchmarks.execute import become_subreaper, drop_stray_signals, execute\n"
            "become_subreaper()\n"
            "drop_stray_signals()\n"
            "env = {'PATH': '/usr/bin:/bin'}\n"
            "execute(['sh', '-c', 'kill -ALRM $PPID; kill -HUP $PPID; sleep 0.2'], env, 30)\n"
            "print(execute(['sh', '-c', 'kill -ALRM $$'], env, timeout=30).status)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, str(128 + 14)), proc.stderr
