"""Resource limits through a container's cgroup (issue 15's walls, as
root, where the host has the controllers: brandpy/runtime/cgroups.py):
--memory, --cpus, --cpu-shares and --pids-limit are enforced as under
dockerd, and warned about where they cannot be."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from brandpy.runtime import cgroups

ENFORCED = cgroups.enforceable()


def cgroup_file(controller: str, cid: str, name: str) -> Path:
    """The container's cgroup file in the hierarchy with that controller."""
    for h in cgroups.hierarchies():
        if controller in h.controllers:
            return h.parent() / cid / name
    raise AssertionError(f"no {controller} hierarchy")


@pytest.mark.skipif("pids" not in ENFORCED, reason="no pids controller for a root daemon")
def test_pids_limit(daemon):
    r = daemon.docker("run", "--rm", "--pids-limit", "4", "busybox", "sh", "-c",
                      "for i in 1 2 3 4 5 6; do sleep 3 & done; echo done")
    assert "can't fork" in r.err, r
    ok = daemon.docker("run", "--rm", "busybox", "sh", "-c",
                       "for i in 1 2 3 4 5 6; do sleep 1 & done; wait; echo done")
    assert ok.status == 0 and "can't fork" not in ok.err, ok


@pytest.mark.skipif("memory" not in ENFORCED, reason="no memory controller for a root daemon")
def test_memory_limit(daemon):
    """dd's 64 MiB buffer in a 16 MiB container: the OOM killer ends dd
    (137), as under dockerd; without the limit it copies."""
    script = "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo status=$?"
    limited = daemon.ok("run", "--rm", "--memory", "16m", "--memory-swap", "16m", "busybox",
                        "sh", "-c", script)
    assert "status=137" in limited, limited
    assert "status=0" in daemon.ok("run", "--rm", "busybox", "sh", "-c", script)


@pytest.mark.skipif("cpu" not in ENFORCED, reason="no cpu controller for a root daemon")
def test_cpu_limits_and_devices_written(daemon):
    cid = daemon.ok("run", "-d", "--cpus", "0.5", "--cpu-shares", "512", "busybox",
                    "sleep", "30").strip()
    try:
        if any(not h.v2 and "cpu" in h.controllers for h in cgroups.hierarchies()):
            assert cgroup_file("cpu", cid, "cpu.cfs_quota_us").read_text().strip() == "50000"
            assert cgroup_file("cpu", cid, "cpu.shares").read_text().strip() == "512"
        else:
            assert cgroup_file("cpu", cid, "cpu.max").read_text().split() == ["50000", "100000"]
        pid = int(daemon.ok("inspect", "-f", "{{.State.Pid}}", cid))
        assert str(pid) in cgroup_file("cpu", cid, "cgroup.procs").read_text().split()
        if "devices" in ENFORCED:
            allowed = cgroup_file("devices", cid, "devices.list").read_text().splitlines()
            null = os.stat("/dev/null").st_rdev
            assert f"c {os.major(null)}:{os.minor(null)} rwm" in allowed, allowed
            assert "a *:* rwm" not in allowed
    finally:
        daemon.ok("rm", "-f", cid)
    assert not cgroup_file("cpu", cid, "").exists()     # removed with the container


@pytest.mark.skipif("memory" not in ENFORCED, reason="no memory controller for a root daemon")
def test_update_sets_the_running_containers_limits(daemon):
    """docker update changes a running container's cgroup at once, as
    dockerd does."""
    cid = daemon.ok("run", "-d", "busybox", "sleep", "30").strip()
    try:
        limit = cgroup_file("memory", cid, "memory.limit_in_bytes" if any(
            not h.v2 and "memory" in h.controllers for h in cgroups.hierarchies())
            else "memory.max")
        before = limit.read_text()
        r = daemon.docker("update", "--memory", "64m", "--memory-swap", "64m", "--pids-limit",
                          "7", cid)
        assert r.status == 0 and "next start" not in r.err + r.out, r
        assert limit.read_text().strip() == str(64 << 20) != before.strip()
        if "pids" in ENFORCED:
            assert cgroup_file("pids", cid, "pids.max").read_text().strip() == "7"
    finally:
        daemon.ok("rm", "-f", cid)


@pytest.mark.skipif(not ENFORCED, reason="no cgroups for a root daemon")
def test_a_killed_shims_cgroup_goes_with_the_container(daemon):
    """A shim killed with SIGKILL cannot remove its container's cgroup: the
    daemon does when the container is removed."""
    cid = daemon.ok("run", "-d", "busybox", "sleep", "30").strip()
    state = json.loads(daemon.ok("inspect", cid))[0]
    shim = json.loads((Path(state["LogPath"]).parent / "state.json").read_text())["ShimPid"]
    assert cgroups.Cgroup.left_by(cid).dirs
    os.kill(shim, signal.SIGKILL)
    daemon.ok("rm", "-f", cid)
    assert not cgroups.Cgroup.left_by(cid).dirs


def test_unenforced_limits_warned(daemon):
    """What no cgroup enforces here is said at create, as dockerd says it."""
    r = daemon.docker("create", "--memory", "64m", "--blkio-weight", "500", "busybox", "true")
    try:
        assert r.status == 0, r
        assert "BlkioWeight: resource limits are not enforced (no cgroups)" in r.err, r
        memory = "Memory: memory limits are not enforced (no cgroups)"
        assert (memory in r.err) == ("memory" not in ENFORCED), r
    finally:
        daemon.docker("rm", r.out.strip())
