"""/plugins: brandpy runs no managed plugins, so the list is empty and
every plugin named is not found, as on a dockerd with none installed;
installing one (pull, create, the privileges a pull asks for) is a 501."""

from __future__ import annotations

from aiohttp import web

from brandpy.engine.errors import NotFound, NotImplementedHere
from brandpy.engine.filters import Filters

from .http import reply
from .router import Router


async def list_(request: web.Request) -> web.Response:
    f = Filters(request.query.get("filters"), ("capability", "enabled"))
    f.bool("enabled")
    return reply([])


async def missing(request: web.Request) -> web.Response:
    raise NotFound(f'plugin "{request.match_info["name"]}" not found')


async def not_implemented(request: web.Request) -> web.Response:
    raise NotImplementedHere(f"{request.method} {request.path}: brandpy does not install "
                             "managed plugins")


def register(r: Router) -> None:
    r.add("GET", "/plugins", list_)
    for method, path in (("GET", "/plugins/privileges"), ("POST", "/plugins/pull"),
                         ("POST", "/plugins/create")):
        r.add(method, path, not_implemented)
    for method, action in (("GET", "/json"), ("DELETE", ""), ("POST", "/enable"),
                           ("POST", "/disable"), ("POST", "/upgrade"), ("POST", "/push"),
                           ("POST", "/set")):
        r.add(method, "/plugins/{name:.+}" + action, missing)
