"""The daemon's half of attach and exec streams: it proxies between the
client's hijacked connection and the shim, unwraps frames for TTYs, and
watches the client's stdin for the detach keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from . import shimproto
from .errors import InvalidParameter

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text: str | None) -> bytes:
    """Docker's format: comma-separated `ctrl-<x>` or single characters."""
    keys = []
    for key in (text or DEFAULT_DETACH_KEYS).split(","):
        k = key.strip().lower()
        if len(k) == 6 and k.startswith("ctrl-") and ("a" <= k[5] <= "z" or k[5] in _CTRL):
            keys.append(ord(k[5]) - ord("a") + 1 if "a" <= k[5] <= "z" else _CTRL[k[5]])
        elif len(key) == 1:
            keys.append(ord(key))
        else:
            raise InvalidParameter(f"Invalid detach keys ({text}) provided: use a comma-"
                                   "separated list of ctrl-<value> or single characters")
    return bytes(keys)


class EscapeDetector:
    """Holds back bytes that may start the detach sequence; passes the
    rest through."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for b in data:
            if not self.keys:
                out.append(b)
                continue
            if b == self.keys[len(self.held)]:
                self.held += bytes([b])
                if len(self.held) == len(self.keys):
                    self.held = b""
                    return bytes(out), True
            else:
                out += self.held
                self.held = b""
                if b == self.keys[0]:
                    self.held = bytes([b])
                else:
                    out.append(b)
        return bytes(out), False


async def proxy(shim_reader: asyncio.StreamReader, shim_writer: asyncio.StreamWriter,
                client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, *,
                tty: bool, stdin: bool, detach_keys: bytes,
                on_control: Callable[[dict], None] | None = None) -> str:
    """Copy until the process's output ends ("ended"), the client detaches
    ("detached") or goes away ("gone")."""

    async def output() -> str:
        while (fr := await shimproto.read_frame(shim_reader)) is not None:
            stream, data = fr
            if stream == shimproto.CONTROL:
                if on_control is not None:
                    on_control(json.loads(data))
                continue
            client_writer.write(data if tty else shimproto.frame(stream, data))
            await client_writer.drain()
        return "ended"

    async def input() -> str:
        escape = EscapeDetector(detach_keys)
        while data := await client_reader.read(65536):
            data, detached = escape.feed(data)
            if data:
                shim_writer.write(data)
                await shim_writer.drain()
            if detached:
                return "detached"
        if shim_writer.can_write_eof():
            shim_writer.write_eof()     # stdin EOF; output goes on
        return "eof"

    out_task = asyncio.ensure_future(output())
    tasks = {out_task}
    in_task = asyncio.ensure_future(input()) if stdin else None
    if in_task is not None:
        tasks.add(in_task)
    result = "gone"
    try:
        while tasks:
            done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if out_task in done:
                result = out_task.result()
                break
            if in_task in done and in_task.result() == "detached":
                result = "detached"
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        result = "gone"
    finally:
        for t in (out_task, in_task):
            if t is None:
                continue
            if not t.done():
                t.cancel()
            elif not t.cancelled():
                t.exception()   # both sides may fail at once (the client reset): seen, not logged
        shim_writer.close()
    return result
