"""The cgroup the stress-ng suite runs its commands in: they join it, its
limits hold, and it is gone afterwards."""

import os
import subprocess

import pytest

from benchmarks.confine import Confinement, group_name

pytestmark = [pytest.mark.bench, pytest.mark.needs_root]


@pytest.fixture
def confinement():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        c = Confinement(group_name() + "-test", memory=64 << 20, pids=16)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield c
    c.close()
    assert not any(d.exists() for d in c.dirs)


def test_commands_join_the_group_and_meet_its_limits(confinement):
    out = subprocess.run(confinement.wrap(["cat", "/proc/self/cgroup"]), capture_output=True,
                         text=True, check=True).stdout
    lines = {line.split(":")[1]: line.split(":", 2)[2] for line in out.splitlines()}
    assert lines["memory"].endswith("/" + group_name() + "-test")
    assert lines["pids"].endswith("/" + group_name() + "-test")
    # 16 PIDs: a shell forking 40 sleeps is refused
    forks = subprocess.run(confinement.wrap(
        ["sh", "-c", "for i in $(seq 40); do sleep 1 & done; wait; echo done"]),
        capture_output=True, text=True)
    assert (forks.stdout, "Cannot fork" in forks.stderr) == ("", True)
