"""/_ping, /version, /info, /system/df, /events, and the 501s of what
brandpy does not implement (BuildKit sessions, checkpoints; swarm mode's
answers are in swarm_routes, plugins' in plugin_routes)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from brandpy.engine import system
from brandpy.engine.errors import InvalidParameter
from brandpy.engine.events import FILTERS, matches
from brandpy.engine.filters import Filters
from brandpy.engine.timefmt import parse_since

from .http import API_VERSION, MIN_API_VERSION, JsonLines, reply
from .router import Router, engine, not_implemented

PING_HEADERS = {"Api-Version": API_VERSION, "Docker-Experimental": "false", "Ostype": "linux",
                "Builder-Version": "1", "Swarm": "inactive", "Cache-Control": "no-cache, no-store, "
                "must-revalidate", "Pragma": "no-cache"}


async def ping(request: web.Request) -> web.Response:
    body = b"" if request.method == "HEAD" else b"OK"
    return web.Response(body=body, content_type="text/plain", headers=PING_HEADERS)


async def version(request: web.Request) -> web.Response:
    return reply(system.version(API_VERSION, MIN_API_VERSION))


async def info(request: web.Request) -> web.Response:
    return reply(await asyncio.to_thread(system.info, engine(request)))


async def df(request: web.Request) -> web.Response:
    types = request.query.getall("type", [])
    return reply(await asyncio.to_thread(system.disk_usage, engine(request), types))


async def events(request: web.Request) -> web.StreamResponse:
    """Past events from `since`, then live ones until `until` (or the
    client goes away)."""
    f = Filters(request.query.get("filters"), FILTERS)
    try:
        since = parse_since(request.query.get("since"))
        until = parse_since(request.query.get("until"))
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None
    bus = engine(request).events
    queue = bus.subscribe()
    try:
        async with JsonLines(request) as out:
            for ev in list(bus.history):
                if since is not None and ev["timeNano"] >= since and (
                        until is None or ev["timeNano"] <= until) and matches(ev, f):
                    await out.send(ev)
            while until is None or time.time_ns() < until:
                timeout = None if until is None else (until - time.time_ns()) / 1e9
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    break
                if ev["timeNano"] < (since or 0):
                    continue
                if matches(ev, f):
                    await out.send(ev)
    except ConnectionError:
        pass
    finally:
        bus.unsubscribe(queue)
    return out.resp


def register(r: Router) -> None:
    r.add("GET", "/_ping", ping)
    r.add("HEAD", "/_ping", ping)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)
    r.add("GET", "/system/df", df)
    r.add("GET", "/events", events)
    for method, path in (("POST", "/session"),
                         ("GET", "/containers/{id}/attach/ws"),
                         ("GET", "/containers/{id}/checkpoints"),
                         ("POST", "/containers/{id}/checkpoints"),
                         ("DELETE", "/containers/{id}/checkpoints/{checkpoint}")):
        r.add(method, path, not_implemented("brandpy does not implement this endpoint (see "
                                            "README, 'Pointing docker at it')"))
