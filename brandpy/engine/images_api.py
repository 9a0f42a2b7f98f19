"""Images over the API, on the images store: pull, push, import, load,
save, tag, remove, prune, commit and registry logins. Store calls block,
so they run in threads; their progress messages are already shaped like
the Engine API's."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from brandpy.images import archive, commit, importer, pull, push, reference
from brandpy.images.auth import Credentials
from brandpy.images.changes import ChangeError
from brandpy.images.endpoints import Registries
from brandpy.images.registry import Client, RegistryError, daemon_status
from brandpy.images.store import StoreError

from .bridge import Body, consume, produce, run_with_progress
from .errors import Conflict, EngineError, InvalidParameter, NotFound
from .fsview import drop_placeholders
from .records import Record

if TYPE_CHECKING:
    from .engine import Engine

Send = Callable[[dict], Any]


def registry_auth(header: str | None) -> Credentials | None:
    """X-Registry-Auth: base64url JSON {username, password, serveraddress}."""
    if not header:
        return None
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        doc = json.loads(raw) if raw.strip() else {}
    except (binascii.Error, ValueError):
        raise InvalidParameter("X-Registry-Auth is not base64url-encoded JSON") from None
    if not isinstance(doc, dict) or not doc.get("username"):
        return None
    return Credentials(str(doc["username"]), str(doc.get("password") or ""))


def registry_configs(header: str | None) -> dict[str, Credentials]:
    """X-Registry-Config (sent with builds): base64url JSON of
    {registry: {username, password}} for every registry the client knows."""
    if not header:
        return {}
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        doc = json.loads(raw) if raw.strip() else {}
    except (binascii.Error, ValueError):
        raise InvalidParameter("X-Registry-Config is not base64url-encoded JSON") from None
    out = {}
    for server, auth in (doc.items() if isinstance(doc, dict) else ()):
        if isinstance(auth, dict) and auth.get("username"):
            host = server.split("://", 1)[-1].split("/", 1)[0]
            if host in ("index.docker.io", "registry-1.docker.io"):
                host = reference.DEFAULT_DOMAIN
            out[host] = Credentials(str(auth["username"]), str(auth.get("password") or ""))
    return out


def pull_reference(from_image: str, tag: str) -> str:
    if not from_image:
        raise InvalidParameter("fromImage or fromSrc is required")
    if reference.DIGEST_RE.fullmatch(tag):
        return f"{from_image}@{tag}"
    if tag:
        return f"{from_image}:{reference.check_tag(tag)}"
    if reference.is_name_only(from_image):
        return from_image + ":latest"
    return from_image


async def do_pull(engine: Engine, name: str, creds: Credentials | None, send: Send) -> str:
    reference.parse(name)
    image_id = await run_with_progress(
        lambda emit: pull.pull(engine.store, name, progress=emit, creds=creds,
                               registries=engine.settings.registries), send)
    engine.events.emit("image", "pull", reference.parse(name).familiar(),
                       {"name": reference.parse(name).familiar()})
    return image_id


async def do_push(engine: Engine, name: str, creds: Credentials | None, send: Send) -> str:
    reference.parse(name)
    digest = await run_with_progress(
        lambda emit: push.push(engine.store, name, progress=emit, creds=creds,
                               registries=engine.settings.registries), send)
    engine.events.emit("image", "push", reference.parse(name).familiar(),
                       {"name": reference.parse(name).familiar()})
    return digest


async def do_import(engine: Engine, body: Body, source: str, repo: str,
                    changes: list[str], message: str) -> str:
    tag = None
    if repo:
        reference.parse(repo)
        tag = repo
    try:
        if source == "-":
            image_id = await consume(body, lambda f: importer.import_rootfs(
                engine.store, f, tag=tag, changes=changes, message=message))
        else:
            if not source.startswith(("http://", "https://")):
                raise InvalidParameter(f"fromSrc must be - (the request body) or an http(s) "
                                       f"URL, not {source!r}")
            image_id = await asyncio.to_thread(_import_url, engine, source, tag, changes,
                                               message)
    except ChangeError as exc:
        raise InvalidParameter(str(exc)) from None
    engine.events.emit("image", "import", image_id, {"name": image_id})
    return image_id


def _import_url(engine: Engine, url: str, tag: str | None, changes: list[str],
                message: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return importer.import_rootfs(engine.store, resp, tag=tag, changes=changes,
                                          message=message, source=url)
    except OSError as exc:
        raise EngineError(f"cannot download {url}: {exc}") from None


async def do_load(engine: Engine, body: Body) -> list[str]:
    messages = await consume(body, lambda f: archive.load(engine.store, f))
    for line in messages:
        if line.startswith("Loaded image"):
            name = line.split(": ", 1)[1]
            engine.events.emit("image", "load", name, {"name": name})
    return messages


async def do_save(engine: Engine, names: list[str], write: Callable[[bytes], Any]) -> None:
    for name in names:
        await asyncio.to_thread(engine.store.resolve, name)     # 404 before streaming
    await produce(lambda f: archive.save(engine.store, names, f), write)
    for name in names:
        engine.events.emit("image", "save", name, {"name": name})


def tag(engine: Engine, source: str, repo: str, tag_: str) -> None:
    if not repo:
        raise InvalidParameter("repository name (repo) is required")
    target = f"{repo}:{reference.check_tag(tag_)}" if tag_ else repo
    if reference.parse(target).digest:
        raise InvalidParameter("refusing to create a tag with a digest reference")
    engine.store.tag(source, target)
    image_id = engine.store.resolve(target)
    engine.events.emit("image", "tag", image_id, {"name": reference.parse(target).familiar()})


def remove(engine: Engine, name: str, force: bool, prune_parents: bool = True) -> list[dict]:
    """`docker rmi`; as Docker does, untagged parent images left without a
    child (intermediate build steps) go with it, unless noprune."""
    running = {r.image_id for r in engine.containers if r.running}
    try:
        image_id = engine.store.resolve(name)
    except StoreError:
        raise NotFound(f"No such image: {name}") from None
    if force and image_id in running and len(engine.store.get(image_id).repo_tags) <= 1:
        raise Conflict(f"conflict: unable to delete {image_id[7:19]} (cannot be forced) - "
                       "image is being used by running container")
    parent = engine.store.records()[image_id].parent
    out = engine.store.remove(name, force=force, in_use=engine.containers.used_image)
    deleted = any("Deleted" in item for item in out)
    while deleted and prune_parents and parent:
        records = engine.store.records()
        rec = records.get(parent)
        if (rec is None or any(r.parent == parent for r in records.values())
                or parent in engine.store.tags().values()
                or engine.containers.used_image(parent)):
            break
        out += engine.store.remove(parent)
        parent = rec.parent
    for item in out:
        for action, value in item.items():
            engine.events.emit("image", "untag" if action == "Untagged" else "delete",
                               value if action == "Deleted" else image_id, {"name": value})
    return out


def prune(engine: Engine, dangling_only: bool) -> dict:
    """`docker image prune [-a]`: images no container uses that are dangling
    (untagged, no child), or with -a all of them; removing one can leave
    its parent dangling, so the walk repeats until nothing is left."""
    before = engine.store.disk_usage()
    deleted: list[dict] = []
    while True:
        records = engine.store.records()
        tagged = set(engine.store.tags().values())
        parents = {r.parent for r in records.values()}
        victims = [i for i in records if i not in parents
                   and not engine.containers.used_image(i)
                   and (not dangling_only or i not in tagged)]
        if not victims:
            break
        for image_id in victims:
            deleted += engine.store.remove(image_id, force=True)
    for item in deleted:
        if "Deleted" in item:
            engine.events.emit("image", "delete", item["Deleted"], {"name": item["Deleted"]})
    space = max(0, before - engine.store.disk_usage())
    engine.events.emit("image", "prune", "", {"reclaimed": str(space)})
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": space}


async def do_commit(engine: Engine, rec: Record, repo: str, tag_: str, comment: str,
                    author: str, changes: list[str], pause: bool, config: dict | None) -> str:
    target = None
    if repo:
        target = f"{repo}:{reference.check_tag(tag_)}" if tag_ else repo
        reference.parse(target)
    paused_here = False
    if pause and rec.running and not rec.state.get("Paused"):
        try:
            await engine.pause(rec, True)
            paused_here = True
        except EngineError as exc:
            # It ended between the check and the pause: committed as stopped,
            # as by dockerd (which checks and pauses under one lock).
            if exc.status != 409 or not await engine.has_stopped(rec):
                raise
    if not rec.running:
        tree = engine.store.get(rec.image_id).tree
        await asyncio.to_thread(drop_placeholders, rec.rootfs, tree)
    try:
        image_id = await asyncio.to_thread(
            commit.commit, engine.store, rec.rootfs, rec.image_id, tag=target, changes=changes,
            message=comment, author=author, config=config if config else rec.config,
            container=(rec.id, rec.config))
    except ChangeError as exc:
        raise InvalidParameter(str(exc)) from None
    finally:
        if paused_here and rec.running:
            await engine.pause(rec, False)
    engine.container_event(rec, "commit", comment=comment, imageID=image_id,
                           imageRef=target or "")
    return image_id


def login(body: dict, registries: Registries) -> dict:
    """`docker login`: check the credentials against the registry's /v2/
    (Basic or Bearer challenge, as a pull would)."""
    server = str(body.get("serveraddress") or "docker.io")
    host = server.split("://", 1)[-1].rstrip("/").removesuffix("/v1").removesuffix("/v2")
    creds = Credentials(str(body.get("username") or ""), str(body.get("password") or ""))
    if not creds.username:
        raise InvalidParameter("username is required to log in")
    ref = reference.parse(f"{host}/library/login-check" if "." in host or ":" in host
                          or host == "localhost" else "login-check")
    client = Client(ref, creds, endpoint=registries.endpoint(ref.registry_host))
    try:
        resp = client.request("GET", "/v2/")
        resp.read()
    except RegistryError as exc:
        raise EngineError(f"login to {host} failed: {exc}", exc.http_status) from None
    if resp.status == 401:
        raise EngineError(f"login to {host} failed: unauthorized: incorrect username or "
                          "password", 401)
    if resp.status >= 400:
        raise EngineError(f"login to {host} failed: the registry answered {resp.status}",
                          daemon_status(resp.status))
    return {"Status": "Login Succeeded", "IdentityToken": ""}

