"""Supervisors outlive the daemon: kill -9 of the daemon while containers
run, then a new daemon tells the truth (ps, logs, wait); a shim killed
while the daemon is down is reported; restart policies are applied at
daemon start; and the daemon runs as an unprivileged user."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.api.conftest import Daemon, unprivileged_daemon, wait_for
from tests.conftest import NOBODY, nobody_has_namespaces


def test_kill_9_then_restart_tells_the_truth(fresh):
    d = fresh
    long = d.ok("run", "-d", "--name", "long", "busybox", "sh", "-c",
                "echo started; trap 'echo bye; exit 5' TERM; while :; do sleep 0.1; done").strip()
    short = d.ok("run", "-d", "--name", "short", "busybox", "sh", "-c",
                 "sleep 1; echo done; exit 4").strip()
    wait_for(lambda: "started" in d.ok("logs", "long"))
    d.stop(signal.SIGKILL)
    time.sleep(1.5)     # while the daemon is down, "short" exits; "long" keeps running
    d.start()
    ps = d.ok("ps", "--format", "{{.Names}}").split()
    assert ps == ["long"], ps
    assert d.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "short") == \
        "exited 4\n"
    assert d.ok("logs", "short") == "done\n"
    assert d.ok("wait", "short") == "4\n"
    # the statistics: live from the surviving shim, saved by the one that ended
    assert d.ok("inspect", "-f", "{{.Brandpy.Snapshot}}", "long", "short") == "live\nfinal\n"
    assert int(d.ok("inspect", "-f", "{{.Brandpy.Syscalls.execve.Calls}}", "short")) >= 1
    d.ok("stop", "long")
    assert d.ok("inspect", "-f", "{{.State.ExitCode}}", "long") == "5\n"
    assert d.ok("logs", "long") == "started\nbye\n"
    assert long != short


def test_dead_shim_is_reported_and_restart_policy_applied(fresh):
    d = fresh
    plain = d.ok("run", "-d", "--name", "plain", "busybox", "sleep", "60").strip()
    always = d.ok("run", "-d", "--name", "always", "--restart", "always", "busybox", "sh",
                  "-c", "echo run; sleep 60").strip()
    pids = d.shim_pids()
    assert len(pids) == 2
    d.stop()
    for pid in pids:              # as if the machine had rebooted
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: d.shim_pids() == [])
    d.start()
    status = d.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}",
                  "plain")
    assert status.startswith("exited 137 the container's shim died"), status
    wait_for(lambda: d.ok("inspect", "-f", "{{.State.Running}}", "always") == "true\n")
    wait_for(lambda: d.ok("logs", "always").count("run") == 2)
    d.ok("rm", "-f", plain, always)


def test_stopping_the_daemon_leaves_containers_running(fresh):
    d = fresh
    cid = d.ok("run", "-d", "busybox", "sleep", "60").strip()
    d.stop()
    assert len(d.shim_pids()) == 1
    d.start()
    assert d.ok("ps", "-q") == cid[:12] + "\n"
    assert d.ok("exec", cid, "echo", "still here") == "still here\n"
    d.ok("rm", "-f", cid)


@pytest.fixture(scope="module")
def nobody_daemon(unpriv_pythonpath) -> Iterator[Daemon]:
    """The daemon as uid 65534 with its own XDG dirs, busybox imported."""
    with unprivileged_daemon(unpriv_pythonpath) as d:
        yield d


def test_unprivileged_daemon(nobody_daemon):
    """A basic docker run, and the shim runs as uid 65534."""
    d = nobody_daemon
    r = d.docker("run", "--rm", "busybox", "sh", "-c", "id -u; echo hi > /tmp/x; cat /tmp/x")
    assert (r.status, r.out) == (0, "0\nhi\n"), r
    assert d.docker("run", "--rm", "busybox", "sh", "-c", "exit 3").status == 3
    assert os.stat(d.root / "data" / "containers").st_uid == NOBODY
    shim = d.ok("run", "-d", "busybox", "sleep", "30").strip()
    pids = d.shim_pids()
    assert pids and all(os.stat(f"/proc/{p}").st_uid == NOBODY for p in pids)
    d.ok("rm", "-f", shim)


def test_unprivileged_exec_joins_the_containers_pid_namespace(nobody_daemon):
    """docker exec joins the container's PID namespace, and so does --pid
    container:NAME (its user namespace too, the PID one's owner)."""
    if not nobody_has_namespaces():
        pytest.skip("uid 65534 may not make user namespaces on this host: its containers "
                    "have no PID namespace to join (brandpy/runtime/namespaces.py)")
    d = nobody_daemon
    shim = d.ok("run", "-d", "busybox", "sleep", "30").strip()
    assert d.ok("exec", shim, "sh", "-c", "echo $$; cat /proc/1/comm") == "2\nsleep\n"
    joined = d.ok("run", "--rm", "--pid", f"container:{shim}", "busybox", "sh", "-c", "echo $$")
    assert int(joined) > 2, joined
    d.ok("rm", "-f", shim)
