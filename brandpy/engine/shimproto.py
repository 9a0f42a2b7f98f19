"""The protocol between the daemon and a container's shim, spoken over the
unix socket in the container's directory.

Each connection starts with one JSON request line from the daemon and one
JSON reply line from the shim (`{"ok": true, ...}` or `{"error": message,
"status": code}`). Streaming requests (attach, exec, watch) then keep the
connection: output comes from the shim as frames with Docker's 8-byte
stdcopy header (stream 1 stdout, 2 stderr) plus CONTROL frames carrying a
JSON object (an exec's exit status); stdin goes to the shim as raw bytes,
and the daemon half-closes the connection for stdin EOF. `watch` sends one
JSON line per state change instead of frames.
"""

from __future__ import annotations

import asyncio
import json
import struct

STDIN, STDOUT, STDERR = 0, 1, 2
CONTROL = 16     # not a Docker stream: never forwarded to clients
HEADER = struct.Struct(">BxxxL")
MAX_LINE = 1 << 20


def frame(stream: int, data: bytes) -> bytes:
    return HEADER.pack(stream, len(data)) + data


def control(obj: dict) -> bytes:
    return frame(CONTROL, json.dumps(obj).encode())


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next frame, or None at the end of the stream."""
    try:
        head = await reader.readexactly(HEADER.size)
        stream, size = HEADER.unpack(head)
        return stream, await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None


def dumps(obj: dict) -> bytes:
    return json.dumps(obj).encode() + b"\n"


async def read_json(reader: asyncio.StreamReader) -> dict | None:
    line = await reader.readline()
    if not line:
        return None
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("shim protocol: expected a JSON object")
    return obj
