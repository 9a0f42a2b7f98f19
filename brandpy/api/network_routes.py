"""/networks: bridge, host, none and user networks (records, endpoints and
their addresses; brandpy/engine/netsetup.py makes them real)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from brandpy.engine.errors import NotFound
from brandpy.engine.filters import Filters
from brandpy.engine.timefmt import parse_since, to_ns
from brandpy.engine.validate import NETWORK_CONNECT, NETWORK_CREATE, NETWORK_DISCONNECT

from .http import body_json, reply
from .router import Router, engine

if TYPE_CHECKING:
    from brandpy.engine.engine import Engine


def _view(eng: Engine, net: dict[str, Any]) -> dict[str, Any]:
    members = {}
    for rec in eng.containers:
        ep = rec.networks.get(net["Name"])
        if ep is not None and rec.running:
            addr = f"{ep['IPAddress']}/{ep['IPPrefixLen']}" if ep.get("IPAddress") else ""
            addr6 = f"{ep['GlobalIPv6Address']}/{ep['GlobalIPv6PrefixLen']}" \
                if ep.get("GlobalIPv6Address") else ""
            members[rec.id] = {"Name": rec.name, "EndpointID": ep["EndpointID"],
                               "MacAddress": ep.get("MacAddress") or "", "IPv4Address": addr,
                               "IPv6Address": addr6}
    return {**net, "Containers": members}


async def list_(request: web.Request) -> web.Response:
    eng = engine(request)
    f = Filters(request.query.get("filters"),
                ("dangling", "driver", "id", "label", "name", "scope", "type"))
    return reply([_view(eng, n) for n in eng.networks.list(f)])


async def inspect(request: web.Request) -> web.Response:
    eng = engine(request)
    net = eng.networks.get(request.match_info["id"])
    if request.query.get("scope", "local") not in ("", "local"):
        raise NotFound(f"network {request.match_info['id']} not found")
    return reply(_view(eng, net))


async def create(request: web.Request) -> web.Response:
    eng = engine(request)
    net, warning = await eng.netsetup.create_network(
        await body_json(request, NETWORK_CREATE, "network.CreateRequest"))
    eng.events.emit("network", "create", net["Id"], {"name": net["Name"], "type": "bridge"})
    return reply({"Id": net["Id"], "Warning": warning}, status=201)


async def remove(request: web.Request) -> web.Response:
    eng = engine(request)
    net = eng.networks.get(request.match_info["id"])
    members = [r.id for r in eng.containers if net["Name"] in r.networks]
    await eng.netsetup.remove_network(net, members)
    eng.events.emit("network", "destroy", net["Id"], {"name": net["Name"], "type": "bridge"})
    return web.Response(status=204)


async def connect(request: web.Request) -> web.Response:
    eng = engine(request)
    body = await body_json(request, NETWORK_CONNECT, "network.ConnectOptions")
    net = eng.networks.get(request.match_info["id"])
    rec = eng.containers.get(body.get("Container") or "")
    await eng.connect(rec, net, body.get("EndpointConfig") or {})
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    eng = engine(request)
    body = await body_json(request, NETWORK_DISCONNECT, "network.DisconnectOptions")
    net = eng.networks.get(request.match_info["id"])
    rec = eng.containers.get(body.get("Container") or "")
    await eng.disconnect(rec, net)
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    eng = engine(request)
    f = Filters(request.query.get("filters"), ("until", "label"))
    until = parse_since(f.get("until")[0]) if "until" in f else None
    removed = []
    for net in list(eng.networks.nets.values()):
        if net["Name"] in ("bridge", "host", "none") or not f.match_labels(net["Labels"]):
            continue
        if until is not None and to_ns(net["Created"]) > until:
            continue
        if any(net["Name"] in r.networks for r in eng.containers):
            continue
        await eng.netsetup.remove_network(net, [])
        eng.events.emit("network", "destroy", net["Id"], {"name": net["Name"], "type": "bridge"})
        removed.append(net["Name"])
    return reply({"NetworksDeleted": removed or None})


def register(r: Router) -> None:
    r.add("GET", "/networks", list_)
    r.add("POST", "/networks/create", create)
    r.add("POST", "/networks/prune", prune)
    r.add("GET", "/networks/{id}", inspect)
    r.add("DELETE", "/networks/{id}", remove)
    r.add("POST", "/networks/{id}/connect", connect)
    r.add("POST", "/networks/{id}/disconnect", disconnect)

