"""Swarm mode's endpoints, answered as dockerd answers them while the node
is in no swarm: what the request itself gets wrong (its JSON body, its
version or filters) is a 400, and everything else is 503 "This node is
not part of a swarm", which clients read as "nothing to leave, list or
inspect". Turning swarm mode on (/swarm/init, /swarm/join) is a 501:
brandpy has no swarm mode."""

from __future__ import annotations

from aiohttp import web

from brandpy.engine.errors import InvalidParameter, Unavailable
from brandpy.engine.filters import Filters

from .http import body_json, qbool
from .router import Handler, Router, not_implemented

NO_SWARM = "This node is not part of a swarm"
SHORT = ("secret", "config")     # whose bad version dockerd names without the value


def _off(*, body: str = "", version: str = "", filters: bool = False,
         logs: bool = False) -> Handler:
    """A handler that checks the request as dockerd's router does before it
    asks the (absent) cluster. body: the Go type the JSON body decodes
    into; version: the object kind an update's `version` query names."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if body:
            await body_json(request, {}, body)
        if version:
            raw = request.query.get("version", "")
            if not raw.isdigit() or int(raw) >= 1 << 64:
                raise InvalidParameter(f"invalid {version} version" if version in SHORT else
                                       f"invalid {version} version '{raw}': strconv.ParseUint: "
                                       f"parsing \"{raw}\": invalid syntax")
        if filters:
            Filters(request.query.get("filters"), None)
        if logs and not (qbool(request, "stdout") or qbool(request, "stderr")):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        raise Unavailable(NO_SWARM)

    return handler


def register(r: Router) -> None:
    for path in ("/swarm/init", "/swarm/join"):
        r.add("POST", path, not_implemented("brandpy has no swarm mode; containers, networks "
                                            "and volumes are managed on this node only"))
    r.add("POST", "/swarm/leave", _off())
    r.add("GET", "/swarm", _off())
    r.add("GET", "/swarm/unlockkey", _off())
    r.add("POST", "/swarm/update", _off(body="swarm.Spec", version="swarm"))
    r.add("POST", "/swarm/unlock", _off(body="swarm.UnlockRequest"))
    for kind, spec in (("services", "ServiceSpec"), ("nodes", "NodeSpec"),
                       ("secrets", "SecretSpec"), ("configs", "ConfigSpec")):
        r.add("GET", f"/{kind}", _off(filters=True))
        r.add("GET", f"/{kind}/{{id}}", _off())
        r.add("DELETE", f"/{kind}/{{id}}", _off())
        r.add("POST", f"/{kind}/{{id}}/update", _off(body=f"swarm.{spec}",
                                                      version=kind.rstrip("s")))
        if kind != "nodes":
            r.add("POST", f"/{kind}/create", _off(body=f"swarm.{spec}"))
    r.add("GET", "/services/{id}/logs", _off(logs=True))
    r.add("GET", "/tasks", _off(filters=True))
    r.add("GET", "/tasks/{id}", _off())
    r.add("GET", "/tasks/{id}/logs", _off(logs=True))
