"""/plugins: brandpy runs no managed plugins, so the list is empty and
every plugin named is not found, as on a dockerd with none installed;
installing one (pull, create, the privileges a pull asks for) is a 501."""

from __future__ import annotations

from aiohttp import web

from brandpy.engine.errors import NotFound
from brandpy.engine.filters import Filters

from .http import reply
from .router import Router, not_implemented


async def list_(request: web.Request) -> web.Response:
    f = Filters(request.query.get("filters"), ("capability", "enabled"))
    f.bool("enabled")
    return reply([])


async def missing(request: web.Request) -> web.Response:
    raise NotFound(f'plugin "{request.match_info["name"]}" not found')


def register(r: Router) -> None:
    r.add("GET", "/plugins", list_)
    for method, path in (("GET", "/plugins/privileges"), ("POST", "/plugins/pull"),
                         ("POST", "/plugins/create")):
        r.add(method, path, not_implemented("brandpy does not install managed plugins"))
    for method, action in (("GET", "/json"), ("DELETE", ""), ("POST", "/enable"),
                           ("POST", "/disable"), ("POST", "/upgrade"), ("POST", "/push"),
                           ("POST", "/set")):
        r.add(method, "/plugins/{name:.+}" + action, missing)
