"""Load and faults (`make test-slow`): 50 containers started ten at a time
all run and are removed with nothing left behind; kill -9 of the daemon
with ten containers running, five times over, loses nothing (the same
containers run on under the same shims, their logs have no gap). These
assert correctness, not timings."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.conftest import Daemon, wait_for

pytestmark = pytest.mark.slow
WIDTH = 10
COUNTER = "i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done"


def ten_at_a_time(fn: Callable[[str], str], items: list[str]) -> list[str]:
    out: list[str] = []
    with ThreadPoolExecutor(WIDTH) as pool:
        for start in range(0, len(items), WIDTH):
            out += pool.map(fn, items[start:start + WIDTH])
    return out


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def test_fifty_containers_ten_at_a_time(fresh: Daemon) -> None:
    d = fresh
    names = [f"load{i}" for i in range(50)]
    ids = ten_at_a_time(lambda n: d.ok("run", "-d", "--name", n, "busybox", "sleep", "600")
                        .strip(), names)
    assert sorted(d.ok("ps", "-q", "--no-trunc").split()) == sorted(ids)
    assert d.ok("inspect", "-f", "{{.State.Running}}", *ids).split() == ["true"] * 50
    shims = d.shim_pids()
    assert len(shims) == 50
    ten_at_a_time(lambda cid: d.ok("rm", "-f", cid), ids)
    assert d.ok("ps", "-aq") == ""
    wait_for(lambda: not any(alive(pid) for pid in shims))
    data = d.root / "data"
    assert os.listdir(data / "containers") == []
    assert os.listdir(data / "volumes") == []
    assert d.ok("volume", "ls", "-q") == ""


def counted(d: Daemon, cid: str) -> list[int]:
    return [int(line) for line in d.ok("logs", cid).split()]


def test_kill_9_with_ten_running_loses_nothing(fresh: Daemon) -> None:
    d = fresh
    ids = ten_at_a_time(lambda n: d.ok("run", "-d", "--name", n, "busybox", "sh", "-c", COUNTER)
                        .strip(), [f"count{i}" for i in range(WIDTH)])
    for cid in ids:
        wait_for(lambda cid=cid: len(counted(d, cid)) >= 3)
    shims = sorted(d.shim_pids())
    assert len(shims) == WIDTH
    seen = {cid: 0 for cid in ids}
    for _ in range(5):
        d.stop(signal.SIGKILL)
        time.sleep(0.5)         # the containers go on writing while no daemon runs
        d.start()
        assert sorted(d.ok("ps", "-q", "--no-trunc").split()) == sorted(ids)
        assert sorted(d.shim_pids()) == shims
        for cid in ids:
            lines = counted(d, cid)
            assert lines == list(range(len(lines))), f"{cid}: a gap or a repeat in its log"
            assert len(lines) > seen[cid]
            seen[cid] = len(lines)
    d.ok("rm", "-f", *ids)
    wait_for(lambda: not any(alive(pid) for pid in shims))
    assert os.listdir(d.root / "data" / "containers") == []
