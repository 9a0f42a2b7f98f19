"""/containers/...: create, list, inspect, lifecycle, logs, attach, wait,
remove, and the filesystem endpoints (archive, export, changes)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from aiohttp import web

from brandpy.engine import archive, links, logdrivers, procstats, syscall_view, validate, views
from brandpy.engine.attach import parse_detach_keys
from brandpy.engine.errors import Conflict, InvalidParameter, NotFound
from brandpy.engine.filters import Filters
from brandpy.engine.records import Record
from brandpy.engine.shimproto import STDERR, STDOUT, frame
from brandpy.engine.timefmt import parse_since

from .http import MULTIPLEXED, RAW_STREAM, body_json, end_hijack, hijack, qbool, qint, reply
from .router import Router, engine

if TYPE_CHECKING:
    from brandpy.engine.engine import Engine


def container(request: web.Request) -> Record:
    return engine(request).containers.get(request.match_info["id"])


def no_content() -> web.Response:
    return web.Response(status=204)


async def create(request: web.Request) -> web.Response:
    body = await body_json(request, validate.CREATE_BODY, "ContainerConfigWrapper")
    if not body:
        raise InvalidParameter("config cannot be empty in order to create a container")
    platform = request.query.get("platform", "")
    if platform and platform.split("/")[0] != "linux":
        raise InvalidParameter(f"platform {platform!r} is not supported: only linux/amd64")
    rec, warnings = await engine(request).create(body, request.query.get("name", ""))
    return reply({"Id": rec.id, "Warnings": warnings}, status=201)


async def list_(request: web.Request) -> web.Response:
    eng = engine(request)
    f = Filters(request.query.get("filters"), views.LIST_FILTERS)

    def resolve(name: str) -> str | None:
        try:
            return eng.store.resolve(name)
        except Exception:
            return None

    recs = views.list_containers(eng.containers, f, qbool(request, "all"),
                                 qint(request, "limit", -1), resolve)
    names = await asyncio.to_thread(_image_names, eng)
    link_names = links.names(eng.containers)
    out = []
    for rec in recs:
        s = views.summary(rec, names, link_names.get(rec.id, ()))
        if qbool(request, "size"):
            from brandpy.engine.system import changed_size
            s["SizeRw"] = await asyncio.to_thread(changed_size, eng, rec)
        out.append(s)
    return reply(out)


def _image_names(eng: Engine) -> dict[str, str]:
    from brandpy.engine.imageviews import names
    return names(eng)


async def inspect(request: web.Request) -> web.Response:
    rec = container(request)
    size = None
    if qbool(request, "size"):
        from brandpy.engine.system import changed_size
        size = {"SizeRw": await asyncio.to_thread(changed_size, engine(request), rec)}
    out = views.inspect(rec, size, engine(request).netsetup.sandbox_key(rec))
    out["Brandpy"] = await syscall_view.view(rec)
    return reply(out)


async def start(request: web.Request) -> web.Response:
    if request.query.get("checkpoint"):
        raise InvalidParameter("checkpoints are not supported")
    await engine(request).start(container(request))
    return no_content()


async def stop(request: web.Request) -> web.Response:
    await engine(request).stop(container(request), request.query.get("signal"),
                               qint(request, "t"))
    return no_content()


async def restart(request: web.Request) -> web.Response:
    await engine(request).restart(container(request), request.query.get("signal"),
                                  qint(request, "t"))
    return no_content()


async def kill(request: web.Request) -> web.Response:
    await engine(request).kill(container(request), request.query.get("signal"))
    return no_content()


async def pause(request: web.Request) -> web.Response:
    await engine(request).pause(container(request), True)
    return no_content()


async def unpause(request: web.Request) -> web.Response:
    await engine(request).pause(container(request), False)
    return no_content()


async def rename(request: web.Request) -> web.Response:
    name = request.query.get("name", "")
    if not name:
        raise InvalidParameter("name cannot be empty")
    await engine(request).rename(container(request), name)
    return no_content()


async def remove(request: web.Request) -> web.Response:
    if qbool(request, "link"):
        raise Conflict("Conflict, cannot remove the default link name of the container")
    await engine(request).remove(container(request), qbool(request, "force"),
                                 qbool(request, "v"))
    return no_content()


async def remove_link(request: web.Request) -> web.Response:
    """DELETE /containers/PARENT/ALIAS: a legacy link's name (with link=1)."""
    parent, alias = request.match_info["id"], request.match_info["alias"]
    if not qbool(request, "link"):
        raise NotFound(f"No such container: {parent}/{alias}")
    links.remove(engine(request).containers, parent, alias)
    return no_content()


async def wait(request: web.Request) -> web.StreamResponse:
    """The headers go out at once (the CLI waits for them before it starts
    the container); the body when the condition is met."""
    rec = container(request)
    condition = request.query.get("condition", "")
    waiting = asyncio.ensure_future(engine(request).wait(rec, condition))
    await asyncio.sleep(0)
    failed = waiting.exception() if waiting.done() else None
    if failed is not None:
        raise failed
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        result = await waiting
        await resp.write(json.dumps(result).encode() + b"\n")
        await resp.write_eof()
    except ConnectionError:
        waiting.cancel()
    return resp


async def logs(request: web.Request) -> web.StreamResponse:
    rec = container(request)
    stdout, stderr = qbool(request, "stdout"), qbool(request, "stderr")
    if not stdout and not stderr:
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    logdrivers.check_readable(rec.host_config.get("LogConfig") or {})
    tail_text = request.query.get("tail", "all")
    try:
        tail = -1 if tail_text in ("all", "") else int(tail_text)
        since = parse_since(request.query.get("since"))
        until = parse_since(request.query.get("until"))
    except ValueError as exc:
        raise InvalidParameter(f"invalid logs option: {exc}") from None
    timestamps = qbool(request, "timestamps")
    tty = rec.tty
    resp = web.StreamResponse(headers={"Content-Type": RAW_STREAM if tty else MULTIPLEXED})
    await resp.prepare(request)
    from brandpy.engine.logs import read
    await engine(request).pull_log(rec)
    try:
        async for entry in read(rec.log_path, stdout=stdout, stderr=stderr, tail=tail,
                                since=since, until=until, follow=qbool(request, "follow"),
                                alive=lambda: rec.running and not rec.removed.is_set()):
            data = entry.data
            if timestamps:
                data = entry.time.encode() + b" " + data
            await resp.write(data if tty else frame(STDOUT if entry.stream == "stdout"
                                                    else STDERR, data))
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def attach(request: web.Request) -> web.StreamResponse:
    rec = container(request)
    eng = engine(request)
    keys = parse_detach_keys(request.query.get("detachKeys") or None)
    stdin, stdout, stderr = (qbool(request, "stdin"), qbool(request, "stdout"),
                             qbool(request, "stderr"))
    logs_too, stream = qbool(request, "logs"), qbool(request, "stream")
    if not (logs_too or stream):
        raise InvalidParameter("Bad parameters: you must choose at least one of logs or stream")
    if logs_too:
        logdrivers.check_readable(rec.host_config.get("LogConfig") or {})
    reader, writer = await hijack(request, RAW_STREAM if rec.tty else MULTIPLEXED)
    try:
        await eng.attach(rec, reader, writer, stdin=stdin, stdout=stdout, stderr=stderr,
                         logs=logs_too, stream=stream, detach_keys=keys)
    except ConnectionError:
        pass
    return await end_hijack(request, writer)


async def resize(request: web.Request) -> web.Response:
    rec = container(request)
    height, width = qint(request, "h", 0), qint(request, "w", 0)
    await engine(request).resize(rec, height, width)
    return web.Response(status=200)


async def top(request: web.Request) -> web.Response:
    rec = container(request)
    pids = await engine(request).top(rec)
    result = await procstats.top(pids, request.query.get("ps_args") or "-ef")
    engine(request).container_event(rec, "top")
    return reply(result)


async def stats(request: web.Request) -> web.StreamResponse:
    rec = container(request)
    stream = qbool(request, "stream", True) and not qbool(request, "one-shot")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    sampler = procstats.Sampler(rec, engine(request))
    try:
        while True:
            sample = await sampler.sample(prime=not stream and not qbool(request, "one-shot"))
            await resp.write(json.dumps(sample).encode() + b"\n")
            if not stream or not rec.running:
                break
            await asyncio.sleep(1)
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def changes(request: web.Request) -> web.Response:
    rec = container(request)
    result = await asyncio.to_thread(archive.changes, engine(request), rec)
    return reply(result)


async def export(request: web.Request) -> web.StreamResponse:
    rec = container(request)
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    await resp.prepare(request)
    try:
        await archive.stream_export(rec, resp)
        engine(request).container_event(rec, "export")
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def archive_head(request: web.Request) -> web.Response:
    rec = container(request)
    stat = await asyncio.to_thread(archive.path_stat, engine(request), rec,
                                   _path(request))
    return web.Response(status=200, headers={archive.STAT_HEADER: archive.encode_stat(stat)})


async def archive_get(request: web.Request) -> web.StreamResponse:
    rec = container(request)
    path = _path(request)
    stat = await asyncio.to_thread(archive.path_stat, engine(request), rec, path)
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar",
                                       archive.STAT_HEADER: archive.encode_stat(stat)})
    await resp.prepare(request)
    try:
        await archive.stream_get(engine(request), rec, path, resp)
        engine(request).container_event(rec, "archive-path")
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def archive_put(request: web.Request) -> web.Response:
    rec = container(request)
    await archive.put(engine(request), rec, _path(request), request.content,
                      no_overwrite_dir=qbool(request, "noOverwriteDirNonDir"),
                      copy_uid_gid=qbool(request, "copyUIDGID"))
    engine(request).container_event(rec, "extract-to-dir")
    return web.Response(status=200)


def _path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise InvalidParameter("path is required: give the path inside the container")
    return path


async def prune(request: web.Request) -> web.Response:
    f = Filters(request.query.get("filters"), ("until", "label", "label!"))
    result = await engine(request).prune_containers(f)
    return reply(result)


async def update(request: web.Request) -> web.Response:
    rec = container(request)
    body = await body_json(request, validate.UPDATE_BODY, "UpdateConfig")
    warnings = await engine(request).update(rec, body)
    return reply({"Warnings": warnings})


def register(r: Router) -> None:
    r.add("POST", "/containers/create", create)
    r.add("GET", "/containers/json", list_)
    r.add("POST", "/containers/prune", prune)
    r.add("GET", "/containers/{id}/json", inspect)
    r.add("POST", "/containers/{id}/start", start)
    r.add("POST", "/containers/{id}/stop", stop)
    r.add("POST", "/containers/{id}/restart", restart)
    r.add("POST", "/containers/{id}/kill", kill)
    r.add("POST", "/containers/{id}/pause", pause)
    r.add("POST", "/containers/{id}/unpause", unpause)
    r.add("POST", "/containers/{id}/rename", rename)
    r.add("POST", "/containers/{id}/update", update)
    r.add("DELETE", "/containers/{id}", remove)
    r.add("DELETE", "/containers/{id}/{alias}", remove_link)
    r.add("POST", "/containers/{id}/wait", wait)
    r.add("GET", "/containers/{id}/logs", logs)
    r.add("POST", "/containers/{id}/attach", attach)
    r.add("POST", "/containers/{id}/resize", resize)
    r.add("GET", "/containers/{id}/top", top)
    r.add("GET", "/containers/{id}/stats", stats)
    r.add("GET", "/containers/{id}/changes", changes)
    r.add("GET", "/containers/{id}/export", export)
    r.add("HEAD", "/containers/{id}/archive", archive_head)
    r.add("GET", "/containers/{id}/archive", archive_get)
    r.add("PUT", "/containers/{id}/archive", archive_put)
