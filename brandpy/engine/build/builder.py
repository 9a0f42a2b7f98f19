"""The classic builder: each Dockerfile step becomes an image whose parent
is the previous step's (as Docker's classic builder does), which is also
the layer cache: a step whose parent, command and resulting config match
an existing image reuses it ("Using cache").

RUN steps are real containers of the engine (created, started and
removed like any other, so brandpy's runtime executes them); COPY and ADD
write into a copy-on-write rootfs of the current image; both are then
committed by the images store."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import posixpath
import secrets
import stat
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brandpy.images import changes as changelib
from brandpy.images import commit as commitlib
from brandpy.images import reference
from brandpy.images import rootfs as rootfslib
from brandpy.images.auth import Credentials
from brandpy.images.compression import detect
from brandpy.images.fsutil import rmtree
from brandpy.images.importer import new_config
from brandpy.images.store import ImageNotFound, StoreError
from brandpy.runtime.errors import Errno
from brandpy.runtime.identity import UserError, resolve_user
from brandpy.runtime.run_setup import ContainerError, prepare_workdir

from .. import images_api
from ..archive import extract_tar
from ..errors import EngineError
from ..fsview import FsView, drop_placeholders
from ..logs import read as read_logs
from .dockerfile import SUBSTITUTED, DockerfileError, Instruction, Lexer, key_values, parse

if TYPE_CHECKING:
    from ..engine import Engine
    from ..records import Record

DEFAULT_SHELL = ["/bin/sh", "-c"]
# Build arguments Docker accepts without an ARG line (and keeps out of history).
PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                   "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
Send = Callable[[dict], Any]


class StepFailed(EngineError):
    """A build step failed; code is what the CLI exits with."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message, 400)
        self.code = code


@dataclass
class Options:
    tags: list[str] = field(default_factory=list)
    buildargs: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    nocache: bool = False
    pull: bool = False
    remove: bool = True
    force_remove: bool = False
    quiet: bool = False
    registries: dict[str, Credentials] = field(default_factory=dict)   # host -> login
    cache_from: list[str] = field(default_factory=list)   # the only cache sources, if any
    network_mode: str = "default"                         # of the RUN containers
    extra_hosts: list[str] = field(default_factory=list)  # HOST:IP, for RUN

@dataclass
class Stage:
    name: str
    image_id: str
    config: dict
    args: dict[str, str] = field(default_factory=dict)
    cmd_set: bool = False


class Builder:
    def __init__(self, engine: Engine, context: Path, dockerfile: str, opts: Options,
                 send: Send) -> None:
        self.engine = engine
        self.store = engine.store
        self.context = context
        self.opts = opts
        self.send = send
        self.instructions = parse(dockerfile)
        self.stages: list[Stage] = []
        self.global_args: dict[str, str] = {}
        self.used_args: set[str] = set()
        self.scratch_id: str | None = None
        self.cache_sources: set[str] | None = None   # with cache_from: their ancestors

    async def say(self, text: str) -> None:
        if not self.opts.quiet:
            await self.send({"stream": text})

    # -- the build --------------------------------------------------------------

    async def run(self) -> str:
        total = len(self.instructions)
        stage: Stage | None = None
        for n, ins in enumerate(self.instructions, 1):
            await self.say(f"Step {n}/{total} : {ins.original}\n")
            if ins.name == "FROM":
                if stage is not None and self.opts.target and stage.name == self.opts.target:
                    break
                stage = await self.from_(ins)
                self.stages.append(stage)
            elif stage is None:
                if ins.name != "ARG":
                    raise DockerfileError("no build stage in current context: the Dockerfile "
                                          "must begin with FROM (or ARG before it)")
                for key, value in key_values(ins.args, Lexer(self.global_args), "ARG"):
                    self.global_args[key] = self.opts.buildargs.get(key, value or "")
                    self.used_args.add(key)
                continue
            else:
                await self.step(stage, ins)
            await self.say(f" ---> {stage.image_id[7:19]}\n")
        if stage is None:
            raise DockerfileError("no FROM instruction in the Dockerfile")
        if self.opts.target and stage.name != self.opts.target:
            raise DockerfileError(f"failed to reach build target {self.opts.target} in "
                                  "Dockerfile")
        if self.opts.labels:
            stage.config["Labels"] = {**(stage.config.get("Labels") or {}), **self.opts.labels}
            await self.commit_config(stage, "LABEL " + " ".join(
                f"{k}={v}" for k, v in self.opts.labels.items()))
        unused = sorted(set(self.opts.buildargs) - self.used_args - set(PREDEFINED_ARGS))
        if unused:
            await self.say(f"[Warning] One or more build-args {unused} were not consumed\n")
        return stage.image_id

    # -- FROM -------------------------------------------------------------------

    async def from_(self, ins: Instruction) -> Stage:
        words = Lexer(self.global_args).words(ins.args)
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise DockerfileError(f"FROM requires either one or three arguments: {ins.args!r}")
        ref = words[0]
        name = words[2].lower() if len(words) == 3 else str(len(self.stages))
        if ref.lower() == "scratch":
            return Stage(name, await asyncio.to_thread(self._scratch), {})
        previous = self._stage(ref)
        if previous is not None:
            return Stage(name, previous.image_id, copy.deepcopy(previous.config))
        image_id = await self._base_image(ref)
        config = copy.deepcopy(self.store.get(image_id).config.get("config") or {})
        stage = Stage(name, image_id, config)
        triggers = config.pop("OnBuild", None) or []
        if triggers:
            await self.say(f"# Executing {len(triggers)} build trigger(s)\n")
        for trigger in triggers:
            for t in parse(trigger):
                await self.step(stage, t)
        return stage

    def _stage(self, ref: str) -> Stage | None:
        for i, st in enumerate(self.stages):
            if st.name == ref.lower() or str(i) == ref:
                return st
        return None

    async def _base_image(self, ref: str) -> str:
        if not self.opts.pull:
            try:
                return await asyncio.to_thread(self.store.resolve, ref)
            except ImageNotFound:
                pass
        name = images_api.pull_reference(ref, "")

        async def progress(msg: dict) -> None:
            if not self.opts.quiet:
                await self.send(msg)

        creds = self.opts.registries.get(reference.parse(name).domain)
        try:
            return await images_api.do_pull(self.engine, name, creds, progress)
        except StoreError as exc:
            raise StepFailed(f"pull access denied or no such image {ref}: {exc}") from None

    def _scratch(self) -> str:
        """The empty image FROM scratch starts from."""
        if self.scratch_id is None:
            raw = new_config([], {}, created="1970-01-01T00:00:00Z", history=[])
            with self.store.transaction() as txn:
                self.scratch_id = txn.add_image(raw, [])
        return self.scratch_id

    # -- steps --------------------------------------------------------------------

    def env(self, stage: Stage) -> dict[str, str]:
        """Variables for substitution: the stage's ARGs, then its ENV."""
        env = dict(stage.args)
        for e in stage.config.get("Env") or []:
            key, _, value = e.partition("=")
            env[key] = value
        return env

    async def step(self, stage: Stage, ins: Instruction) -> None:
        lexer = Lexer(self.env(stage))
        args = ins.args
        handler = getattr(self, "do_" + ins.name.lower())
        if ins.name in SUBSTITUTED and ins.name not in ("ENV", "LABEL", "ARG", "COPY", "ADD"):
            args = " ".join(lexer.words(args)) if ins.json_form() is None else args
        await handler(stage, ins, args, lexer)

    async def do_arg(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        for key, value in key_values(args, lexer, "ARG"):
            self.used_args.add(key)
            if key in self.opts.buildargs:
                stage.args[key] = self.opts.buildargs[key]
            elif value is not None:
                stage.args[key] = value
            elif key in self.global_args:
                stage.args[key] = self.global_args[key]
            else:
                stage.args.pop(key, None)
        await self.commit_config(stage, f"ARG {args}")

    async def do_env(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        env = list(stage.config.get("Env") or [])
        for key, value in key_values(args, lexer, "ENV"):
            env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            lexer.env[key] = value
        stage.config["Env"] = env
        await self.commit_config(stage, f"ENV {args}")

    async def do_label(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        labels = dict(stage.config.get("Labels") or {})
        labels.update(key_values(args, lexer, "LABEL"))
        stage.config["Labels"] = labels
        await self.commit_config(stage, f"LABEL {args}")

    async def do_maintainer(self, stage: Stage, ins: Instruction, args: str,
                            lexer: Lexer) -> None:
        await self.commit_config(stage, f"MAINTAINER {args}")

    async def _change(self, stage: Stage, line: str) -> None:
        try:
            changelib.apply(stage.config, line)
        except changelib.ChangeError as exc:
            raise DockerfileError(str(exc)) from None
        await self.commit_config(stage, line)

    async def do_expose(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        await self._change(stage, f"EXPOSE {args}")

    async def do_volume(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        await self._change(stage, f"VOLUME {args}")

    async def do_stopsignal(self, stage: Stage, ins: Instruction, args: str,
                            lexer: Lexer) -> None:
        await self._change(stage, f"STOPSIGNAL {args}")

    async def do_healthcheck(self, stage: Stage, ins: Instruction, args: str,
                             lexer: Lexer) -> None:
        await self._change(stage, f"HEALTHCHECK {args}")

    async def do_onbuild(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        word = args.split(None, 1)[0].upper() if args.strip() else ""
        if word in ("ONBUILD", "FROM", "MAINTAINER"):
            raise DockerfileError(f"{word} isn't allowed as an ONBUILD trigger")
        await self._change(stage, f"ONBUILD {args}")

    async def do_user(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        stage.config["User"] = args.strip()
        await self.commit_config(stage, f"USER {args}")

    async def do_shell(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        shell = ins.json_form()
        if not shell:
            raise DockerfileError("SHELL requires the arguments to be in JSON form")
        stage.config["Shell"] = shell
        await self.commit_config(stage, f"SHELL {json.dumps(shell)}")

    def _command(self, stage: Stage, ins: Instruction) -> list[str]:
        exec_form = ins.json_form()
        if exec_form is not None:
            return exec_form
        return list(stage.config.get("Shell") or DEFAULT_SHELL) + [ins.args]

    async def do_cmd(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        stage.config["Cmd"] = self._command(stage, ins)
        stage.cmd_set = True
        await self.commit_config(stage, f"CMD {json.dumps(stage.config['Cmd'])}")

    async def do_entrypoint(self, stage: Stage, ins: Instruction, args: str,
                            lexer: Lexer) -> None:
        stage.config["Entrypoint"] = self._command(stage, ins)
        if not stage.cmd_set:
            stage.config.pop("Cmd", None)   # an inherited CMD is reset, as in Docker
        await self.commit_config(stage, f"ENTRYPOINT {json.dumps(stage.config['Entrypoint'])}")

    async def do_workdir(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        path = posixpath.normpath(posixpath.join(stage.config.get("WorkingDir") or "/",
                                                 args.strip()))
        stage.config["WorkingDir"] = path
        created_by = f"WORKDIR {path}"
        tree = self.store.get(stage.image_id).tree
        if self._exists_in(tree, path):
            await self.commit_config(stage, created_by)
            return
        await self.commit_fs(stage, created_by, lambda root, view: prepare_workdir(view, path))

    @staticmethod
    def _exists_in(tree: Path, path: str) -> bool:
        try:
            return os.path.isdir(FsView(tree).resolve(path).host)
        except Errno:
            return False

    # -- RUN --------------------------------------------------------------------

    async def do_run(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        argv = self._command(stage, ins)
        env_names = {e.partition("=")[0] for e in stage.config.get("Env") or []}
        build_env = [f"{k}={v}" for k, v in sorted(stage.args.items()) if k not in env_names]
        visible = [e for e in build_env if e.partition("=")[0] not in PREDEFINED_ARGS]
        shown = " ".join(argv) if ins.json_form() is None else json.dumps(argv)
        created_by = (f"|{len(visible)} {' '.join(visible)} {shown}" if visible else shown)
        if await self.cached(stage, created_by, stage.config):
            return
        rec, _ = await self.engine.create({
            "Image": stage.image_id, "Cmd": argv, "Entrypoint": [""], "Env": build_env,
            "User": stage.config.get("User") or "",
            "WorkingDir": stage.config.get("WorkingDir") or "",
            "Labels": {"com.docker.build": "brandpy"},
            "HostConfig": {"NetworkMode": self.opts.network_mode,
                           "ExtraHosts": self.opts.extra_hosts}}, "")
        await self.say(f" ---> Running in {rec.short}\n")
        ok = False
        try:
            await self._run_container(rec, argv)
            tree = self.store.get(stage.image_id).tree
            await asyncio.to_thread(drop_placeholders, rec.rootfs, tree)
            image_id = await asyncio.to_thread(
                commitlib.commit, self.store, rec.rootfs, stage.image_id,
                config=copy.deepcopy(stage.config), created_by=created_by)
            stage.image_id = image_id
            ok = True
        finally:
            if (ok and self.opts.remove) or self.opts.force_remove:
                await self.say(f"Removing intermediate container {rec.short}\n")
                await self.engine.remove(rec, force=True)

    async def _run_container(self, rec: Record, argv: list[str]) -> None:
        try:
            await self.engine.start(rec)
        except EngineError as exc:
            raise StepFailed(f"The command '{' '.join(argv)}' could not be run: {exc}",
                             getattr(exc, "exit_code", 1)) from None
        async for entry in read_logs(rec.log_path, stdout=True, stderr=True, tail=-1, since=None,
                                     until=None, follow=True, alive=lambda: rec.running):
            text = entry.data.decode(errors="replace")
            # dockerd shows a step's stderr in red
            await self.say(f"\x1b[91m{text}\x1b[0m" if entry.stream == "stderr" else text)
        await self.engine.wait(rec, "not-running")
        code = int(rec.state.get("ExitCode") or 0)
        if code:
            # dockerd joins the command with spaces, unquoted
            raise StepFailed(f"The command '{' '.join(argv)}' returned a non-zero code: "
                             f"{code}", code)

    # -- COPY and ADD -----------------------------------------------------------------

    async def do_copy(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        await self._copy(stage, ins, lexer, add=False)

    async def do_add(self, stage: Stage, ins: Instruction, args: str, lexer: Lexer) -> None:
        await self._copy(stage, ins, lexer, add=True)

    async def _copy(self, stage: Stage, ins: Instruction, lexer: Lexer, add: bool) -> None:
        words = ins.json_form()
        words = [lexer.word(w) for w in words] if words is not None else lexer.words(ins.args)
        if len(words) < 2:
            raise DockerfileError(f"{ins.name} requires at least two arguments, but only one "
                                  "was provided. Destination could not be determined.")
        *sources, dest = words
        source_root = self.context
        if "from" in ins.flags:
            if add:
                raise DockerfileError("ADD --from is not supported: use COPY --from")
            source_root = await self._from_root(ins.flags["from"])
        workdir = stage.config.get("WorkingDir") or "/"
        dest_path = posixpath.join(workdir, dest)
        dest_is_dir = dest.endswith("/") or dest in (".", "..")
        downloads: list[Path] = []
        try:
            entries = []
            for src in sources:
                if add and src.startswith(("http://", "https://")):
                    path = await asyncio.to_thread(self._download, src)
                    downloads.append(path)
                    name = posixpath.basename(urllib.parse.urlsplit(src).path) or "download"
                    entries.append((path, name, False))
                    continue
                matches = _glob(source_root, src)
                if not matches:
                    raise StepFailed(f"{ins.name} failed: file not found in build context or "
                                     f"excluded by .dockerignore: stat {src}: file does not "
                                     "exist")
                entries += [(m, m.name, add and _is_archive(m)) for m in matches]
            if len(entries) > 1 and not dest_is_dir:
                raise DockerfileError(f"When using {ins.name} with more than one source file, "
                                      "the destination must be a directory and end with a /")
            owner = self._owner(stage, ins.flags.get("chown"))
            mode = _octal(ins.flags["chmod"]) if "chmod" in ins.flags else None
            digest = await asyncio.to_thread(_hash_entries, entries, owner, mode)
            kind = "multi" if len(entries) > 1 else (
                "dir" if entries[0][0].is_dir() else "file")
            created_by = f"{ins.name} {kind}:{digest} in {dest_path} "
            if await self.cached(stage, created_by, stage.config):
                return

            def put(root: Path, view: FsView) -> None:
                for path, name, unpack in entries:
                    target_dir, target_name = dest_path, None
                    if not path.is_dir() and not unpack and not dest_is_dir:
                        target_dir, target_name = posixpath.split(dest_path)
                        if Builder._exists_in(root, dest_path):
                            target_dir, target_name = dest_path, None
                    host = prepare_workdir(view, target_dir or "/")
                    _put(path, os.fsdecode(host), target_name or name, owner, mode, unpack)

            await self.commit_fs(stage, created_by, put)
        finally:
            for path in downloads:
                path.unlink(missing_ok=True)

    async def _from_root(self, ref: str) -> Path:
        previous = self._stage(ref)
        image_id = previous.image_id if previous is not None else await self._base_image(ref)
        return self.store.get(image_id).tree

    def _owner(self, stage: Stage, chown: str | None) -> tuple[int, int]:
        if not chown:
            return (0, 0)
        tree = self.store.get(stage.image_id).tree
        try:
            cred = resolve_user(os.fsencode(tree), chown, frozenset())
        except UserError as exc:
            raise DockerfileError(f"--chown={chown}: {exc}") from None
        return cred.ruid, cred.rgid

    def _download(self, url: str) -> Path:
        fd, tmp = tempfile.mkstemp(dir=self.context.parent, prefix="add-")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
        except OSError as exc:
            os.unlink(tmp)
            raise StepFailed(f"ADD {url}: download failed: {exc}") from None
        return Path(tmp)

    # -- commits and cache ---------------------------------------------------------

    async def cached(self, stage: Stage, created_by: str, config: dict) -> bool:
        if self.opts.nocache:
            return False
        found = await asyncio.to_thread(self._lookup, stage.image_id, created_by, config)
        if found is None:
            return False
        await self.say(" ---> Using cache\n")
        stage.image_id = found
        return True

    def _sources(self) -> set[str]:
        """With cache_from, as dockerd: a cached step counts only when it is
        one of those images or an ancestor of one (names it cannot find are
        skipped)."""
        if self.cache_sources is None:
            records = self.store.records()
            self.cache_sources = set()
            for ref in self.opts.cache_from:
                try:
                    image_id: str | None = self.store.resolve(ref)
                except StoreError:
                    continue
                while image_id and image_id not in self.cache_sources:
                    self.cache_sources.add(image_id)
                    image_id = records[image_id].parent if image_id in records else None
        return self.cache_sources

    def _lookup(self, parent: str, created_by: str, config: dict) -> str | None:
        allowed = self._sources() if self.opts.cache_from else None
        for rec_id, rec in self.store.records().items():
            if rec.parent != parent or (allowed is not None and rec_id not in allowed):
                continue
            img = self.store.get(rec_id)
            history = img.config.get("history") or []
            if (history and history[-1].get("created_by") == created_by
                    and (img.config.get("config") or {}) == config):
                return rec_id
        return None

    async def commit_config(self, stage: Stage, line: str) -> None:
        """A step that changes only the image config."""
        created_by = f"/bin/sh -c #(nop)  {line}"
        if await self.cached(stage, created_by, stage.config):
            return
        tree = self.store.get(stage.image_id).tree
        stage.image_id = await asyncio.to_thread(
            commitlib.commit, self.store, tree, stage.image_id,
            config=copy.deepcopy(stage.config), created_by=created_by)

    async def commit_fs(self, stage: Stage, created_by: str,
                        change: Callable[[Path, FsView], Any]) -> None:
        """A step that changes files: change(rootfs, view) on a
        copy-on-write rootfs of the current image, then a commit."""
        if await self.cached(stage, created_by, stage.config):
            return
        work = self.engine.root / "build" / secrets.token_hex(6)
        work.mkdir(parents=True)
        try:
            def run() -> str:
                tree = self.store.get(stage.image_id).tree
                rootfs = work / "rootfs"
                rootfslib.create(tree, rootfs)
                try:
                    change(rootfs, FsView(rootfs))
                except ContainerError as exc:
                    raise StepFailed(str(exc)) from None
                return commitlib.commit(self.store, rootfs, stage.image_id,
                                        config=copy.deepcopy(stage.config),
                                        created_by=created_by)
            stage.image_id = await asyncio.to_thread(run)
        finally:
            await asyncio.to_thread(rmtree, work)


# -- helpers ---------------------------------------------------------------------------

def _glob(root: Path, pattern: str) -> list[Path]:
    """Sources inside the context (or a stage's tree) matching pattern;
    never outside it."""
    rel = posixpath.normpath(pattern.lstrip("/"))
    if rel == ".." or rel.startswith("../"):
        raise DockerfileError(f"forbidden path outside the build context: {pattern}")
    if rel == ".":
        return [root]
    parts = rel.split("/")
    found = [root]
    for part in parts:
        nxt = []
        for base in found:
            if base.is_symlink() or not base.is_dir():
                continue
            if any(c in part for c in "*?["):
                nxt += sorted(p for p in base.iterdir() if fnmatchcase(p.name, part))
            elif os.path.lexists(base / part):
                nxt.append(base / part)
        found = nxt
    return found


def _octal(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise DockerfileError(f"invalid --chmod={text}: give octal permissions such as 0755")
    return mode


def _is_archive(path: Path) -> bool:
    if not path.is_file() or path.is_symlink():
        return False
    with open(path, "rb") as f:
        head = f.read(512)
    if detect(head[:6]):
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def _hash_entries(entries: list[tuple[Path, str, bool]], owner: tuple[int, int],
                  mode: int | None) -> str:
    """A digest of what a COPY/ADD would write: names, types, modes and
    contents (the cache key Docker's `file:<digest>` stands for)."""
    h = hashlib.sha256(repr((owner, mode)).encode())
    for path, name, unpack in entries:
        h.update(f"\0{name}\0{unpack}\0".encode())
        for full, rel in _walk(path):
            st = os.lstat(full)
            h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(full).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
    return h.hexdigest()


def _walk(path: Path):   # noqa: ANN202 - iterator of (host path, relative name)
    yield str(path), "."
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                yield full, os.path.relpath(full, path)


def _put(src: Path, dest_dir: str, name: str, owner: tuple[int, int], mode: int | None,
         unpack: bool) -> None:
    """Write src into the container directory dest_dir: a directory's
    contents, a file as `name`, or an archive's contents (ADD)."""
    if unpack:
        with open(src, "rb") as f:
            extract_tar(f, dest_dir, owner=None)
        return
    with tempfile.TemporaryFile() as buf:
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for full, rel in _walk(src):
                arc = posixpath.normpath(rel if src.is_dir() else name)
                if arc == "." and src.is_dir():
                    continue
                info = tar.gettarinfo(full, arcname=arc)
                if mode is not None and not info.issym():
                    info.mode = mode
                if info.isreg():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        buf.seek(0)
        extract_tar(buf, dest_dir, owner=owner)
