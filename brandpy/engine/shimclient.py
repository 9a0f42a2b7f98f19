"""The daemon's side of a shim: starting one, and talking to it over its
socket (see shimproto for the protocol)."""

from __future__ import annotations

import asyncio
import os
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


class ShimClient:
    def __init__(self, cdir: Path) -> None:
        self.dir = cdir
        self.path = str(cdir / SOCKET)

    async def spawn(self) -> int:
        """Start a shim for the container in self.dir; its pid once it serves."""
        log = open(self.dir / "shim.log", "ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "brandpy.engine.shim", str(self.dir),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log,
                start_new_session=True, cwd="/")
        finally:
            log.close()
        assert proc.stdout is not None   # a PIPE
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), SPAWN_TIMEOUT)
        except TimeoutError:
            line = b""
        await proc.wait()
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
