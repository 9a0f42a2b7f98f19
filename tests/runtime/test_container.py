"""The Container API the engine uses while a container runs: exec,
pause/resume, process listing, signals, from threads other than the
supervisor's."""

import signal
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from brandpy.runtime.container import Container, ContainerError
from brandpy.runtime.sandbox import SandboxConfig
from tests.conftest import copy_rootfs, leftovers


def proc_state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return "?"


@pytest.fixture
def running(tmp_path, busybox_image):
    rootfs = copy_rootfs(busybox_image, tmp_path / "rootfs")
    config = SandboxConfig(rootfs=str(rootfs), state_dir=str(tmp_path / "state"),
                           argv=["/bin/sh", "-c", "while :; do sleep 0.05; done"])
    (tmp_path / "state").mkdir()
    c = Container(config)
    status: Future[int] = Future()

    def supervise():
        c.start(stdio=(0, 1, 2))
        status.set_result(c.run())

    t = threading.Thread(target=supervise)
    t.start()
    while not c.init_pid:
        time.sleep(0.01)
    yield c, status, rootfs
    c.signal(signal.SIGKILL)
    t.join(10)
    assert leftovers(rootfs) == []


def test_exec_runs_in_the_container_and_reports_its_status(running):
    c, _, rootfs = running
    exited: Future[int] = Future()
    pid = c.exec(["/bin/sh", "-c", "pwd > /tmp/where; exit 5"], workdir="/etc",
                 on_exit=exited.set_result).result(10)
    assert pid > 0
    assert exited.result(10) == 5
    assert (rootfs / "tmp" / "where").read_text() == "/etc\n"


def test_exec_of_a_missing_command(running):
    c, _, _ = running
    with pytest.raises(ContainerError) as err:
        c.exec(["nosuch"]).result(10)
    assert err.value.status == 127


def test_pause_freezes_every_process_and_resume_thaws(running):
    c, _, _ = running
    c.pause().result(10)
    time.sleep(0.3)
    pids = [host for _, host in c.processes()]
    # stopped, or exited with its parent frozen before reaping it
    assert pids and all(proc_state(p) in ("t", "Z") for p in pids)
    assert proc_state(c.init_pid) == "t"
    c.resume().result(10)
    time.sleep(0.3)
    assert all(proc_state(p) in ("S", "R", "Z") for _, p in c.processes())
    assert proc_state(c.init_pid) in ("S", "R")


def test_processes_and_signal(running):
    c, status, _ = running
    assert (1, c.init_pid) in c.processes()
    # the entrypoint is a namespace's init: no handler, no SIGTERM (as docker stop sees)
    c.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert not status.done()
    c.signal(signal.SIGKILL)
    assert status.result(10) == 128 + signal.SIGKILL


def test_held_entrypoint_starts_on_release(tmp_path, busybox_image):
    """OCI create/start: the process exists before its program runs."""
    rootfs = copy_rootfs(busybox_image, tmp_path / "rootfs")
    (tmp_path / "state").mkdir()
    c = Container(SandboxConfig(rootfs=str(rootfs), state_dir=str(tmp_path / "state"),
                                argv=["/bin/sh", "-c", "echo ran > /tmp/ran"]))
    status: Future[int] = Future()
    ready = threading.Event()

    def supervise():
        c.start(hold=True)
        ready.set()
        status.set_result(c.run())

    t = threading.Thread(target=supervise)
    t.start()
    ready.wait(10)
    time.sleep(0.3)
    assert not (rootfs / "tmp" / "ran").exists() and not status.done()
    c.release()
    assert status.result(10) == 0
    assert (rootfs / "tmp" / "ran").read_text() == "ran\n"
    t.join(5)
