"""/images/..., /commit, /auth: images over the API on the images store."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from brandpy.engine import images_api, imageviews, validate
from brandpy.engine.errors import InvalidParameter, NotImplementedHere
from brandpy.engine.filters import Filters
from brandpy.images import reference
from brandpy.images.distribution import inspect as distribution_inspect

from .http import JsonLines, body_json, qbool, reply
from .router import Router, engine


async def list_(request: web.Request) -> web.Response:
    f = Filters(request.query.get("filters"), imageviews.LIST_FILTERS)
    out = await asyncio.to_thread(imageviews.summaries, engine(request), f,
                                  qbool(request, "all"), True)
    return reply(out)


async def inspect(request: web.Request) -> web.Response:
    img = await asyncio.to_thread(engine(request).store.get, request.match_info["name"])
    return reply(imageviews.inspect(img))


async def history(request: web.Request) -> web.Response:
    img = await asyncio.to_thread(engine(request).store.get, request.match_info["name"])
    return reply(imageviews.history(img))


class _Progress:
    """A JSON-lines progress reply started at the second message, so a
    failure before any real progress (no such image, registry down) can
    still be answered with its HTTP status, as dockerd does; a later one is
    reported in the stream (errors.answer)."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.out: JsonLines | None = None
        self.held: list[dict[str, Any]] = []

    async def send(self, msg: dict[str, Any]) -> None:
        if self.out is None:
            self.held.append(msg)
            if len(self.held) < 2:
                return
            self.out = JsonLines(self.request)
            await self.out.__aenter__()
            for m in self.held:
                await self.out.send(m)
            return
        await self.out.send(msg)

    async def finish(self) -> web.StreamResponse:
        if self.out is None:
            self.out = JsonLines(self.request)
            await self.out.__aenter__()
            for m in self.held:
                await self.out.send(m)
        await self.out.__aexit__(None, None, None)
        return self.out.resp


async def create(request: web.Request) -> web.StreamResponse:
    """Pull (fromImage) or import (fromSrc)."""
    eng = engine(request)
    q = request.query
    platform = q.get("platform", "")
    if platform and not platform.startswith("linux"):
        raise InvalidParameter(f"platform {platform!r} is not supported: only linux/amd64")
    progress = _Progress(request)
    if q.get("fromSrc"):
        image_id = await images_api.do_import(eng, request.content, q["fromSrc"],
                                              _repo_tag(q.get("repo", ""), q.get("tag", "")),
                                              q.getall("changes", []), q.get("message", ""))
        await progress.send({"status": image_id})
    else:
        name = images_api.pull_reference(q.get("fromImage", ""), q.get("tag", ""))
        creds = images_api.registry_auth(request.headers.get("X-Registry-Auth"))
        await images_api.do_pull(eng, name, creds, progress.send)
    return await progress.finish()


def _repo_tag(repo: str, tag: str) -> str:
    return f"{repo}:{reference.check_tag(tag)}" if repo and tag else repo


async def push(request: web.Request) -> web.StreamResponse:
    eng = engine(request)
    name = request.match_info["name"]
    tag = request.query.get("tag", "")
    target = f"{name}:{reference.check_tag(tag)}" if tag else name
    await asyncio.to_thread(eng.store.resolve, target)     # 404 before streaming
    creds = images_api.registry_auth(request.headers.get("X-Registry-Auth"))
    progress = _Progress(request)
    await images_api.do_push(eng, target, creds, progress.send)
    return await progress.finish()


async def tag(request: web.Request) -> web.Response:
    await asyncio.to_thread(images_api.tag, engine(request), request.match_info["name"],
                            request.query.get("repo", ""), request.query.get("tag", ""))
    return web.Response(status=201)


async def remove(request: web.Request) -> web.Response:
    out = await asyncio.to_thread(images_api.remove, engine(request), request.match_info["name"],
                                  qbool(request, "force"), not qbool(request, "noprune"))
    return reply(out)


async def prune(request: web.Request) -> web.Response:
    f = Filters(request.query.get("filters"), ("dangling", "until", "label", "label!"))
    if "until" in f or "label" in f or "label!" in f:
        raise InvalidParameter("image prune supports only the dangling filter here")
    dangling = f.bool("dangling")
    out = await asyncio.to_thread(images_api.prune, engine(request),
                                  True if dangling is None else dangling)
    return reply(out)


async def load(request: web.Request) -> web.StreamResponse:
    """As dockerd: the reply starts at once, and a bad archive is an error
    in its stream."""
    async with JsonLines(request) as out:
        for line in await images_api.do_load(engine(request), request.content):
            await out.send({"stream": line + "\n"})
    return out.resp


async def save(request: web.Request) -> web.StreamResponse:
    """A docker-archive of the named images (none: an archive of nothing,
    as dockerd 20.10 sends)."""
    names = ([request.match_info["name"]] if "name" in request.match_info
             else request.query.getall("names", []))
    eng = engine(request)
    for name in names:
        await asyncio.to_thread(eng.store.resolve, name)   # 404 before streaming
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    await resp.prepare(request)
    try:
        await images_api.do_save(eng, names, resp.write)
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def search(request: web.Request) -> web.Response:
    raise NotImplementedHere("image search is not implemented: brandpy does not query "
                             "Docker Hub's search index; pull by name instead")


async def commit(request: web.Request) -> web.Response:
    q = request.query
    if not q.get("container"):
        raise InvalidParameter("container is required: the container to commit")
    rec = engine(request).containers.get(q["container"])
    config = await body_json(request, validate.CONTAINER_CONFIG, "container.Config")
    image_id = await images_api.do_commit(engine(request), rec, q.get("repo", ""),
                                          q.get("tag", ""), q.get("comment", ""),
                                          q.get("author", ""), q.getall("changes", []),
                                          qbool(request, "pause", True), config)
    return reply({"Id": image_id}, status=201)


async def auth(request: web.Request) -> web.Response:
    body = await body_json(request, validate.AUTH_CONFIG, "registry.AuthConfig")
    return reply(await asyncio.to_thread(images_api.login, body,
                                         engine(request).settings.registries))


async def distribution(request: web.Request) -> web.Response:
    """What the registry holds for a reference (no pull)."""
    creds = images_api.registry_auth(request.headers.get("X-Registry-Auth"))
    return reply(await asyncio.to_thread(distribution_inspect, request.match_info["name"], creds,
                                         engine(request).settings.registries))


def register(r: Router) -> None:
    r.add("GET", "/distribution/{name:.+}/json", distribution)
    r.add("GET", "/images/json", list_)
    r.add("POST", "/images/create", create)
    r.add("POST", "/images/load", load)
    r.add("GET", "/images/get", save)
    r.add("GET", "/images/search", search)
    r.add("POST", "/images/prune", prune)
    r.add("POST", "/commit", commit)
    r.add("POST", "/auth", auth)
    r.add("GET", "/images/{name:.+}/json", inspect)
    r.add("GET", "/images/{name:.+}/history", history)
    r.add("GET", "/images/{name:.+}/get", save)
    r.add("POST", "/images/{name:.+}/push", push)
    r.add("POST", "/images/{name:.+}/tag", tag)
    r.add("DELETE", "/images/{name:.+}", remove)
