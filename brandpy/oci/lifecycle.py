"""The OCI lifecycle (runtime.md): create, start, kill, delete, and run (all
of them in one), plus pause and resume. State changes after create are the
monitor's to record; these commands ask it over its control socket."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from brandpy.runtime.cgroups import Cgroup

from . import control
from .console import open_pty, relay, send_console, send_pidfd
from .errors import NotExist, OciError
from .hooks import run_hooks
from .options import Options
from .state import CREATED, LIVE, PAUSED, RUNNING, STOPPED, ContainerDir, atomic_write, new_state, oci_view

SYNC_TIMEOUT = 120.0      # the monitor builds the sandbox and spawns the entrypoint
KILL_TIMEOUT = 10.0       # delete --force waits this long, as runc does
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])   # holds brandpy/ and syscalls/


@dataclass
class Created:
    cdir: ContainerDir
    monitor: subprocess.Popen
    master: int | None       # the pty master, when run keeps it (no console socket)


def write_pid_file(path: str, pid: int) -> None:
    atomic_write(Path(os.path.abspath(path)), str(pid).encode())


def create(opts: Options, cid: str, bundle: str, pid_file: str = "", console_socket: str = "",
           preserve_fds: int = 0, foreground: bool = False, pidfd_socket: str = "") -> Created:
    from .bundle import make_plan, read_config

    cdir = ContainerDir(opts.root, cid)
    config = read_config(bundle)
    for fd in range(3, 3 + preserve_fds):
        try:
            os.fstat(fd)
        except OSError:
            raise OciError(f"--preserve-fds {preserve_fds}: fd {fd} is not open") from None
    cdir.make()
    monitor = None
    try:
        plan = make_plan(bundle, config, cdir, opts, preserve_fds)
        for level, message in plan.notes:
            opts.log.write(level, message)
        terminal = plan.process.terminal
        if terminal and not console_socket and not foreground:
            raise OciError("process.terminal is true but there is no --console-socket to send "
                           "the terminal to: pass one, or set terminal to false")
        plan.save(cdir.plan_file)
        cdir.write(new_state(cdir, plan.bundle, plan.sandbox.rootfs, plan.annotations))
        master = slave = None
        if terminal:
            master, slave = open_pty(plan.process.console_size)
        monitor, reply = _spawn_monitor(opts, cdir, slave, preserve_fds)
        if slave is not None:
            os.close(slave)
        if "error" in reply:
            raise OciError(reply["error"])
        if master is not None and console_socket:
            send_console(console_socket, master)
            os.close(master)
            master = None
        state = oci_view(cdir.read())
        for kind in ("prestart", "createRuntime", "createContainer"):
            run_hooks(kind, plan.hooks.get(kind, []), state)
        control.request(cdir, "created")
        if pid_file:
            write_pid_file(pid_file, state["pid"])
        if pidfd_socket:
            send_pidfd(pidfd_socket, state["pid"])
        return Created(cdir, monitor, master)
    except BaseException:
        _abort(opts, cdir, monitor)
        raise


def _spawn_monitor(opts: Options, cdir: ContainerDir, tty: int | None,
                   preserve_fds: int) -> tuple[subprocess.Popen, dict]:
    """Start the container's monitor; its first word (on a pipe) is the
    pid of the container or why it could not be created."""
    r, w = os.pipe()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "brandpy.oci.monitor", "--root", opts.root, "--id", cdir.id,
           "--sync-fd", str(w), *opts.log.argv()]
    try:
        monitor = subprocess.Popen(cmd, stdin=tty, stdout=tty, stderr=tty, cwd="/", env=env,
                                   pass_fds=(w, *range(3, 3 + preserve_fds)),
                                   start_new_session=True)
    finally:
        os.close(w)
    try:
        data = b""
        deadline = time.monotonic() + SYNC_TIMEOUT
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                monitor.kill()
                return monitor, {"error": "the brandpy monitor did not report within "
                                 f"{SYNC_TIMEOUT:.0f}s: see {cdir.monitor_log}"}
            chunk = os.read(r, 4096)
            if not chunk:
                return monitor, {"error": "the brandpy monitor exited before the container "
                                 f"was created: {_tail(cdir.monitor_log)}"}
            data += chunk
    finally:
        os.close(r)
    return monitor, json.loads(data)


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return " | ".join(lines[-5:]) or f"no output in {path}"


def _abort(opts: Options, cdir: ContainerDir, monitor: subprocess.Popen | None) -> None:
    """Undo a failed create: the caller must find no container."""
    if monitor is not None:
        monitor.kill()   # PTRACE_O_EXITKILL takes the held entrypoint with it
        monitor.wait()
        _poststop(opts, cdir)
    _remove(cdir)


def start(opts: Options, cid: str) -> None:
    from .bundle import Plan

    cdir = ContainerDir(opts.root, cid)
    state = cdir.load()
    status = state["status"]
    if status != CREATED:
        raise OciError({RUNNING: "cannot start an already running container",
                        STOPPED: "cannot start a container that has stopped"}.get(
                            status, f"cannot start a container in the {status} state"))
    plan = Plan.load(cdir.plan_file)
    control.request(cdir, "start", state=oci_view(state))
    try:
        run_hooks("poststart", plan.hooks.get("poststart", []), oci_view(cdir.load()))
    except OciError:
        control.request(cdir, "kill", signal=int(signal.SIGKILL), all=True)
        raise


def kill(opts: Options, cid: str, sig: int, all_processes: bool = False) -> None:
    cdir = ContainerDir(opts.root, cid)
    if cdir.load()["status"] not in LIVE:
        if all_processes:   # runc: --all only suppresses this error now
            return
        raise OciError("container not running")
    control.request(cdir, "kill", signal=sig, all=all_processes)


def pause(opts: Options, cid: str) -> None:
    cdir = ContainerDir(opts.root, cid)
    if cdir.load()["status"] != RUNNING:
        raise OciError("container not running")
    control.request(cdir, "pause")


def resume(opts: Options, cid: str) -> None:
    cdir = ContainerDir(opts.root, cid)
    if cdir.load()["status"] != PAUSED:
        raise OciError("container not paused")
    control.request(cdir, "resume")


def delete(opts: Options, cid: str, force: bool = False) -> None:
    cdir = ContainerDir(opts.root, cid)
    try:
        state = cdir.load()
    except NotExist:
        if not force:
            raise
        cdir.remove()   # what an interrupted create may have left
        return
    status = state["status"]
    if status in (RUNNING, PAUSED) and not force:
        raise OciError(f"cannot delete container {cid} that is not stopped: {status} (stop it, "
                       "or delete --force)")
    if status != STOPPED:
        _stop(cdir, state)
    _poststop(opts, cdir)
    _remove(cdir)


def _remove(cdir: ContainerDir) -> None:
    """The container's directory, and the cgroup a monitor killed before
    the container's end leaves behind."""
    if os.geteuid() == 0:
        Cgroup.left_by(cdir.id).remove()
    cdir.remove()


def _stop(cdir: ContainerDir, state: dict) -> None:
    """Kill every process of the container and wait for its monitor."""
    if state["pid"]:
        try:
            control.request(cdir, "kill", signal=int(signal.SIGKILL), all=True)
        except control.MonitorGone:
            pass
        if not _wait_gone(cdir, state, KILL_TIMEOUT):
            # the monitor does not answer: killing it kills its tracees
            os.kill(state["pid"], signal.SIGKILL)
            _wait_gone(cdir, state, KILL_TIMEOUT)


def _wait_gone(cdir: ContainerDir, state: dict, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while cdir.monitor_alive(state):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _poststop(opts: Options, cdir: ContainerDir) -> None:
    """poststop hooks: a failure is a warning (runtime.md, step 13)."""
    from .bundle import Plan

    try:
        plan = Plan.load(cdir.plan_file)
        state = cdir.read()
    except (OSError, OciError, ValueError):
        return   # create failed before there was anything to stop
    state.update(status=STOPPED, pid=0)
    try:
        run_hooks("poststop", plan.hooks.get("poststop", []), oci_view(state))
    except OciError as exc:
        opts.log.warning(str(exc))


def run(opts: Options, cid: str, bundle: str, pid_file: str = "", console_socket: str = "",
        preserve_fds: int = 0, detach: bool = False, keep: bool = False,
        pidfd_socket: str = "") -> int:
    """create + start; in the foreground (no --detach), wait for the
    container, relaying its terminal when it has one and no console
    socket took it, and delete it unless --keep."""
    created = create(opts, cid, bundle, pid_file, console_socket, preserve_fds,
                     foreground=not detach, pidfd_socket=pidfd_socket)
    try:
        start(opts, cid)
    except OciError:
        delete(opts, cid, force=True)
        raise
    if detach:
        return 0

    def forward(sig: int, _frame: object) -> None:
        try:
            control.request(created.cdir, "kill", signal=sig)
        except OciError:
            pass

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        if created.master is not None:
            relay(created.master)
            os.close(created.master)
        status = created.monitor.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not keep:
        delete(opts, cid, force=True)
    return status if status >= 0 else 128 - status


def state(opts: Options, cid: str) -> dict:
    return oci_view(ContainerDir(opts.root, cid).load())

