"""The daemon's side of a shim: starting one, and talking to it over its
socket (see shimproto for the protocol)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

from . import shimproto
from .errors import EngineError
from .shim import SOCKET

SPAWN_TIMEOUT = 30.0


class ShimGone(EngineError):
    """The shim's socket does not answer: it exited or was killed."""


class ProcessFailed(EngineError):
    """The runtime could not start a process (the entrypoint or an exec):
    exit_code is what docker reports for it (125, 126 not executable, 127
    not found); the API status is 400 for 126/127 as in Docker."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message, 400 if exit_code in (126, 127) else 500)
        self.exit_code = exit_code


class ShimForker:
    """The daemon's shim zygote (shimzygote.py), started with the daemon:
    shims are forked from it instead of started as new Pythons. Started
    again if it died; the engine closes it at shutdown (it then exits)."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            return
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "brandpy.engine.shimzygote", str(theirs.fileno()),
                pass_fds=[theirs.fileno()], stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, start_new_session=True, cwd="/")
        finally:
            theirs.close()
        self.sock = ours

    async def fork(self, cdir: Path, stdio: tuple[int, int, int]) -> None:
        """Ask for a shim for cdir with these fds as its stdin, stdout, stderr."""
        for attempt in range(2):
            await self.start()
            assert self.sock is not None
            try:
                socket.send_fds(self.sock, [os.fsencode(cdir)], list(stdio))
                return
            except OSError:
                if attempt:
                    raise
                self.close()      # it died meanwhile: a new one

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.proc = None


class ShimClient:
    def __init__(self, cdir: Path) -> None:
        self.dir = cdir
        self.path = str(cdir / SOCKET)

    async def spawn(self, forker: ShimForker) -> int:
        """Start a shim for the container in self.dir; its pid once it serves."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        reader = asyncio.StreamReader()
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb", 0))
        try:
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            try:
                with open(self.dir / "shim.log", "ab") as log:
                    await forker.fork(self.dir, (null, write_end, log.fileno()))
            finally:
                os.close(null)
                os.close(write_end)
            try:
                line = await asyncio.wait_for(reader.readline(), SPAWN_TIMEOUT)
            except TimeoutError:
                line = b""
        finally:
            transport.close()
        if not line.startswith(b"ready "):
            raise EngineError("the container's shim did not start: "
                              + (self._log_tail().strip() or f"see {self.dir}/shim.log"))
        return int(line.split()[1])

    def _log_tail(self) -> str:
        try:
            return (self.dir / "shim.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    async def connect(self, op: str, **fields: Any) -> tuple[dict, asyncio.StreamReader,
                                                             asyncio.StreamWriter]:
        """Send a request; the reply and the open connection. Raises
        ShimGone when nothing listens, EngineError for an error reply."""
        try:
            reader, writer = await asyncio.open_unix_connection(self.path,
                                                                limit=shimproto.MAX_LINE)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ShimGone(f"the container's shim is gone ({exc.strerror})") from None
        try:
            writer.write(shimproto.dumps({"op": op, **fields}))
            reply = await shimproto.read_json(reader)
        except (ConnectionError, ValueError) as exc:
            writer.close()
            raise ShimGone(f"the container's shim went away ({exc})") from None
        if reply is None:
            writer.close()
            raise ShimGone("the container's shim closed the connection")
        if "error" in reply:
            writer.close()
            status = int(reply.get("status") or 500)
            if status < 400:    # the runtime's ContainerError: an exit status
                raise ProcessFailed(reply["error"], status)
            raise EngineError(reply["error"], status)
        return reply, reader, writer

    async def request(self, op: str, **fields: Any) -> dict:
        reply, _, writer = await self.connect(op, **fields)
        writer.close()
        return reply


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
