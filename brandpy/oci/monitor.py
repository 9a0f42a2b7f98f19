"""The monitor: one process per container, the brandpy supervisor that
runs it from `create` to its exit (`python -m brandpy.oci.monitor`, started
by create, in a session of its own).

Why the monitor's pid is the container's pid (pid file, state): callers
learn that a container ended by reaping the pid they were given, as
containerd's shim does (it is the subreaper that inherits runc's children).
The entrypoint is the monitor's child (it must be: the tracer forks it), so
the pid handed out is the monitor's, which exits with the entrypoint's
status (128+N when killed by signal N), as runsc's sandbox process does.
Signals sent to the monitor are forwarded to the container; if the monitor
itself is killed, PTRACE_O_EXITKILL takes the container with it.

Threads: the main thread is the ptrace tracer (start() and run() must share
it); one thread serves the control socket (control.py), one forwards
signals. All signals they wait for are blocked before any thread starts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import sys
import threading
import traceback
from concurrent.futures import Future
from typing import Any

from brandpy.runtime.run_setup import ContainerError
from brandpy.supervise.container import Container
from brandpy.supervise.native_engine import block_sigchld

from .bundle import Plan
from .control import Channel, socket_path
from .errors import OciError
from .hooks import Hook
from .log import Log
from .namespaces import enter_network, private_paths
from .process import ProcessPlan
from .state import CREATED, CREATING, PAUSED, RUNNING, STOPPED, ContainerDir, start_time

FORWARDED = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH}
REQUEST_TIMEOUT = 30.0
HOOK_TIMEOUT = 60.0


def rlim(value: int) -> int:
    return resource.RLIM_INFINITY if value >= 1 << 63 else value


def apply_limits(pid: int, process: ProcessPlan, log: Log) -> None:
    """rlimits and the OOM score of a process just spawned. Without
    CAP_SYS_RESOURCE (root lacks it on some machines) a hard limit cannot be
    raised, which is an error, and another user's process cannot be
    changed at all, which is a warning: failing every non-root container
    there would be worse (see the runtime's spawn for the lasting fix)."""
    for r in process.rlimits:
        try:
            resource.prlimit(pid, r.resource, (rlim(r.soft), rlim(r.hard)))
        except PermissionError:
            ours = resource.getrlimit(r.resource)[1]
            if ours != resource.RLIM_INFINITY and rlim(r.hard) > ours \
                    or rlim(r.hard) == resource.RLIM_INFINITY != ours:
                raise OciError(f"process.rlimits {r.type}: the hard limit {r.hard} is above "
                               f"the runtime's own ({ours}) and raising it needs "
                               "CAP_SYS_RESOURCE, which this runtime lacks: lower it in "
                               "config.json") from None
            log.warning(f"process.rlimits {r.type} not applied: changing the limits of "
                        f"another user's process (uid {process.uid}) needs CAP_SYS_RESOURCE, "
                        "which this runtime lacks; it keeps the runtime's")
    if process.oom_score_adj is not None:
        try:
            with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                f.write(str(process.oom_score_adj))
        except PermissionError:
            raise OciError(f"process.oomScoreAdj {process.oom_score_adj}: lowering the OOM "
                           "score below the runtime's needs CAP_SYS_RESOURCE, which this "
                           "runtime lacks: raise it in config.json") from None


class Monitor:
    def __init__(self, cdir: ContainerDir, log: Log, sync_fd: int) -> None:
        self.cdir = cdir
        self.log = log
        self.sync_fd = sync_fd
        self.plan = Plan.load(cdir.plan_file)
        self.state = cdir.read()
        self.lock = threading.Lock()
        self.container: Container | None = None
        self.listener: socket.socket | None = None

    # -- main thread ----------------------------------------------------------

    def main(self) -> int:
        stdio = self._take_stdio()
        block_sigchld()
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        try:
            enter_network(self.plan.netns)
            config = self.plan.sandbox
            if os.geteuid() == 0:
                config = private_paths(config)
            c = self.container = Container(config, engine=self.plan.engine)
            self._groups(c)
            pid = c.start(stdio=stdio, tty=self.plan.process.terminal, hold=True)
        except (ContainerError, OciError) as exc:
            self._sync({"error": str(exc)})
            return 1
        except OSError as exc:   # unexpected: the traceback says where
            traceback.print_exc()
            self._sync({"error": f"brandpy monitor: {exc} (see {self.cdir.monitor_log})"})
            return 1
        finally:
            for fd in set(stdio):
                os.close(fd)
        try:
            apply_limits(pid, self.plan.process, self.log)
            self._listen()
        except (OciError, OSError) as exc:
            # killed before anything else, so that it dies silently where it
            # waits for its seccomp listener to be taken (native/child.c)
            # instead of adding its own error to the caller's stderr
            os.kill(pid, signal.SIGKILL)
            c.run()
            self._sync({"error": str(exc)})
            return 1
        self._update(CREATING, pid=os.getpid(), monitorStart=start_time(os.getpid()),
                     initPid=pid)
        threading.Thread(target=self._serve, name="control", daemon=True).start()
        threading.Thread(target=self._forward_signals, name="signals", daemon=True).start()
        self._sync({"pid": os.getpid()})
        status = c.run()
        self._finish(status)
        return status

    def _take_stdio(self) -> tuple[int, ...]:
        """Our fds 0..nfds-1 are the container's (stdio and --preserve-fds):
        move them aside, and keep our own output off them (a caller such as
        containerd's shim reads create's output until EOF)."""
        fds = tuple(os.dup(i) for i in range(self.plan.nfds))
        for fd in fds:
            os.set_inheritable(fd, False)
        null = os.open(os.devnull, os.O_RDWR)
        errors = os.open(self.cdir.monitor_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(errors, 2)
        os.close(null)
        os.close(errors)
        for i in range(3, self.plan.nfds):
            os.close(i)
        return fds

    def _groups(self, c: Container) -> None:
        """additionalGids beyond the image's /etc/group membership.
        SandboxConfig has no field for them yet, so the credentials the
        entrypoint will be started with are amended before start()."""
        extra = [g for g in self.plan.process.additional_gids if g not in c.sb.cred.groups]
        if extra:
            c.sb.cred.groups = tuple(c.sb.cred.groups) + tuple(extra)

    def _sync(self, message: dict[str, Any]) -> None:
        os.write(self.sync_fd, json.dumps(message).encode() + b"\n")
        os.close(self.sync_fd)

    def _listen(self) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        with socket_path(self.cdir) as path:
            self.listener.bind(path)
        os.chmod(self.cdir.socket, 0o600)
        self.listener.listen(16)

    def _finish(self, status: int) -> None:
        c = self.container
        assert c is not None
        try:
            self.cdir.stats_file.write_text(json.dumps(c.syscalls().result(), indent=1))
        except OSError as exc:
            self.log.warning(f"cannot write {self.cdir.stats_file}: {exc.strerror}")
        self._update(STOPPED, exitStatus=status)
        self.log.info(f"container {self.cdir.id} exited with status {status}")
        try:
            os.unlink(self.cdir.socket)
        except FileNotFoundError:
            pass

    def _update(self, status: str, **extra: Any) -> None:
        with self.lock:
            if self.state["status"] == STOPPED:
                return
            self.state["status"] = status
            if "pid" in extra:
                self.state["pid"] = extra.pop("pid")
            self.state["brandpy"].update(extra)
            self.cdir.write(self.state)

    # -- signal thread ----------------------------------------------------------

    def _forward_signals(self) -> None:
        assert self.container is not None
        while True:
            sig = signal.sigwait(FORWARDED)
            self.log.debug(f"forwarding signal {sig} to the container")
            self.container.signal(sig)

    # -- control thread ---------------------------------------------------------

    def _serve(self) -> None:
        assert self.listener is not None
        while True:
            sock, _ = self.listener.accept()
            threading.Thread(target=self._client, args=(Channel(sock),), daemon=True).start()

    def _client(self, chan: Channel) -> None:
        with chan:
            request, fds = chan.recv()
            if request is None:
                return
            op = request.get("op", "")
            handler = getattr(self, f"op_{op}", None)
            try:
                if handler is None:
                    raise OciError(f"unknown monitor request {op!r}")
                reply = handler(request, fds, chan)
            except (OciError, ContainerError) as exc:
                reply = {"error": str(exc)}
            except Exception as exc:   # keep serving; the traceback goes to monitor.log
                traceback.print_exc()
                reply = {"error": f"brandpy monitor: {op} failed: {exc!r}"}
            finally:
                for fd in fds:
                    os.close(fd)
            if reply is not None:
                chan.send(reply)

    def _status(self) -> str:
        with self.lock:
            return self.state["status"]

    def _need(self, status: str, message: str = "container not running") -> None:
        if self._status() != status:
            raise OciError(message)

    def op_created(self, req: dict, fds: list[int], chan: Channel) -> dict:
        self._update(CREATED)
        return {}

    def op_start(self, req: dict, fds: list[int], chan: Channel) -> dict:
        status = self._status()
        if status != CREATED:
            raise OciError({RUNNING: "cannot start an already running container",
                            STOPPED: "cannot start a container that has stopped"}.get(
                status, f"cannot start a container in the {status} state"))
        c = self.container
        assert c is not None
        for hook in self.plan.hooks.get("startContainer", []):
            self._container_hook(hook, req["state"])
        c.release()
        self._update(RUNNING)
        return {}

    def _container_hook(self, hook: Hook, state: dict) -> None:
        """A startContainer hook, run inside the container; a failure stops
        the container (runtime.md, lifecycle step 7)."""
        c = self.container
        assert c is not None
        r, w = os.pipe2(os.O_CLOEXEC)
        os.write(w, json.dumps({**state, "pid": self.state["brandpy"]["initPid"]}).encode())
        os.close(w)
        exited: Future[int] = Future()
        try:
            argv = [hook.path] + hook.argv[1:]
            c.exec(argv, hook.env, "/", (r, 2, 2), False, exited.set_result,
                   own_env=True).result(REQUEST_TIMEOUT)
            status = exited.result(hook.timeout or HOOK_TIMEOUT)
        except ContainerError as exc:
            c.signal(signal.SIGKILL)
            raise OciError(f"startContainer hook {hook.path}: {exc}") from None
        except TimeoutError:
            c.signal(signal.SIGKILL)
            raise OciError(f"startContainer hook {hook.path} timed out") from None
        finally:
            os.close(r)
        if status != 0:
            c.signal(signal.SIGKILL)
            raise OciError(f"startContainer hook {hook.path} failed with exit status "
                           f"{status} (its output is in {self.cdir.monitor_log})")

    def op_kill(self, req: dict, fds: list[int], chan: Channel) -> dict:
        c = self.container
        assert c is not None
        if self._status() not in (CREATED, RUNNING, PAUSED):
            if req.get("all"):
                return {}
            raise OciError("container not running")
        sig = int(req["signal"])
        if req.get("all"):
            for _, host in c.processes():
                try:
                    os.kill(host, sig)
                except ProcessLookupError:
                    pass
        else:
            c.signal(sig)
        return {}

    def op_pause(self, req: dict, fds: list[int], chan: Channel) -> dict:
        self._need(RUNNING)
        assert self.container is not None
        self.container.pause().result(REQUEST_TIMEOUT)
        self._update(PAUSED)
        return {}

    def op_resume(self, req: dict, fds: list[int], chan: Channel) -> dict:
        self._need(PAUSED, message="container not paused")
        assert self.container is not None
        self.container.resume().result(REQUEST_TIMEOUT)
        self._update(RUNNING)
        return {}

    def op_ps(self, req: dict, fds: list[int], chan: Channel) -> dict:
        assert self.container is not None
        return {"pids": [host for _, host in self.container.processes()]}

    def op_stats(self, req: dict, fds: list[int], chan: Channel) -> dict:
        c = self.container
        assert c is not None
        return c.syscalls().result(REQUEST_TIMEOUT)

    def op_exec(self, req: dict, fds: list[int], chan: Channel) -> None:
        """Start a process; reply with its host pid, then relay signals to
        it until it exits (and kill it if the caller goes first)."""
        c = self.container
        assert c is not None
        status = self._status()
        if status == PAUSED:
            raise OciError("cannot exec in a paused container: resume it first")
        if status not in (CREATED, RUNNING):
            raise OciError("cannot exec in a stopped container")
        proc = ProcessPlan.from_json(req["process"])
        if len(fds) < 3:
            raise OciError("exec: the caller must pass the process's stdin, stdout and stderr")
        cred = c.sb.cred
        # the container's own user keeps its credentials (additionalGids included)
        user = "" if (proc.uid, proc.gid) == (cred.euid, cred.egid) else f"{proc.uid}:{proc.gid}"
        if proc.caps is not None and frozenset(proc.caps) != c.sb.caps:
            self.log.info(f"exec {proc.argv[0]}: capabilities as the container's; the "
                          "process's own set is not applied")
        exited: Future[int] = Future()
        told = threading.Lock()   # the caller hears of the pid before the exit
        pid_sent = False

        def on_exit(status: int) -> None:   # tracer thread
            exited.set_result(status)
            with told:
                if pid_sent:
                    _tell_exit(chan, status)

        try:
            pid = c.exec(proc.argv, proc.env, proc.cwd, tuple(fds), proc.terminal, on_exit,
                         user=user, own_env=True).result(REQUEST_TIMEOUT)
        finally:   # the process has them now; holding them would delay EOF for readers
            for fd in fds:
                os.close(fd)
            fds.clear()
        try:
            # exec'd processes start with the monitor's limits: apply theirs now
            apply_limits(pid, proc, self.log)
        except OciError as exc:
            self.log.warning(f"exec {proc.argv[0]}: {exc}")
        except (ProcessLookupError, FileNotFoundError):
            pass    # it has exited already (`sh -c 'exit 6'`): its status is told below
        with told:
            chan.send({"pid": pid})
            pid_sent = True
            if exited.done():
                _tell_exit(chan, exited.result())
        while True:
            try:
                message, extra = chan.recv()
            except OSError:
                message, extra = None, []
            for fd in extra:
                os.close(fd)
            if exited.done():
                return None
            if message is None:   # the caller (runc exec, or its proxy) is gone
                os.kill(pid, signal.SIGKILL)
                return None
            if "signal" in message:
                os.kill(pid, int(message["signal"]))


def _tell_exit(chan: Channel, status: int) -> None:
    try:
        chan.send({"exit": status})
    except OSError:
        pass   # the caller is gone


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m brandpy.oci.monitor",
                                description="brandpy-runc's per-container monitor (started by "
                                "create; not for direct use)")
    p.add_argument("--root", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--sync-fd", type=int, required=True)
    p.add_argument("--log", default="")
    p.add_argument("--log-format", default="text")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    log = Log(args.log, args.log_format, args.debug)
    monitor = Monitor(ContainerDir(args.root, args.id), log, args.sync_fd)
    return monitor.main()


if __name__ == "__main__":
    sys.exit(main())
