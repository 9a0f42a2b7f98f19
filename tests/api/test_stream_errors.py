"""A failure after a reply's status line has gone out never puts a second
status line into the body: a JSON stream ends with Docker's in-stream
error, any other stream is cut; before it, the failure is a plain status.
Checked on the daemon's own app with handlers that fail on purpose, as
raw bytes off the socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from brandpy.api.http import JsonLines
from brandpy.api.server import make_app
from brandpy.engine.engine import Engine
from brandpy.engine.errors import InvalidParameter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def tar_then_error(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    await resp.prepare(request)
    await resp.write(b"\0" * 512)
    raise InvalidParameter("found after the status line")


async def json_then_error(request: web.Request) -> web.StreamResponse:
    async with JsonLines(request) as out:
        await out.send({"status": "working"})
        raise InvalidParameter("found after the status line")
    return out.resp


async def json_then_bug(request: web.Request) -> web.StreamResponse:
    async with JsonLines(request) as out:
        await out.send({"status": "working"})
        raise KeyError("a bug")
    return out.resp


async def error_first(request: web.Request) -> web.StreamResponse:
    raise InvalidParameter("found before the status line")


def raw_replies(root: Path, handlers: dict[str, Handler]) -> dict[str, bytes]:
    """The raw reply to each path, and to /_ping: the bytes until the
    server ends it."""
    async def main() -> dict[str, bytes]:
        app = make_app(Engine(root))
        for path, handler in handlers.items():
            app.router.add_get(path, handler)
        out = {}
        async with TestServer(app, host="127.0.0.1") as server:
            for path in [*handlers, "/_ping"]:
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                             .encode())
                out[path] = await asyncio.wait_for(reader.read(), 30)
                writer.close()
        return out
    return asyncio.run(main())


def chunks(raw: bytes) -> bytes:
    """The body of a chunked reply, as far as it goes."""
    body = raw.split(b"\r\n\r\n", 1)[1]
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2:]
    return out


def test_errors_after_the_status_line(tmp_path: Path, capsys) -> None:   # noqa: ANN001
    replies = raw_replies(tmp_path / "root", {"/tar": tar_then_error, "/json": json_then_error,
                                              "/bug": json_then_bug, "/first": error_first})
    for path, raw in replies.items():     # dockerd's headers on every reply, streamed or not
        assert raw.count(b"HTTP/1.1 ") == 1, (path, raw[:2000])
        assert b"\r\nApi-Version: 1.50\r\n" in raw.split(b"\r\n\r\n", 1)[0], path

    tar = replies["/tar"]
    assert tar.startswith(b"HTTP/1.1 200") and not tar.endswith(b"0\r\n\r\n")  # cut, not ended
    for path, message in (("/json", "found after the status line"),
                          ("/bug", "internal error in brandpy: KeyError: 'a bug'")):
        raw = replies[path]
        assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"0\r\n\r\n"), path
        lines = [json.loads(line) for line in chunks(raw).splitlines()]
        assert lines == [{"status": "working"},
                         {"errorDetail": {"message": message}, "error": message}], path
    first = replies["/first"]
    assert first.startswith(b"HTTP/1.1 400")
    assert json.loads(first.split(b"\r\n\r\n", 1)[1]) == {"message": "found before the status line"}
    assert "KeyError: 'a bug'" in capsys.readouterr().err     # the bug is logged
