"""brandpy-runc under Debian's containerd 1.6: ctr runs the
io.containerd.runc.v2 shim with brandpy-runc as its runc binary
(`--runc-binary`, the BinaryName option a config.toml runtime sets)."""

from __future__ import annotations

import json
import os
import pty
import time

import pytest

from .conftest import monitors, wait_for_none
from .daemons import IMAGE
from .test_console import read_until


@pytest.fixture
def ctr(containerd, runtime_bin: str):
    """`ctr run` with brandpy as the runtime; checks nothing is left after."""
    runtime = ["--runtime", "io.containerd.runc.v2", "--runc-binary", runtime_bin,
               "--runc-root", str(containerd.runc_root)]

    def run(*args: str, **kw):
        return containerd.ctr("run", *runtime, *args, **kw)

    yield run
    assert containerd.ctr("containers", "ls", "-q").out.split() == []
    assert wait_for_none(lambda: [m for m in monitors() if str(containerd.base) in m]) == []


def test_ctr_run_rm(ctr):
    r = ctr("--rm", "--annotation", "org.brandpy.kernel-release=3.10.0-ctr", IMAGE, "c1",
            "sh", "-c", "echo hi from ctr; uname -r; grep TracerPid /proc/self/status; exit 3")
    assert r.status == 3, r
    assert r.out.split("\n") == ["hi from ctr", "3.10.0-ctr", "TracerPid:\t0", ""]


def test_ctr_detached_exec_pause_kill(ctr, containerd):
    r = ctr("-d", IMAGE, "c2", "sh", "-c", "while :; do sleep 0.1; done")
    assert r.status == 0, r
    try:
        task = containerd.ctr("task", "ls").out
        assert "c2" in task and "RUNNING" in task
        r = containerd.ctr("task", "exec", "--exec-id", "e1", "c2", "sh", "-c",
                           "echo exec ok; exit 6")
        assert (r.status, r.out) == (6, "exec ok\n"), r
        pids = containerd.ctr("task", "ps", "c2").out.split()[2::2]
        state = json.loads((containerd.runc_root / "default" / "c2" / "state.json").read_text())
        assert str(state["brandpy"]["initPid"]) in pids
        containerd.ctr("task", "pause", "c2")
        assert "PAUSED" in containerd.ctr("task", "ls").out
        containerd.ctr("task", "resume", "c2")
        assert "RUNNING" in containerd.ctr("task", "ls").out
        containerd.ctr("task", "kill", "-s", "KILL", "c2")
        deadline = time.monotonic() + 10
        while "STOPPED" not in containerd.ctr("task", "ls").out:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        containerd.ctr("task", "rm", "-f", "c2")
        containerd.ctr("containers", "rm", "c2")


def test_ctr_run_with_a_terminal(ctr, containerd, runtime_bin: str):
    pid, master = pty.fork()
    if pid == 0:
        os.execvp("ctr", ["ctr", "-a", str(containerd.socket), "run", "--rm", "-t",
                          "--runtime", "io.containerd.runc.v2", "--runc-binary", runtime_bin,
                          "--runc-root", str(containerd.runc_root), IMAGE, "c3",
                          "sh", "-c", "tty; read x; echo got $x; exit 2"])
    try:
        out = read_until(master, b"/dev/pts/")
        os.write(master, b"typed\r")
        out += read_until(master, b"got typed")
        deadline = time.monotonic() + 20
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
            assert time.monotonic() < deadline, out
            time.sleep(0.05)
        assert b"got typed" in out
        assert os.waitstatus_to_exitcode(done[1]) == 2
    finally:
        os.close(master)
