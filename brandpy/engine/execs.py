"""`docker exec`: exec instances are created in the daemon and started in
the container's shim, which reports their exit status."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from brandpy.images.runconfig import strslice

from . import shimproto
from .attach import parse_detach_keys, proxy
from .errors import Conflict, InvalidParameter, NotFound
from .records import Record
from .shimclient import ProcessFailed

if TYPE_CHECKING:     # the engine imports this module
    from .engine import Engine



@dataclass(eq=False)
class ExecRecord:
    id: str
    container: Record
    argv: list[str]
    env: list[str]
    workdir: str
    user: str
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    detach_keys: str
    privileged: bool
    console_size: list[int] | None
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def inspect(self) -> dict:
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
                "ProcessConfig": {"tty": self.tty, "entrypoint": self.argv[0],
                                  "arguments": self.argv[1:], "privileged": self.privileged,
                                  "user": self.user},
                "OpenStdin": self.stdin, "OpenStderr": self.stderr, "OpenStdout": self.stdout,
                "CanRemove": False, "ContainerID": self.container.id,
                "DetachKeys": self.detach_keys, "Pid": self.pid}

    def finish(self, code: int) -> bool:
        """Record the exit status; False if it was already known."""
        if self.exit_code is not None and not self.running:
            return False
        self.exit_code, self.running = code, False
        self.done.set()
        return True


def create(engine: Engine, rec: Record, body: dict) -> ExecRecord:
    """body: an ExecConfig as validate.check() decodes it."""
    argv = strslice(body.get("Cmd")) or []
    if not argv or not argv[0]:
        raise InvalidParameter("No exec command specified")
    if not rec.running:
        raise Conflict(f"container {rec.id} is not running")
    if rec.state.get("Paused"):
        raise Conflict(f"Container {rec.id} is paused, unpause the container before exec")
    user = body.get("User") or ""
    if body.get("DetachKeys"):
        parse_detach_keys(body["DetachKeys"])
    ex = ExecRecord(secrets.token_hex(32), rec, argv, list(body.get("Env") or []),
                    body.get("WorkingDir") or "", user, bool(body.get("Tty")),
                    bool(body.get("AttachStdin")), bool(body.get("AttachStdout")),
                    bool(body.get("AttachStderr")), body.get("DetachKeys") or "",
                    bool(body.get("Privileged")), body.get("ConsoleSize"))
    engine.execs[ex.id] = ex
    engine.container_event(rec, "exec_create: " + " ".join(argv), execID=ex.id)
    return ex


def get(engine: Engine, exec_id: str) -> ExecRecord:
    ex = engine.execs.get(exec_id)
    if ex is None:
        raise NotFound(f"No such exec instance: {exec_id}")
    return ex


def check_start(ex: ExecRecord, body: dict) -> dict:
    """Errors a start must give before the connection is hijacked."""
    if ex.started:
        raise Conflict(f"Error: Exec command {ex.id} is already running" if ex.running
                       else f"Error: Exec command {ex.id} has already run")
    rec = ex.container
    if not rec.running or rec.shim is None:
        raise Conflict(f"container {rec.id} is not running")
    if rec.state.get("Paused"):
        raise Conflict(f"Container {rec.id} is paused, unpause the container before exec")
    return body


async def start(engine: Engine, ex: ExecRecord, body: dict,
                client: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    """Run it; with a client, stream its stdio and return when it ended.
    A failure to start is written to the stream, as Docker does, and its
    status (126, 127) becomes the exec's exit code."""
    rec = ex.container
    ex.started = ex.running = True
    # As dockerd: the process gets a terminal if the exec was created with
    # Tty; start's Tty only says how its output is framed on the stream.
    raw = framed_raw(ex, body)
    detach = bool(body.get("Detach")) or client is None
    if rec.shim is None:
        raise Conflict(f"container {rec.id} is not running")
    try:
        reply, sr, sw = await rec.shim.connect(
            "exec", id=ex.id, argv=ex.argv, env=ex.env, workdir=ex.workdir, user=ex.user,
            tty=ex.tty, stdin=ex.stdin and not detach, stdout=ex.stdout, stderr=ex.stderr, detach=detach,
            console_size=body.get("ConsoleSize") or ex.console_size)
    except ProcessFailed as exc:
        ex.finish(126)      # dockerd's exit status of an exec that could not start
        if client is not None:
            message = f"OCI runtime exec failed: {exc}\r\n".encode()
            client[1].write(message if raw else shimproto.frame(shimproto.STDOUT, message))
        else:
            raise
        return
    ex.pid = int(reply.get("pid") or 0)
    engine.container_event(rec, "exec_start: " + " ".join(ex.argv), execID=ex.id)
    if detach or client is None:
        sw.close()
        return

    def on_control(msg: dict) -> None:
        if "exit" in msg and ex.finish(int(msg["exit"])):
            engine.container_event(rec, "exec_die", execID=ex.id, exitCode=str(msg["exit"]))

    await proxy(sr, sw, client[0], client[1], tty=raw, stdin=ex.stdin,
                detach_keys=parse_detach_keys(ex.detach_keys or None), on_control=on_control)


def framed_raw(ex: ExecRecord, body: dict) -> bool:
    """Whether the start's stream is raw (a terminal's) rather than
    multiplexed: start's Tty, else create's."""
    return ex.tty if body.get("Tty") is None else bool(body["Tty"])


def exec_exited(engine: Engine, exec_id: str, code: int) -> None:
    ex = engine.execs.get(exec_id)
    if ex is not None and ex.finish(code):
        engine.container_event(ex.container, "exec_die", execID=ex.id, exitCode=str(code))


async def resize(ex: ExecRecord, height: int, width: int) -> None:
    rec = ex.container
    if not ex.running or rec.shim is None:
        raise Conflict(f"exec {ex.id} is not running")
    await rec.shim.request("resize", exec=ex.id, h=height, w=width)
