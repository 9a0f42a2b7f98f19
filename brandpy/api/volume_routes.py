"""/volumes: named and anonymous volumes (local driver)."""

from __future__ import annotations

from aiohttp import web

from brandpy.engine.errors import InvalidParameter
from brandpy.engine.filters import Filters
from brandpy.engine.validate import VOLUME_CREATE

from .http import body_json, qbool, reply
from .router import Router, engine


async def list_(request: web.Request) -> web.Response:
    eng = engine(request)
    f = Filters(request.query.get("filters"), ("dangling", "driver", "label", "name"))
    return reply({"Volumes": eng.volumes.list(f, eng.users_of_volume),
                              "Warnings": []})


async def create(request: web.Request) -> web.Response:
    eng = engine(request)
    body = await body_json(request, VOLUME_CREATE, "volume.CreateOptions")
    vol, created = eng.volumes.create(body.get("Name") or "", body.get("Driver") or "local",
                                      body.get("Labels"), body.get("DriverOpts"))
    if created:
        eng.events.emit("volume", "create", vol["Name"], {"driver": "local"})
    return reply(vol, status=201)


async def inspect(request: web.Request) -> web.Response:
    return reply(engine(request).volumes.get(request.match_info["name"]))


async def remove(request: web.Request) -> web.Response:
    eng = engine(request)
    name = request.match_info["name"]
    existed = eng.volumes.exists(name)
    eng.volumes.remove(name, qbool(request, "force"), eng.users_of_volume(name))
    if existed:
        eng.events.emit("volume", "destroy", name, {"driver": "local"})
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    eng = engine(request)
    f = Filters(request.query.get("filters"), ("label", "all"))
    removed, space = eng.volumes.prune(f, eng.users_of_volume)
    for name in removed:
        eng.events.emit("volume", "destroy", name, {"driver": "local"})
    eng.events.emit("volume", "prune", "", {"reclaimed": str(space)})
    return reply({"VolumesDeleted": removed or None, "SpaceReclaimed": space})


async def update(request: web.Request) -> web.Response:
    raise InvalidParameter("volume update is for cluster volumes, which brandpy does not have")


def register(r: Router) -> None:
    r.add("GET", "/volumes", list_)
    r.add("POST", "/volumes/create", create)
    r.add("POST", "/volumes/prune", prune)
    r.add("GET", "/volumes/{name}", inspect)
    r.add("PUT", "/volumes/{name}", update)
    r.add("DELETE", "/volumes/{name}", remove)
