"""`brandpy run`'s cgroup (as root, brandpy/runtime/cgroups.py): removed at
its end, and one left by a run killed with SIGKILL is removed by the next."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from brandpy.runtime import cgroups
from tests.conftest import Runner

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not cgroups.enforceable(),
                                reason="cgroups are made by a root supervisor")


def test_a_killed_runs_cgroup_is_removed_by_the_next(brandpy_root: Runner, busybox_image):
    p = subprocess.Popen(brandpy_root.cmd(busybox_image, ["sleep", "30"]),
                         env=brandpy_root.env(), cwd="/")
    name = f"{cgroups.RUN_PREFIX}{p.pid}"
    deadline = time.monotonic() + 20
    while not cgroups.Cgroup.left_by(name).tasks() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cgroups.Cgroup.left_by(name).tasks(), "the run never got its cgroup"
    p.send_signal(signal.SIGKILL)       # its tracees die with it (PTRACE_O_EXITKILL)
    p.wait()
    deadline = time.monotonic() + 10
    while cgroups.Cgroup.left_by(name).tasks() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cgroups.Cgroup.left_by(name).dirs      # nothing removed it
    assert brandpy_root(busybox_image, ["true"]).status == 0
    assert not cgroups.Cgroup.left_by(name).dirs
