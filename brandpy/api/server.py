"""The Docker Engine API server: aiohttp on a unix socket or loopback TCP.

Every route is served unversioned and under /v1.24 ... /v1.50, as dockerd
does; errors are Docker's `{"message": ...}` with its status codes."""

from __future__ import annotations

from aiohttp import web

from brandpy.engine.engine import Engine

from . import adapters as adapterlib
from . import (
    brandpy_routes,
    build_routes,
    container_routes,
    errors,
    exec_routes,
    image_routes,
    network_routes,
    plugin_routes,
    swarm_routes,
    system_routes,
    volume_routes,
)
from .adapter_config import Chain
from .http import API_VERSION, JSON_LIMIT, MIN_API_VERSION, STARTED, docker_headers, error
from .router import ENGINE_KEY, Handler, Router


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


@web.middleware
async def docker_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    version = request.match_info.get("version")
    if version:
        if _version_tuple(version) > _version_tuple(API_VERSION):
            return error(400, f"client version {version} is too new. Maximum supported API "
                              f"version is {API_VERSION}")
        if _version_tuple(version) < _version_tuple(MIN_API_VERSION):
            return error(400, f"client version {version} is too old. Minimum supported API "
                              f"version is {MIN_API_VERSION}, please upgrade your client to a "
                              "newer version")
    try:
        return await handler(request)
    except Exception as exc:     # every handler's: mapped in errors.py
        return await errors.answer(request, exc)


async def _prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Every reply, streamed ones too, gets dockerd's headers; and the
    request remembers that its status line went out."""
    docker_headers(response)
    request[STARTED] = response


def make_app(eng: Engine, adapters: Chain | None = None) -> web.Application:
    """The API; with adapters, their chain runs around every request."""
    middlewares = [adapterlib.run_adapters, docker_errors] if adapters else [docker_errors]
    app = web.Application(middlewares=middlewares, client_max_size=JSON_LIMIT,
                          handler_args={"max_field_size": 64 * 1024})
    app[ENGINE_KEY] = eng
    app.on_response_prepare.append(_prepare)
    if adapters:
        adapterlib.install(app, adapters)
    router = Router(app)
    for module in (system_routes, container_routes, exec_routes, image_routes,
                   build_routes, volume_routes, network_routes, swarm_routes, plugin_routes,
                   brandpy_routes):
        module.register(router)
    return app
