"""POST /build: the classic builder (`DOCKER_BUILDKIT=0 docker build`)."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

from aiohttp import web

from brandpy import pathnames
from brandpy.engine import images_api
from brandpy.engine.bridge import consume
from brandpy.engine.build import builder as builderlib
from brandpy.engine.build.context import Ignore, apply_ignore, unpack
from brandpy.engine.build.dockerfile import DockerfileError
from brandpy.engine.errors import InvalidParameter, NotImplementedHere
from brandpy.images import reference
from brandpy.images.fsutil import rmtree

from .http import JsonLines, qbool, reply
from .router import Router, engine


def _json_map(request: web.Request, name: str) -> dict[str, str]:
    raw = request.query.get(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidParameter(f"{name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidParameter(f"{name} must be a JSON object")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def options(request: web.Request) -> builderlib.Options:
    q = request.query
    if q.get("remote"):
        raise NotImplementedHere("builds from a remote context (URL or git) are not "
                                 "implemented: send the context as a tar")
    if q.get("version") == "2":
        raise NotImplementedHere("BuildKit is not implemented: use the classic builder "
                                 "(DOCKER_BUILDKIT=0)")
    platform = q.get("platform", "")
    if platform and not platform.startswith("linux"):
        raise InvalidParameter(f"platform {platform!r} is not supported: only linux/amd64")
    # dockerd skips an empty t=; the others must be references.
    tags = [t for t in q.getall("t", []) if t]
    for tag in tags:
        reference.parse(tag)
    return builderlib.Options(
        tags=tags, buildargs=_json_map(request, "buildargs"),
        labels=_json_map(request, "labels"), target=q.get("target", ""),
        nocache=qbool(request, "nocache"), pull=qbool(request, "pull"),
        remove=qbool(request, "rm", True), force_remove=qbool(request, "forcerm"),
        quiet=qbool(request, "q"),
        registries=images_api.registry_configs(request.headers.get("X-Registry-Config")),
        cache_from=_json_list(request, "cachefrom"),
        network_mode=q.get("networkmode") or "default",
        extra_hosts=[h for value in q.getall("extrahosts", []) for h in value.split(",") if h])


def _json_list(request: web.Request, name: str) -> list[str]:
    raw = request.query.get(name)
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidParameter(f"{name} is not valid JSON") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"{name} must be a JSON list of strings")
    return value


async def build(request: web.Request) -> web.StreamResponse:
    eng = engine(request)
    opts = options(request)
    work = eng.root / "build" / secrets.token_hex(6)
    context = work / "context"
    context.mkdir(parents=True)
    try:
        await consume(request.content, lambda f: unpack(f, context))
        dockerfile_name = request.query.get("dockerfile") or "Dockerfile"
        text = await asyncio.to_thread(_read_text, context, dockerfile_name)
        if (context / ".dockerignore").is_file():
            ignore = Ignore(await asyncio.to_thread(_read_text, context, ".dockerignore"))
            # The Dockerfile and .dockerignore go too when it names them
            # (once read), as dockerd's removeDockerfile does: the CLI sends
            # them whatever the file says.
            await asyncio.to_thread(apply_ignore, context, ignore)
        # From here on a failure is reported in the progress stream.
        async with JsonLines(request) as out:
            b = builderlib.Builder(eng, context, text, opts, out.send)
            image_id = await b.run()
            for tag in opts.tags:
                await asyncio.to_thread(eng.store.tag, image_id, tag)
                eng.events.emit("image", "tag", image_id, {"name": tag})
            await out.send({"aux": {"ID": image_id}})
            if opts.quiet:
                await out.send({"stream": image_id + "\n"})   # what `build -q` prints
            else:
                await out.send({"stream": f"Successfully built {image_id[7:19]}\n"})
                for tag in opts.tags:
                    await out.send({"stream": f"Successfully tagged {tag}\n"})
        return out.resp
    finally:
        await asyncio.to_thread(rmtree, work)


def _read_text(context: Path, name: str) -> str:
    """The Dockerfile or .dockerignore: a UTF-8 file inside the context."""
    try:
        path = pathnames.inside(context, name)
    except pathnames.InvalidName:
        path = context      # not a file: the same message as a missing one
    if not path.is_file():
        raise DockerfileError(f"Cannot locate specified Dockerfile: {name}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DockerfileError(f"{name} is not UTF-8 text ({exc})") from None


async def prune(request: web.Request) -> web.Response:
    """The classic builder's cache is its intermediate images: `docker
    image prune` removes them; there is no separate build cache."""
    return reply({"CachesDeleted": None, "SpaceReclaimed": 0})


def register(r: Router) -> None:
    r.add("POST", "/build", build)
    r.add("POST", "/build/prune", prune)
