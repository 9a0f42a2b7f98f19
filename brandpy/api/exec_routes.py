"""/containers/{id}/exec and /exec/{id}/...: docker exec."""

from __future__ import annotations

from aiohttp import web

from brandpy.engine import execs, validate

from .container_routes import container
from .http import MULTIPLEXED, RAW_STREAM, body_json, end_hijack, hijack, qint, reply
from .router import Router, engine


async def create(request: web.Request) -> web.Response:
    body = await body_json(request, validate.EXEC_CONFIG, "ExecConfig")
    ex = execs.create(engine(request), container(request), body)
    return reply({"Id": ex.id}, status=201)


async def start(request: web.Request) -> web.StreamResponse:
    eng = engine(request)
    ex = execs.get(eng, request.match_info["id"])
    body = execs.check_start(ex, await body_json(request, validate.EXEC_START, "ExecStartCheck"))
    if body.get("Detach"):
        await execs.start(eng, ex, body, None)
        return web.Response(status=200)
    raw = execs.framed_raw(ex, body)
    reader, writer = await hijack(request, RAW_STREAM if raw else MULTIPLEXED)
    try:
        await execs.start(eng, ex, body, (reader, writer))
    except ConnectionError:
        pass
    return await end_hijack(request, writer)


async def inspect(request: web.Request) -> web.Response:
    return reply(execs.get(engine(request), request.match_info["id"]).inspect())


async def resize(request: web.Request) -> web.Response:
    ex = execs.get(engine(request), request.match_info["id"])
    await execs.resize(ex, qint(request, "h", 0), qint(request, "w", 0))
    return web.Response(status=200)


def register(r: Router) -> None:
    r.add("POST", "/containers/{id}/exec", create)
    r.add("POST", "/exec/{id}/start", start)
    r.add("GET", "/exec/{id}/json", inspect)
    r.add("POST", "/exec/{id}/resize", resize)
