"""The Container API the engine uses while a container runs: exec,
pause/resume, process listing, signals, from threads other than the
supervisor's."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from brandpy.runtime.run_setup import ContainerError
from brandpy.runtime.sandbox import SandboxConfig
from brandpy.supervise.container import Container
from tests.conftest import SETPRIV, copy_rootfs, leftovers


def proc_state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return "?"


def in_thread(c: Container, **start) -> tuple[threading.Thread, Future[int]]:
    """Supervise from a thread that is not the main one, as the tests'
    process also has other children (registries, dockerd)."""
    status: Future[int] = Future()

    def supervise():
        try:
            c.start(**start)
            status.set_result(c.run())
        except BaseException as exc:
            status.set_exception(exc)

    t = threading.Thread(target=supervise, daemon=True)
    t.start()
    return t, status


@pytest.fixture(params=["native", "python"])
def running(request, tmp_path, busybox_image):
    rootfs = copy_rootfs(busybox_image, tmp_path / "rootfs")
    config = SandboxConfig(rootfs=str(rootfs), state_dir=str(tmp_path / "state"),
                           argv=["/bin/sh", "-c", "while :; do sleep 0.05; done"])
    (tmp_path / "state").mkdir()
    c = Container(config, engine=request.param)
    t, status = in_thread(c, stdio=(0, 1, 2))
    while not c.init_pid and not status.done():
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
    assert pids and all(proc_state(p) in ("t", "Z") for p in pids), [(p, proc_state(p)) for p in pids]
    assert proc_state(c.init_pid) == "t"
    c.resume().result(10)
    # running again: the loop starts new processes (each passes through
    # ptrace stops, so a snapshot of states would race them)
    deadline = time.monotonic() + 10
    while {host for _, host in c.processes()} <= set(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {host for _, host in c.processes()} - set(pids)


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

    t = threading.Thread(target=supervise, daemon=True)
    t.start()
    ready.wait(10)
    time.sleep(0.3)
    assert not (rootfs / "tmp" / "ran").exists() and not status.done()
    c.release()
    assert status.result(10) == 0
    assert (rootfs / "tmp" / "ran").read_text() == "ran\n"
    t.join(5)


@pytest.mark.parametrize("engine", ["native", "python"])
def test_other_threads_children_keep_their_statuses(tmp_path, busybox_image, engine):
    """The supervisor waits only for its own thread's children and tracees:
    a process's other children (an OCI monitor's hooks, daemons a test
    started) neither keep it running nor lose their exit statuses to it."""
    rootfs = copy_rootfs(busybox_image, tmp_path / "rootfs")
    (tmp_path / "state").mkdir()
    lingering = subprocess.Popen(["sleep", "60"])
    quick = subprocess.Popen(["sh", "-c", "sleep 0.3; exit 3"])
    try:
        c = Container(SandboxConfig(rootfs=str(rootfs), state_dir=str(tmp_path / "state"),
                                    argv=["/bin/sh", "-c", "sleep 1; exit 7"]), engine=engine)
        _, status = in_thread(c)
        assert status.result(20) == 7
        assert quick.wait(10) == 3
    finally:
        lingering.kill()
        lingering.wait()


EXEC_AS = """
import os, signal, sys, threading, time
from concurrent.futures import Future
from brandpy.supervise.container import Container
from brandpy.runtime.sandbox import SandboxConfig

rootfs, state, engine = sys.argv[1:]
c = Container(SandboxConfig(rootfs=rootfs, state_dir=state, env=["FOO=container", "KEEP=1"],
                            argv=["/bin/sh", "-c", "while :; do sleep 0.05; done"]),
              engine=engine)
status = Future()
threading.Thread(target=lambda: (c.start(), status.set_result(c.run()))).start()
while not c.init_pid:
    time.sleep(0.01)
script = "id; echo $FOO $KEEP; f=/tmp/by-$(id -u)-$(id -g); touch $f; stat -c %U:%G $f; id -u"
for user in ("app", "0:1000", ""):
    exited = Future()
    c.exec(["/bin/sh", "-c", script], env=["FOO=exec"], user=user,
           on_exit=exited.set_result).result(10)
    print("status", exited.result(10), flush=True)
try:
    c.exec(["/bin/true"], user="nosuch").result(10)
except Exception as exc:
    print(type(exc).__name__, exc, flush=True)
c.signal(signal.SIGKILL)
status.result(10)
"""


def test_exec_as_another_user(brandpy, tmp_path, world_tmp, busybox):
    """docker exec -u: the process has that user's IDs (real as root,
    emulated unprivileged, getuid trapped for it either way) and the
    container's environment with exec's -e on top."""
    state = Path(tempfile.mkdtemp(dir=world_tmp))
    os.chown(state, brandpy.uid, brandpy.uid)
    argv = (SETPRIV if brandpy.user == "nobody" else []) + [
        sys.executable, "-c", EXEC_AS, str(busybox), str(state), brandpy.engine]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=brandpy.env(),
                       cwd="/")
    assert p.stdout.splitlines() == [
        "uid=1000(app) gid=1000(app) groups=1000(app)", "exec 1", "app:app", "1000", "status 0",
        "uid=0(root) gid=1000(app) groups=1000(app)", "exec 1", "root:app", "0", "status 0",
        "uid=0(root) gid=0(root) groups=0(root)", "exec 1", "root:root", "0", "status 0",
        "ContainerError unable to find user nosuch: no matching entries in passwd file"], p
