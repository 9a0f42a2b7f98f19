"""What every *_routes module registers with, below the server that
assembles them: the router (each route unversioned and under /vX.Y, as
dockerd serves them) and the engine the app carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from brandpy.engine.engine import Engine
from brandpy.engine.errors import NotImplementedHere

ENGINE_KEY = web.AppKey("engine", Engine)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def engine(request: web.Request) -> Engine:
    return request.app[ENGINE_KEY]


def not_implemented(why: str) -> Handler:
    """A documented 501 (README's list): the request, and why."""

    async def handler(request: web.Request) -> web.StreamResponse:
        raise NotImplementedHere(f"{request.method} {request.path}: {why}")

    return handler


class Router:
    def __init__(self, app: web.Application) -> None:
        self.app = app

    def add(self, method: str, path: str, handler: Handler) -> None:
        for prefix in ("", r"/v{version:[0-9]+\.[0-9]+}"):
            self.app.router.add_route(method, prefix + path, handler)
