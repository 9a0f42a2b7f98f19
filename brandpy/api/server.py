"""The Docker Engine API server: aiohttp on a unix socket or loopback TCP.

Every route is served unversioned and under /v1.24 ... /v1.50, as dockerd
does; errors are Docker's `{"message": ...}` with its status codes."""

from __future__ import annotations

import sys
import traceback

from aiohttp import web

from brandpy.engine.engine import Engine
from brandpy.engine.errors import EngineError
from brandpy.images.store import Conflict as StoreConflict
from brandpy.images.store import ImageNotFound, StoreError
from brandpy.pathnames import InvalidName

from . import adapters as adapterlib
from . import (
    brandpy_routes,
    build_routes,
    container_routes,
    exec_routes,
    image_routes,
    network_routes,
    system_routes,
    volume_routes,
)
from .adapter_config import Chain
from .http import API_VERSION, JSON_LIMIT, MIN_API_VERSION, docker_headers, error
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
        resp = await handler(request)
    except EngineError as exc:
        resp = web.Response(status=304) if exc.status == 304 else error(exc.status, exc.message)
    except InvalidName as exc:
        resp = error(400, str(exc))
    except ImageNotFound as exc:
        resp = error(404, str(exc))
    except StoreConflict as exc:
        resp = error(409, str(exc))
    except StoreError as exc:
        resp = error(400 if "ambiguous" in str(exc) else 500, str(exc))
    except ConnectionError:
        # The client went away mid-request (an upload cut off): nothing to
        # answer, and not a daemon error.
        resp = error(400, "the client closed the connection before the request was complete")
    except web.HTTPException as exc:
        message = {404: "page not found", 405: "page not found",
                   413: f"request body too large: JSON bodies are limited to "
                        f"{JSON_LIMIT >> 20} MiB"}.get(exc.status, exc.reason)
        # Docker answers unknown paths and wrong methods alike with 404.
        resp = error(404 if exc.status == 405 else exc.status, message)
    except Exception as exc:   # a bug: the daemon says so and keeps serving
        traceback.print_exc(file=sys.stderr)
        resp = error(500, f"internal error in brandpy: {exc.__class__.__name__}: {exc}")
    return docker_headers(resp)


def make_app(eng: Engine, adapters: Chain | None = None) -> web.Application:
    """The API; with adapters, their chain runs around every request."""
    middlewares = [adapterlib.run_adapters, docker_errors] if adapters else [docker_errors]
    app = web.Application(middlewares=middlewares, client_max_size=JSON_LIMIT,
                          handler_args={"max_field_size": 64 * 1024})
    app[ENGINE_KEY] = eng
    if adapters:
        adapterlib.install(app, adapters)
    router = Router(app)
    for module in (system_routes, container_routes, exec_routes, image_routes,
                   build_routes, volume_routes, network_routes, brandpy_routes):
        module.register(router)
    return app
