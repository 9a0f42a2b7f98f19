"""HTTP helpers shared by the routes: Docker's error replies, request
parameters and bodies, JSON-lines streams, and hijacked connections."""

from __future__ import annotations

import asyncio
import fcntl
import json
import socket
import struct
import termios
import time
from typing import Any, overload

from aiohttp import web

from brandpy.engine import validate
from brandpy.engine.errors import InvalidParameter

API_VERSION = "1.50"
MIN_API_VERSION = "1.24"
JSON_LIMIT = 16 << 20      # create/update bodies; streamed uploads are not limited
RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
# The reply whose status line has gone out (a response prepared, or a
# connection hijacked): an error after it cannot be answered with another.
STARTED = web.RequestKey("started", web.StreamResponse)
# How long a hijacked stream's first bytes wait for the client to take the
# response head (see _head_taken).
HEAD_TAKEN_WAIT = 1.0


def reply(obj: Any, status: int = 200) -> web.Response:
    """A JSON reply with Docker's exact Content-Type (the CLI only decodes
    error bodies whose type is exactly application/json)."""
    return web.Response(body=json.dumps(obj).encode(), status=status,
                        content_type="application/json")


def error(status: int, message: str) -> web.Response:
    return reply({"message": message}, status)


def docker_headers(resp: web.StreamResponse) -> None:
    """The headers dockerd sends with every reply (the CLI reads
    Api-Version); set while the reply is prepared, before they are sent."""
    resp.headers["Api-Version"] = API_VERSION
    resp.headers["Docker-Experimental"] = "false"
    resp.headers["Ostype"] = "linux"
    resp.headers["Server"] = "brandpy (linux)"


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    """Docker's boolean query values: 1/true/True are true, 0/false/'' false."""
    value = request.query.get(name)
    if value is None:
        return default
    if value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise InvalidParameter(f"invalid boolean value for {name}: {value!r}")


@overload
def qint(request: web.Request, name: str, default: int) -> int: ...
@overload
def qint(request: web.Request, name: str, default: None = None) -> int | None: ...
def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidParameter(f"invalid value for {name}: {value!r} is not an integer") from None


async def body_json(request: web.Request, schema: dict[str, Any], where: str) -> dict[str, Any]:
    """The request's JSON body decoded as dockerd decodes it into the Go
    struct `where` (validate.check: field names case-insensitive, types
    checked); {} when empty. read(), not the payload: an adapter may have
    put a new body there."""
    raw = await request.read()
    if not raw.strip():
        return {}
    ctype = request.headers.get("Content-Type", "")
    if ctype and "json" not in ctype and "text/plain" not in ctype:
        raise InvalidParameter(f"unsupported Content-Type header ({ctype}): must be "
                               "'application/json'")
    try:
        value = validate.loads(raw)
    except ValueError as exc:
        raise InvalidParameter(f"invalid JSON in the request body: {exc}") from None
    return validate.check(value, schema, where)


class JsonLines:
    """A streamed reply of JSON objects, one per line (progress, events).
    An exception leaves the stream open: the error middleware ends it with
    Docker's in-stream error."""

    def __init__(self, request: web.Request, status: int = 200) -> None:
        self.request = request
        self.resp = web.StreamResponse(status=status,
                                       headers={"Content-Type": "application/json"})

    async def __aenter__(self) -> JsonLines:
        await self.resp.prepare(self.request)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            return
        try:
            await self.resp.write_eof()
        except ConnectionError:
            pass

    async def send(self, obj: dict[str, Any]) -> None:
        await self.resp.write(json.dumps(obj).encode() + b"\r\n")


class _Hijacked(asyncio.StreamReaderProtocol):
    """Takes the connection from aiohttp's protocol; tells that protocol
    when the connection is lost so its bookkeeping ends too. Client EOF
    only half-closes (StreamReaderProtocol keeps the transport open), so a
    client can close its stdin and still read the output."""

    def __init__(self, reader: asyncio.StreamReader, original: asyncio.BaseProtocol) -> None:
        super().__init__(reader)
        self._original = original

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._original.connection_lost(exc)


class HijackedResponse(web.StreamResponse):
    """Returned by a handler whose connection was hijacked: aiohttp must
    not write anything more to it."""

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


async def hijack(request: web.Request, content_type: str = RAW_STREAM
                 ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Answer `101 UPGRADED` (or 200 for a client that did not ask to
    upgrade, as Docker does) and return the raw connection's streams."""
    upgrade = (request.headers.get("Upgrade", "").lower() == "tcp"
               and "upgrade" in request.headers.get("Connection", "").lower())
    protocol, transport = request.protocol, request.transport
    if transport is None:
        raise ConnectionResetError("the client closed the connection before the upgrade")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    proto = _Hijacked(reader, protocol)
    transport.set_protocol(proto)
    proto.connection_made(transport)
    tail = getattr(protocol, "_message_tail", b"")
    if tail:
        reader.feed_data(tail)
    if not transport.is_reading():
        transport.resume_reading()
    writer = asyncio.StreamWriter(transport, proto, reader, loop)
    request[STARTED] = HijackedResponse()
    if upgrade:
        head = ("HTTP/1.1 101 UPGRADED\r\nContent-Type: " + content_type
                + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    else:
        head = "HTTP/1.1 200 OK\r\nContent-Type: " + content_type + "\r\n\r\n"
    writer.write(head.encode())
    await _head_taken(writer)
    return reader, writer


async def _head_taken(writer: asyncio.StreamWriter) -> None:
    """Wait (at most HEAD_TAKEN_WAIT) until the client has read the response
    head. docker-py reads the head through a buffered reader and the stream
    from the raw socket: stream bytes that arrived with the head sit in that
    buffer and are lost (attach with logs=1&stream=0 on an exited container
    then reads nothing, on dockerd too). A unix socket's SIOCOUTQ counts the
    bytes its peer has not read yet; over TCP it counts unacknowledged ones,
    which is the closest there is."""
    await writer.drain()
    sock = writer.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6):
        return
    deadline = time.monotonic() + HEAD_TAKEN_WAIT
    while time.monotonic() < deadline:
        fd = sock.fileno()
        if fd < 0 or writer.transport.is_closing():
            return    # the client went away: the stream's first write says so
        try:
            unread = struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0" * 4))[0]
        except OSError:
            return
        if unread == 0:
            return
        await asyncio.sleep(0.001)


async def end_hijack(request: web.Request, writer: asyncio.StreamWriter) -> HijackedResponse:
    try:
        if writer.can_write_eof():
            writer.write_eof()
        await writer.drain()
    except (ConnectionError, RuntimeError):
        pass
    writer.close()
    request.protocol.force_close()
    return HijackedResponse()
