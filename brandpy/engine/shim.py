"""A container's shim: the process that supervises one container, like
containerd's shim. The daemon starts it (`python -m brandpy.engine.shim
DIR`); it detaches, so it outlives the daemon (restart, crash, kill -9).

It owns the container's stdio (pipes or a pty), writes the json-file log,
keeps `state.json` current (atomically), applies the restart policy, and
serves the daemon's requests on the unix socket DIR/shim.sock (protocol in
shimproto). Threads: the main thread is the ptrace tracer (the runtime
requires the thread that starts the entrypoint to supervise it); an asyncio
loop on a second thread serves the socket and pumps the stdio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from brandpy.images.fsutil import atomic_write_json
from brandpy.network import netns
from brandpy.runtime.cgroups import Limits
from brandpy.runtime.devices import Device
from brandpy.runtime.run_setup import ContainerError
from brandpy.runtime.sandbox import PortMapping, SandboxConfig, Ulimit, Volume
from brandpy.runtime.stats import LedgerEntry
from brandpy.supervise.container import Container
from brandpy.supervise.native_engine import block_sigchld

from . import shimproto, syscall_view, timefmt
from .logdrivers import Rotation
from .logs import LogWriter
from .research import ResearchSpec, research
from .stdio import Client, Session

SOCKET = "shim.sock"
SPEC = "shim.json"
STATE = "state.json"
# Docker's restart back-off: 100 ms doubling to a minute, reset after a
# run of 10 s or more.
BACKOFF_START, BACKOFF_MAX, BACKOFF_RESET = 0.1, 60.0, 10.0
EXEC_DRAIN_GRACE = 2.0
START_TIMEOUT = 60.0
SNAPSHOT_TIMEOUT = 10.0


def initial_state() -> dict[str, Any]:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": timefmt.ZERO, "FinishedAt": timefmt.ZERO, "RestartCount": 0,
            "ManuallyStopped": False}


def sandbox_config(spec: dict) -> SandboxConfig:
    fields = dict(spec["sandbox"])
    fields["volumes"] = [Volume(**v) for v in fields.get("volumes", [])]
    fields["ports"] = [PortMapping(**p) for p in fields.get("ports", [])]
    fields["ulimits"] = [Ulimit(**u) for u in fields.get("ulimits", [])]
    fields["devices"] = [Device(**d) for d in fields.get("devices", [])]
    fields["limits"] = Limits(**fields.get("limits", {}))
    return SandboxConfig(**fields)


class Exec:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.exit: asyncio.Future[int] | None = None
        self.pidfd = -1      # to signal it by: a PID can be reused once it is reaped


class Shim:
    def __init__(self, cdir: Path) -> None:
        self.dir = cdir
        self.spec = json.loads((cdir / SPEC).read_text())
        try:
            self.state = {**initial_state(), **json.loads((cdir / STATE).read_text())}
        except FileNotFoundError:
            self.state = initial_state()
        self.state["ShimPid"] = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.watchers: set[asyncio.StreamWriter] = set()
        self.attached: set[Client] = set()           # clients of the entrypoint's stdio
        self.stdin_once_done = False
        self.early_stdin = bytearray()
        self.session: Session | None = None            # the current run's stdio
        self.container: Container | None = None
        self.execs: dict[str, Exec] = {}
        self.start_request: Future[Future[int]] = Future()
        self.stopping = threading.Event()               # docker stop/kill: no restart
        self.exited = asyncio.Event()                   # set on the loop while not running
        # None: the `none` log driver
        self.log = LogWriter(self.spec["log"], Rotation(**self.spec.get("log_rotation") or {})) \
            if self.spec["log"] else None
        self.research = ResearchSpec.from_json(self.spec.get("research") or {})

    # -- the loop thread ------------------------------------------------------

    def serve(self, listener: socket.socket) -> None:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.exited.set()
            self.loop.run_until_complete(
                asyncio.start_unix_server(self._client, sock=listener, limit=shimproto.MAX_LINE))
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, name="shim-io", daemon=True).start()
        ready.wait()

    def on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn on the loop thread and return its result (main thread)."""
        done: Future = Future()

        def call() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as exc:   # handed back to the caller
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        return done.result()

    def set_state(self, event: str | None = None, changes: dict | None = None,
                  **more: Any) -> None:
        """Record a state change on disk, then tell the daemon (loop thread)."""
        changes = {**(changes or {}), **more}
        self.state.update(changes)
        atomic_write_json(self.dir / STATE, self.state)
        self.tell_watchers({"event": event, "state": self.state, **(
            {"exitCode": changes["ExitCode"]} if "ExitCode" in changes else {})})

    def tell_watchers(self, obj: dict) -> None:
        """One line to every daemon watching (loop thread)."""
        msg = shimproto.dumps(obj)
        for w in list(self.watchers):
            if w.is_closing():
                self.watchers.discard(w)
            else:
                w.write(msg)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            req = await shimproto.read_json(reader)
            if req is None:
                return
            handler = getattr(self, "op_" + str(req.get("op")), None)
            if handler is None:
                raise ContainerError(f"unknown shim request {req.get('op')!r}", 400)
            keep = await handler(req, reader, writer)
            if keep:
                return
        except ContainerError as exc:
            writer.write(shimproto.dumps({"error": str(exc), "status": exc.status}))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:
            traceback.print_exc()
            writer.write(shimproto.dumps({"error": f"shim: {exc}", "status": 500}))
        try:
            await writer.drain()
            writer.close()
        except ConnectionError:
            pass

    def _reply(self, writer: asyncio.StreamWriter, **fields: Any) -> None:
        writer.write(shimproto.dumps({"ok": True, **fields}))

    # Each op_ handler answers one request; True keeps the connection open.

    async def op_state(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        self._reply(writer, state=self.state)
        return False

    async def op_update(self, req: dict, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> bool:
        self._running().update_limits(Limits(**req.get("limits", {})))
        self._reply(writer)
        return False

    async def op_pull(self, req: dict, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        if self.session is not None:
            self.session.pull()
        self._reply(writer)
        return False

    async def op_watch(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        self._reply(writer, state=self.state)
        self.watchers.add(writer)
        await reader.read()        # until the daemon goes away
        self.watchers.discard(writer)
        return False

    async def op_start(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        if self.start_request.done():
            raise ContainerError("the container was already started by this shim", 409)
        result: Future[int] = Future()
        self.start_request.set_result(result)
        self._reply(writer, pid=await asyncio.wrap_future(result))
        return False

    async def op_attach(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        tty = bool(self.spec["tty"])
        streams = {s for s, want in ((shimproto.STDOUT, req.get("stdout")),
                                     (shimproto.STDERR, req.get("stderr"))) if want}
        client = Client(writer, streams)
        self._reply(writer, tty=tty)
        self.attached.add(client)
        if self.session is not None:
            self.session.clients.add(client)
        try:
            while data := await reader.read(65536):
                if req.get("stdin"):
                    self._stdin(data)
            if req.get("stdin") and self.spec["stdin_once"]:
                self.stdin_once_done = True
                if self.session is not None:
                    self.session.close_stdin()
            await writer.wait_closed()
        finally:
            self.attached.discard(client)
            if self.session is not None:
                self.session.clients.discard(client)
        return True

    def _stdin(self, data: bytes) -> None:
        """Input for the entrypoint; kept until it starts (`docker run -i`
        attaches, and the client writes, before the start)."""
        if self.session is not None:
            self.session.write_stdin(data)
        else:
            self.early_stdin += data

    async def op_signal(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        sig = int(req["signal"])
        if not self.state["Running"]:
            raise ContainerError(f"container {self.spec['id']} is not running", 409)
        if sig in (signal.SIGKILL, self.spec["stop_signal"]):
            self._stopped_by_user()
        self._signal(sig)
        self._reply(writer)
        return False

    def _stopped_by_user(self) -> None:
        """No restart after this exit; remembered for `unless-stopped`."""
        self.stopping.set()
        self.set_state(None, ManuallyStopped=True)

    def _signal(self, sig: int) -> None:
        if self.container is None:
            return
        if sig == signal.SIGKILL and self.state["Paused"]:
            self.container.resume()
        self.container.signal(sig)

    async def op_stop(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        """docker stop: the stop signal, then SIGKILL after the timeout
        (a negative timeout waits for ever); answered once it exited."""
        self._stopped_by_user()
        if self.state["Running"] and not self.state["Restarting"]:
            if self.state["Paused"] and self.container is not None:
                await asyncio.wrap_future(self.container.resume())
            self._signal(int(req["signal"]))
            timeout = req.get("timeout")
            try:
                await asyncio.wait_for(self.exited.wait(),
                                       None if timeout is None or timeout < 0 else timeout)
            except TimeoutError:
                self._signal(signal.SIGKILL)
        await self.exited.wait()
        self._reply(writer)
        return False

    async def op_pause(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        container = self._running()
        if self.state["Paused"]:
            raise ContainerError(f"container {self.spec['id']} is already paused", 409)
        await asyncio.wrap_future(container.pause())
        self.set_state("pause", Paused=True, Status="paused")
        self._reply(writer)
        return False

    async def op_resume(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        container = self._running()
        if not self.state["Paused"]:
            raise ContainerError(f"container {self.spec['id']} is not paused", 409)
        await asyncio.wrap_future(container.resume())
        self.set_state("unpause", Paused=False, Status="running")
        self._reply(writer)
        return False

    async def op_top(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        container = self._running()
        self._reply(writer, processes=container.processes())
        return False

    async def op_resize(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        exec_id = req.get("exec")
        session = self.execs[exec_id].session if exec_id in self.execs else self.session
        if exec_id and exec_id not in self.execs:
            raise ContainerError(f"no such exec instance: {exec_id}", 404)
        if session is None:
            raise ContainerError(f"container {self.spec['id']} is not running", 409)
        try:
            session.resize(int(req["h"]), int(req["w"]))
        except OSError as exc:
            raise ContainerError(f"cannot resize: {exc.strerror}", 400) from None
        self._reply(writer)
        return False

    async def op_exec(self, req: dict, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> bool:
        """Start a process in the running container; without `detach`, the
        connection carries its stdio and ends with a CONTROL frame
        {"exit": status}."""
        container = self._running()
        if self.state["Paused"]:
            raise ContainerError(f"container {self.spec['id']} is paused, unpause the "
                                 "container before exec", 409)
        exec_id = str(req["id"])
        session = Session(bool(req.get("tty")), bool(req.get("stdin")),
                          tuple(req["console_size"]) if req.get("console_size") else None)
        ex = Exec(session)
        exited = ex.exit = self.loop.create_future()

        def on_exit(status: int) -> None:
            self.loop.call_soon_threadsafe(exited.set_result, status)

        try:
            pid = await asyncio.wrap_future(container.exec(
                list(req["argv"]), list(req.get("env") or []), req.get("workdir") or None,
                session.child.stdio, session.tty, on_exit, user=req.get("user") or ""))
        except ContainerError:
            session.abandon()
            raise
        session.child.close()
        with contextlib.suppress(ProcessLookupError):
            ex.pidfd = os.pidfd_open(pid)
        self.execs[exec_id] = ex
        detached = bool(req.get("detach"))
        if not detached:
            client = Client(writer, {s for s, want in ((shimproto.STDOUT, req.get("stdout")),
                                                       (shimproto.STDERR, req.get("stderr")))
                                     if want})
            session.clients.add(client)
        session.begin(self.loop)
        self._reply(writer, pid=pid)
        if not detached and req.get("stdin"):
            self.loop.create_task(self._feed(reader, session))
        status = await exited
        await session.drain(EXEC_DRAIN_GRACE)
        session.close_stdin()
        self.execs.pop(exec_id, None)
        if ex.pidfd >= 0:
            os.close(ex.pidfd)
        self.tell_watchers({"event": "exec_exit", "exec": exec_id, "exitCode": status})
        if not detached:
            client.send_control({"exit": status})
        return False

    async def op_kill_exec(self, req: dict, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> bool:
        """SIGKILL an exec's process (a health check past its timeout)."""
        ex = self.execs.get(str(req.get("exec")))
        if ex is not None and ex.pidfd >= 0 and ex.exit is not None and not ex.exit.done():
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(ex.pidfd, signal.SIGKILL)
        self._reply(writer)
        return False

    async def _feed(self, reader: asyncio.StreamReader, session: Session) -> None:
        try:
            while data := await reader.read(65536):
                session.write_stdin(data)
        except ConnectionError:
            pass
        session.close_stdin()

    async def op_syscalls(self, req: dict, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> bool:
        """The running container's statistics and ledger; null between runs
        (the daemon then reads the saved snapshot)."""
        container = self.container
        data = None
        if container is not None:
            try:
                data = await asyncio.wait_for(asyncio.wrap_future(container.syscalls()),
                                              SNAPSHOT_TIMEOUT)
            except TimeoutError:
                raise ContainerError("the container's supervisor did not answer for its "
                                     "statistics; see the shim's log", 500) from None
        self._reply(writer, syscalls=data)
        return False

    def _running(self) -> Container:
        if self.container is None or not self.state["Running"] or self.state["Restarting"]:
            raise ContainerError(f"container {self.spec['id']} is not running", 409)
        return self.container

    # -- the main (tracer) thread ---------------------------------------------

    def supervise(self) -> None:
        """Run the entrypoint, and again as the restart policy says."""
        try:
            answer: Future[int] | None = self.start_request.result(START_TIMEOUT)
        except TimeoutError:
            return   # the daemon that started us went away before asking for the start
        delay = BACKOFF_START
        while True:
            began = time.monotonic()
            status = self._run_once(answer)
            answer = None
            if status is None or not self._should_restart(status):
                break
            delay = BACKOFF_START if time.monotonic() - began >= BACKOFF_RESET else delay
            self.on_loop(lambda: self.set_state("restarting", Restarting=True, Running=True,
                                                Status="restarting"))
            if self.stopping.wait(delay):
                self.on_loop(lambda: self.set_state(None, Restarting=False, Running=False,
                                                    Status="exited"))
                break
            delay = min(delay * 2, BACKOFF_MAX)
            self.on_loop(lambda: self.set_state(None, RestartCount=self.state["RestartCount"] + 1))
        asyncio.run_coroutine_threadsafe(self._finish(), self.loop).result(10)

    def _run_once(self, answer: Future[int] | None) -> int | None:
        """One run of the entrypoint; its exit status, None if it could not start."""
        with ExitStack() as files:
            return self._run(answer, files)

    def _unsupported(self, entry: LedgerEntry) -> None:
        """A call the ledger sees for the first time (tracer thread): a
        docker event."""
        self.loop.call_soon_threadsafe(self.tell_watchers, {
            "event": "unsupported", "syscall": entry.name, "errno": entry.errno,
            "reason": entry.reason})

    def _run(self, answer: Future[int] | None, files: ExitStack) -> int | None:
        session = Session(self.spec["tty"], self.spec["open_stdin"],
                          tuple(self.spec["console_size"]) if self.spec.get("console_size")
                          else None)
        try:
            try:
                container = Container(sandbox_config(self.spec), engine=self.research.engine,
                                      research=research(self.research, self.dir, files))
                container.on_unsupported(self._unsupported)
                pid = container.start(stdio=session.child.stdio, tty=session.tty)
            except ValueError as exc:     # a user, group or policy the runtime rejects
                raise ContainerError(str(exc)) from None
        except ContainerError as exc:
            session.abandon()
            # As in Docker, a container whose process could not start stays "created".
            self.on_loop(self.set_state, None, dict(
                Status="created" if answer else "exited", Running=False, Restarting=False,
                Pid=0, ExitCode=exc.status, Error=str(exc), FinishedAt=timefmt.iso()))
            if answer is not None:
                answer.set_exception(exc)
            return None
        session.child.close()
        self.container = container

        def started() -> None:
            session.begin(self.loop, self.log)
            session.clients |= self.attached
            if self.early_stdin:
                session.write_stdin(bytes(self.early_stdin))
                self.early_stdin.clear()
            if self.stdin_once_done:
                session.close_stdin()
            self.session = session
            self.exited.clear()
            self.set_state("start", Status="running", ManuallyStopped=False,
                           Running=True, Paused=False, Restarting=False, Pid=pid,
                           ExitCode=0, Error="", StartedAt=timefmt.iso())

        self.on_loop(started)
        if answer is not None:
            # `start` answers once the entrypoint's program runs, so what it
            # writes straight away is there for the client's next request
            container.on_running(lambda: answer.set_result(pid))
        status = container.run()
        if answer is not None and not answer.done():   # it ended before its execve
            answer.set_result(pid)
        # before "die" reaches the daemon, so inspect after `docker run` has it
        syscall_view.save(self.dir, container.syscalls().result())
        drained: Future[None] = Future()

        def wait_drained() -> None:
            async def drain() -> None:
                await session.drain(EXEC_DRAIN_GRACE)
                drained.set_result(None)
            self.loop.create_task(drain())

        self.on_loop(wait_drained)
        drained.result()

        def record_exit() -> None:
            session.close_stdin()
            for client in session.clients:
                client.close()
            self.session = None
            self.exited.set()
            # One to be restarted is restarting from its exit on, as in dockerd
            # (SetRestarting): never "exited" in between, so it is not removed
            # without force meanwhile.
            again = self._should_restart(status)
            self.set_state("die", Status="restarting" if again else "exited", Running=again,
                           Restarting=again, Paused=False, Pid=0, ExitCode=status,
                           FinishedAt=timefmt.iso())

        self.on_loop(record_exit)
        self.container = None
        return status

    def _should_restart(self, status: int) -> bool:
        policy = self.spec.get("restart") or {}
        name = policy.get("Name") or "no"
        if self.stopping.is_set() or name == "no":
            return False
        if name == "on-failure":
            limit = int(policy.get("MaximumRetryCount") or 0)
            return status != 0 and (limit == 0 or self.state["RestartCount"] < limit)
        return name in ("always", "unless-stopped")

    async def _finish(self) -> None:
        """Flush and close every connection before the process exits."""
        if self.log is not None:
            self.log.close()
        writers = [*self.watchers, *(c.writer for c in self.attached)]
        for w in writers:
            w.close()
        for w in writers:
            try:
                await asyncio.wait_for(w.wait_closed(), 2)
            except (TimeoutError, ConnectionError):
                pass


def main(argv: list[str]) -> int:
    cdir = Path(argv[0])
    shim = Shim(cdir)
    path = cdir / SOCKET
    if path.exists():
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    # Detach: the daemon reaps the parent at once, the shim is reparented
    # (to init or a subreaper) and no longer depends on the daemon.
    if os.fork():
        os._exit(0)
    shim.state["ShimPid"] = os.getpid()
    atomic_write_json(cdir / STATE, shim.state)
    # Before any thread: the supervisor, the container and its execs live
    # in this network namespace (the daemon plumbs it once we are ready).
    netns.enter(shim.spec.get("netns") or "")
    if shim.spec.get("netns") == netns.NEW:
        netns.container_defaults()
    # Before any other thread starts, so the native loop's signalfd gets
    # every SIGCHLD (threads inherit the mask; the container's processes
    # start with an empty one).
    block_sigchld()
    shim.serve(listener)
    os.write(1, f"ready {os.getpid()}\n".encode())
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    try:
        shim.supervise()
    finally:
        path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    sys.exit(main(sys.argv[1:]))
