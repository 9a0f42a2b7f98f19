"""brandpy's own endpoints, beside Docker's (README, 'Research over the
API'):

    GET /brandpy/containers/{id}/syscalls   statistics and ledger (JSON), as in
                                            docker inspect's Brandpy key
    GET /brandpy/containers/{id}/trace      the latest run's syscall trace:
                                            strace-like text, ?format=json for
                                            JSON lines, ?follow=1 until it ends
"""

from __future__ import annotations

from aiohttp import web

from brandpy.engine import syscall_view, tracefile
from brandpy.engine.errors import InvalidParameter, NotFound
from brandpy.engine.research import TRACE, TRACE_FILE

from .container_routes import container
from .http import qbool, reply
from .router import Router

FORMATS = {"text": "text/plain; charset=utf-8", "json": "application/x-ndjson"}


async def syscalls(request: web.Request) -> web.Response:
    return reply(await syscall_view.view(container(request)))


async def trace(request: web.Request) -> web.StreamResponse:
    rec = container(request)
    fmt = request.query.get("format", "text")
    if fmt not in FORMATS:
        raise InvalidParameter(f"invalid format {fmt!r}: use text or json")
    follow = qbool(request, "follow")
    if not syscall_view.spec_of(rec).trace:
        raise NotFound(f"container {rec.short} is not traced: create it with --label "
                       f"{TRACE}=1 (or {TRACE}=SYSCALL,...)")
    resp = web.StreamResponse(headers={"Content-Type": FORMATS[fmt]})
    await resp.prepare(request)
    try:
        async for chunk in tracefile.chunks(
                rec.dir / TRACE_FILE, text=fmt == "text",
                alive=lambda: follow and rec.running and not rec.removed.is_set()):
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


def register(r: Router) -> None:
    r.add("GET", "/brandpy/containers/{id}/syscalls", syscalls)
    r.add("GET", "/brandpy/containers/{id}/trace", trace)
