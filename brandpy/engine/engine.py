"""The engine: the daemon's one object holding state. Containers (their
records, shims and lifecycle) live here; images, exec, volumes, networks,
build and system views are in their own modules and use it.

Runs on the daemon's asyncio loop; blocking work (filesystem trees, the
image store) goes to threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brandpy import pathnames
from brandpy.images import rootfs as rootfslib
from brandpy.images.fsutil import atomic_write_json, rmtree
from brandpy.images.runconfig import merge_image_config
from brandpy.images.store import ImageNotFound, Store, StoreError
from brandpy.runtime import cgroups
from brandpy.runtime.policy import capabilities, load_profile

from . import health, links, logdrivers, research, runtimes, shimproto, timefmt
from . import logs as logslib
from .attach import proxy
from .create import (
    APPLIED_RESOURCES,
    UNSET,
    Mounts,
    allocate_ports,
    check_restart_policy,
    container_mounts,
    cpuset,
    devices,
    enforced_resources,
    no_new_privileges,
    parse_signal,
    port_bindings,
    seccomp_profile_text,
    security_options,
    ulimits,
    unenforced,
)
from .errors import Conflict, EngineError, InvalidParameter, NotFound, NotModified
from .events import Events
from .filters import Filters
from .names import new_id, random_name
from .netsetup import NetSetup, choose_mode
from .networks import Networks
from .records import Record, Table
from .settings import Settings
from .shim import SPEC
from .shimclient import ShimClient, ShimForker, ShimGone, alive
from .syscall_view import spec_of
from .validate import RESOURCES
from .volumes import Volumes

SECCOMP_PROFILE = "seccomp.json"
SOCKET_MAX = 107          # sun_path holds 108 bytes with the NUL
DEFAULT_STOP_TIMEOUT = 10
DRIVER = "brandpy-linkfarm"
UNSUPPORTED = "brandpy-unsupported"    # the docker event of a call the ledger records


class Engine:
    def __init__(self, root: Path, settings: Settings | None = None) -> None:
        self.root = root
        self.settings = settings or Settings()
        root.mkdir(parents=True, exist_ok=True)
        self.store = Store(root / "images")
        self.cdir = root / "containers"
        self.cdir.mkdir(exist_ok=True)
        # A container running as another user (--user) reaches its files
        # through these directories: they must be traversable (not listable).
        for d in (root, self.cdir):
            d.chmod(d.stat().st_mode | 0o111)
        self.containers = Table()
        self.volumes = Volumes(root / "volumes")
        self.networks = Networks(root / "networks.json")
        self.netsetup = NetSetup(self, choose_mode())
        self.events = Events()
        self.started = time.time()
        self.daemon_id = _daemon_id(root / "engine-id")
        self.execs: dict = {}            # exec ID -> execs.ExecRecord
        self._create_lock = asyncio.Lock()   # name reservation
        self.shims = ShimForker()
        self.monitors: dict[str, health.Monitor] = {}    # container ID -> its health checks
        self.cgroups = cgroups.enforceable()   # what containers' cgroups enforce here

    def reconfigure(self, settings: Settings) -> None:
        """New settings from a reload (SIGHUP), announced as dockerd does:
        a daemon `reload` event with the reloadable settings."""
        self.settings = settings
        self.events.emit("daemon", "reload", self.daemon_id,
                         {**settings.reload_attributes(), "name": socket.gethostname()})

    # -- daemon start ---------------------------------------------------------

    async def startup(self) -> None:
        """Load the containers on disk, reconnect to the shims still running,
        tell the truth about those that died, and apply restart policies."""
        await self.shims.start()    # it imports while the daemon loads
        for leftover in self.cdir.glob(".*"):
            await asyncio.to_thread(rmtree, leftover)
        for d in sorted(self.cdir.iterdir()):
            try:
                rec = Record.load(d)
            except (OSError, ValueError, KeyError) as exc:
                print(f"brandpy: skipping container directory {d}: {exc}", file=sys.stderr)
                continue
            self.containers.add(rec)
        for rec in self.containers:
            if rec.state.get("Running") or alive(int(rec.state.get("ShimPid") or 0)):
                try:
                    await self._watch(rec, ShimClient(rec.dir))
                    continue
                except ShimGone:
                    pass
            if rec.running:
                self._shim_died(rec)
        await self.netsetup.startup()
        for rec in self.containers:
            if rec.running:
                continue
            policy = rec.host_config.get("RestartPolicy", {}).get("Name")
            if policy == "always" or (policy == "unless-stopped"
                                      and not rec.state.get("ManuallyStopped")):
                try:
                    await self.start(rec)
                except EngineError as exc:
                    print(f"brandpy: restarting {rec.name}: {exc}", file=sys.stderr)
            elif rec.host_config.get("AutoRemove") and rec.status != "created":
                await self.remove(rec, force=True, volumes=True)

    async def shutdown(self) -> None:
        """Stop watching; the shims and their containers keep running."""
        self.shims.close()
        for rec in self.containers:
            if rec.watcher is not None:
                rec.watcher.cancel()
        await self.netsetup.shutdown()

    # -- events -----------------------------------------------------------------

    def container_event(self, rec: Record, action: str, **extra: str) -> None:
        attrs = {**(rec.config.get("Labels") or {}), "image": rec.config.get("Image", ""),
                 "name": rec.name, **extra}
        self.events.emit("container", action, rec.id, attrs)

    # -- create -----------------------------------------------------------------

    async def create(self, body: dict, name: str = "") -> tuple[Record, list[str]]:
        """body: a ContainerConfigWrapper as validate.check() decodes it."""
        host_config = dict(body.get("HostConfig") or {})
        cfg = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        name = pathnames.container_name(name) if name else ""
        if not cfg.get("Image"):
            raise InvalidParameter("no image specified: give an image to create the "
                                   "container from")
        try:
            image = await asyncio.to_thread(self.store.get, cfg["Image"])
        except ImageNotFound:
            raise NotFound(f"No such image: {cfg['Image']}") from None
        except StoreError as exc:
            raise InvalidParameter(str(exc)) from None
        config = merge_image_config(cfg, image.config.get("config") or {})
        if not config.get("Entrypoint") and not config.get("Cmd"):
            raise InvalidParameter("no command specified")
        host_config["RestartPolicy"] = check_restart_policy(host_config)
        parse_signal(config.get("StopSignal"))
        mounts = container_mounts(host_config, config.get("Volumes"))
        network_mode = host_config.get("NetworkMode") or "default"
        host_config["NetworkMode"] = network_mode
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        networks = self.networks.attach_config(network_mode, endpoints)
        links.check(self.containers, host_config)
        host_config["LogConfig"] = self.log_config(host_config.get("LogConfig") or {})
        caps_add = list(host_config.get("CapAdd") or [])
        if host_config.get("Privileged"):
            caps_add.append("ALL")
        try:
            caps = capabilities(caps_add, host_config.get("CapDrop") or [])
            profile = seccomp_profile_text(host_config.get("SecurityOpt") or [])
            if profile is not None:
                load_profile(profile, caps)
        except ValueError as exc:
            raise InvalidParameter(str(exc)) from None
        seccomp, warnings = security_options(host_config.get("SecurityOpt") or [], "")
        port_bindings(host_config, config.get("ExposedPorts"))
        ulimits(host_config)
        devices(host_config)
        cpuset(host_config)
        warnings += unenforced(host_config, self.cgroups)
        warnings += self.netsetup.check_create(host_config, config)
        spec, research_warnings = research.from_labels(config.get("Labels") or {})
        warnings += research_warnings
        labels = config.get("Labels") or {}
        host_config["Runtime"] = runtimes.choose(
            host_config.get("Runtime") or "", spec.engine if research.ENGINE in labels else "",
            self.settings.default_runtime)

        async with self._create_lock:
            cid = new_id()
            while (self.cdir / cid[:12]).exists():
                cid = new_id()
            if name:
                other = self.containers.by_name(name)
                if other is not None:
                    raise Conflict(f'Conflict. The container name "/{name}" is already in use '
                                   f'by container "{other.id}". You have to remove (or rename) '
                                   "that container to be able to reuse that name.")
            else:
                name = random_name()
                while self.containers.by_name(name):
                    name = random_name()
            final = self.cdir / cid[:12]
            if len(str(final / "shim.sock")) > SOCKET_MAX:
                raise EngineError(f"the data root {self.root} is too deep: container sockets "
                                  f"under it would exceed {SOCKET_MAX} bytes; use a shorter "
                                  "--data-root")
            config["Hostname"] = config.get("Hostname") or cid[:12]
            config["Image"] = cfg["Image"]
            rec = Record(cid, name, timefmt.iso(), image.id, config, host_config, networks, [],
                         final)
            self.containers.add(rec)     # reserves the name while the rootfs is made
        tmp = self.cdir / f".tmp-{cid[:12]}"
        try:
            await asyncio.to_thread(self._make_dir, rec, tmp, image.tree, mounts, profile)
            os.rename(tmp, final)
        except BaseException:
            self.containers.discard(rec)
            await asyncio.to_thread(rmtree, tmp)
            raise
        self.container_event(rec, "create")
        return rec, warnings

    def log_config(self, given: dict) -> dict:
        """A container's LogConfig, with the daemon's driver and options
        filled in as dockerd does (the options when the driver is the
        default one), checked (400 at create)."""
        driver = given.get("Type") or self.settings.log_driver
        opts = dict(given.get("Config") or {})
        if driver == self.settings.log_driver:
            opts = {**self.settings.log_opts, **opts}
        logdrivers.check(driver, opts)
        return {"Type": driver, "Config": opts}

    def _make_dir(self, rec: Record, tmp: Path, tree: Path, mounts: Mounts,
                  profile: str | None) -> None:
        tmp.mkdir(mode=0o711)
        if profile is not None:
            (tmp / SECCOMP_PROFILE).write_text(profile)
        real = rec.dir
        rec.dir = tmp
        try:
            rootfslib.create(tree, rec.rootfs)
            (tmp / "run").mkdir()
            for spec in mounts.specs:
                source = ""
                if spec.type == "volume":
                    vol, created = self.volumes.create(spec.source, anonymous=not spec.source)
                    spec.source = vol["Name"]
                    source = vol["Mountpoint"]
                    if created or not any(Path(source).iterdir()):
                        self.volumes.populate(vol["Name"], rec.rootfs, spec.destination)
                elif spec.type == "bind" and not os.path.exists(spec.source):
                    os.makedirs(spec.source, exist_ok=True)   # as docker -v does
                rec.mounts.append(spec.mount_point(source))
            rec.save()
            rec.save_state()
        finally:
            rec.dir = real

    # -- networks (netsetup.py) -------------------------------------------------------

    async def connect(self, rec: Record, net: dict, cfg: dict) -> None:
        await self.netsetup.connect(rec, net, cfg)

    async def disconnect(self, rec: Record, net: dict) -> None:
        await self.netsetup.disconnect(rec, net)

    # -- start ------------------------------------------------------------------

    def shim_spec(self, rec: Record) -> dict:
        """What the shim needs to run the container, in the runtime's terms
        (SandboxConfig fields): made at each start."""
        cfg, hc = rec.config, rec.host_config
        env = list(cfg.get("Env") or [])
        names = {e.split("=", 1)[0] for e in env}
        # dockerd's order: the links' variables, which the container's own override
        env = [e for e in links.environment(self.containers, rec, self.netsetup.locate)
               if e.split("=", 1)[0] not in names] + env
        if "HOSTNAME" not in names:
            env.append(f"HOSTNAME={cfg['Hostname']}")
        if rec.tty and "TERM" not in names:
            env.append("TERM=xterm")
        volumes = []
        tmpfs_dir = rec.dir / "tmpfs"
        shutil.rmtree(tmpfs_dir, ignore_errors=True)    # tmpfs content lasts one run
        for i, mp in enumerate(rec.mounts):
            host, kind = mp["Source"], mp["Type"]
            if kind == "tmpfs":
                host = str(tmpfs_dir / str(i))
                os.makedirs(host, mode=0o1777)
                os.chmod(host, 0o1777)
            volumes.append({"host": host, "guest": mp["Destination"], "readonly": not mp["RW"],
                            "kind": kind})
        seccomp, _ = security_options(hc.get("SecurityOpt") or [],
                                      str(rec.dir / SECCOMP_PROFILE))
        cap_add = list(hc.get("CapAdd") or [])
        if hc.get("Privileged"):
            cap_add.append("ALL")
            seccomp = "unconfined"
        rec.published = allocate_ports(port_bindings(hc, cfg.get("ExposedPorts"))) \
            if self.netsetup.publishes(rec) else {}
        rec.save()
        ports = [{"host_port": int(b["HostPort"]), "container_port": int(port.split("/")[0]),
                  "proto": port.split("/")[1], "host_ip": b["HostIp"]}
                 for port, bindings in rec.published.items() for b in bindings]
        net = self.netsetup.spec(rec, ports)
        return {
            "id": rec.id,
            "netns": net["netns"],
            "sandbox": {"rootfs": str(rec.rootfs), "argv": rec.argv, "env": env,
                        "workdir": cfg.get("WorkingDir") or "/", "volumes": volumes,
                        "state_dir": str(rec.dir / "run"), "user": cfg.get("User") or "",
                        "hostname": cfg.get("Hostname") or "",
                        "domainname": cfg.get("Domainname") or "",
                        "seccomp": seccomp, "cap_add": cap_add,
                        "no_new_privileges": no_new_privileges(hc.get("SecurityOpt") or []),
                        "cap_drop": list(hc.get("CapDrop") or []),
                        **net["sandbox"],
                        "readonly_rootfs": bool(hc.get("ReadonlyRootfs")),
                        "group_add": list(hc.get("GroupAdd") or []),
                        "ulimits": ulimits(hc), "devices": devices(hc),
                        "cpuset": cpuset(hc), "limits": cgroups.Limits.of(hc).to_json(),
                        **self._pid_mode(hc.get("PidMode") or ""),
                        "name": rec.id},
            "tty": rec.tty, "open_stdin": bool(cfg.get("OpenStdin")),
            "stdin_once": bool(cfg.get("StdinOnce")),
            "console_size": hc.get("ConsoleSize"),
            "restart": hc.get("RestartPolicy"),
            "stop_signal": parse_signal(cfg.get("StopSignal")),
            **self.log_spec(rec),
            "research": spec_of(rec).to_json(),
        }

    def _pid_mode(self, mode: str) -> dict[str, Any]:
        """HostConfig.PidMode: "" a PID namespace of the container's own (as
        root, and unprivileged in a user namespace where the host allows
        one; else the PIDs are brandpy's numbering either way), "host"
        none, "container:NAME" that running container's."""
        if mode in ("", "private"):
            return {}
        if mode == "host":
            return {"host_pids": True}
        if not mode.startswith("container:"):
            raise InvalidParameter(f"invalid PID mode {mode!r}: use host or container:NAME")
        other = self.containers.get(mode.split(":", 1)[1])
        if not other.running or not other.state.get("Pid"):
            raise Conflict(f"cannot join PID namespace of a non running container: {other.name}")
        return {"pids_of": int(other.state["Pid"])}

    def log_spec(self, rec: Record) -> dict:
        """The shim's log file ("" for the none driver) and its rotation."""
        log = rec.host_config.get("LogConfig") or {}
        rotation = logdrivers.check(log.get("Type") or logdrivers.DEFAULT_DRIVER,
                                    log.get("Config") or {})
        return {"log": str(rec.log_path) if rotation else "",
                "log_rotation": rotation.to_json() if rotation else {}}

    async def start(self, rec: Record) -> None:
        try:
            await self._start(rec)
        except (NotFound, NotModified):
            raise
        except EngineError:
            # --rm: the watcher removes it when a shim ran; none did, so here
            if rec.host_config.get("AutoRemove") and rec.watcher is None and not (
                    rec.removing or rec.removed.is_set()):
                asyncio.get_running_loop().create_task(self._auto_remove(rec))
            raise

    async def _start(self, rec: Record) -> None:
        async with rec.lock:
            if rec.removed.is_set():
                raise NotFound(f"No such container: {rec.id}")
            if rec.running:
                raise NotModified("container already started")
            spec = self.shim_spec(rec)
            try:
                await asyncio.to_thread(atomic_write_json, rec.dir / SPEC, spec)
                rec.state = {**rec.state, "RestartCount": 0, "Error": ""}
                rec.save_state()
                shim = ShimClient(rec.dir)
                pid = await shim.spawn(self.shims)
            except BaseException:
                await self.netsetup.release(rec, events=False)
                raise
            try:
                await self.netsetup.plumb(rec, pid)
            except EngineError:
                os.kill(pid, signal.SIGKILL)    # it waits for the start that will not come
                raise
            await self._watch(rec, shim)
            pending, rec.pending_attach = rec.pending_attach, []
            connected = []
            for give in pending:
                if not give.done():
                    ack = asyncio.get_running_loop().create_future()
                    give.set_result((shim, ack))
                    connected.append(ack)
            if connected:
                await asyncio.wait(connected, timeout=5)
            try:
                await shim.request("start")
            except EngineError as exc:
                self._wake_exit_waiters(rec)    # --rm: the watcher removes it as the shim ends
                raise EngineError(f"failed to create task for container: failed to start "
                                  f"container {rec.short}: {exc}", exc.status) from None
            await self._settle(rec, lambda: rec.running or rec.status != "created")
        self.netsetup.refresh_hosts()

    async def has_stopped(self, rec: Record) -> bool:
        """Whether rec stopped, once the watcher has seen what its shim says."""
        await self._settle(rec, lambda: not rec.running)
        return not rec.running

    async def _settle(self, rec: Record, done: Callable[[], bool], timeout: float = 10) -> None:
        """Wait until the watcher has seen the state `done` checks for, so a
        request's reply and the next request agree with it."""
        deadline = time.monotonic() + timeout
        while not done() and rec.watcher is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _watch(self, rec: Record, shim: ShimClient) -> None:
        reply, reader, writer = await shim.connect("watch")
        rec.state = reply["state"]
        rec.shim = shim
        rec.watcher = asyncio.get_running_loop().create_task(self._follow(rec, reader, writer))
        if rec.running:
            self._health(rec, True)     # a daemon restarted: its checks start again

    def _health(self, rec: Record, running: bool) -> None:
        """Start (again) or stop a container's health checks."""
        monitor = self.monitors.pop(rec.id, None)
        if monitor is not None:
            monitor.stop()
        argv = health.probe_argv(rec.config)
        if running and argv is not None and not rec.removing:
            self.monitors[rec.id] = health.Monitor(self, rec, argv)

    async def _follow(self, rec: Record, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                msg = json.loads(line)
                if msg.get("event") == "exec_exit":
                    from .execs import exec_exited
                    exec_exited(self, msg["exec"], int(msg["exitCode"]))
                    continue
                if msg.get("event") == "unsupported":
                    err = int(msg["errno"])
                    self.container_event(rec, UNSUPPORTED, syscall=str(msg["syscall"]),
                                         errno=errno.errorcode.get(err, str(err)),
                                         reason=str(msg["reason"]))
                    continue
                rec.state = msg["state"]
                event = msg.get("event")
                if event == "die":
                    self._health(rec, False)
                    self.container_event(rec, "die", exitCode=str(msg.get("exitCode", 0)))
                    self._wake_exit_waiters(rec)
                elif event:
                    self.container_event(rec, event)
                    if event == "start":
                        self._health(rec, True)
        except asyncio.CancelledError:
            writer.close()
            raise
        except (ConnectionError, ValueError):
            pass
        writer.close()
        rec.shim = None
        self._health(rec, False)
        rec.reload_state()
        if rec.running:
            self._shim_died(rec)
        await self.netsetup.release(rec)
        self.netsetup.refresh_hosts()
        rec.watcher = None
        self._wake_exit_waiters(rec)
        if rec.host_config.get("AutoRemove") and not (rec.removing or rec.removed.is_set()):
            await self._auto_remove(rec)

    def _shim_died(self, rec: Record) -> None:
        """The shim is gone without recording an exit: its container was
        killed with it (PTRACE_O_EXITKILL), which is what we report."""
        rec.state.update(Status="exited", Running=False, Paused=False, Restarting=False,
                         Pid=0, ExitCode=128 + signal.SIGKILL, FinishedAt=timefmt.iso(),
                         Error="the container's shim died (killed or crashed); the "
                               "container's processes were killed with it")
        rec.save_state()
        self.container_event(rec, "die", exitCode=str(rec.state["ExitCode"]))

    async def _auto_remove(self, rec: Record) -> None:
        try:
            await self.remove(rec, force=True, volumes=True)
        except EngineError as exc:
            print(f"brandpy: auto-removing {rec.name}: {exc}", file=sys.stderr)

    def _wake_exit_waiters(self, rec: Record) -> None:
        waiters, rec.exit_waiters = rec.exit_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # -- stop, kill, pause ---------------------------------------------------------

    def stop_timeout(self, rec: Record, timeout: int | None) -> int:
        if timeout is not None:
            return timeout
        value = rec.config.get("StopTimeout")
        return DEFAULT_STOP_TIMEOUT if value is None else int(value)

    async def stop(self, rec: Record, sig: str | None = None, timeout: int | None = None
                   ) -> None:
        if not rec.running or rec.shim is None:
            raise NotModified("container already stopped")
        signum = parse_signal(sig) if sig else parse_signal(rec.config.get("StopSignal"))
        self.container_event(rec, "kill", signal=str(signum))
        try:
            await rec.shim.request("stop", signal=signum, timeout=self.stop_timeout(rec, timeout))
        except ShimGone:
            pass
        await self._settle(rec, lambda: not rec.running)
        self.container_event(rec, "stop")

    async def restart(self, rec: Record, sig: str | None = None, timeout: int | None = None
                      ) -> None:
        if rec.running:
            await self.stop(rec, sig, timeout)
        await self._settle(rec, lambda: rec.watcher is None)
        await self.start(rec)
        self.container_event(rec, "restart")

    async def kill(self, rec: Record, sig: str | None) -> None:
        signum = parse_signal(sig, default=signal.SIGKILL)
        if not rec.running or rec.shim is None:
            raise Conflict(f"cannot kill container: {rec.id}: container {rec.id} is not "
                           "running")
        self.container_event(rec, "kill", signal=str(signum))
        await rec.shim.request("signal", signal=signum)
        if signum == signal.SIGKILL:
            await self._settle(rec, lambda: not rec.running)

    async def pause(self, rec: Record, pause: bool) -> None:
        if not rec.running or rec.shim is None:
            raise Conflict(f"Container {rec.id} is not running")
        if rec.state.get("Restarting"):
            raise Conflict(f"Container {rec.id} is restarting, wait until the container is "
                           "running")
        try:
            await rec.shim.request("pause" if pause else "resume")
        except ShimGone:
            # It ended meanwhile, its shim with it: not running, as dockerd says.
            if await self.has_stopped(rec):
                raise Conflict(f"Container {rec.id} is not running") from None
            raise
        await self._settle(rec, lambda: bool(rec.state.get("Paused")) == pause)

    # -- wait and remove ------------------------------------------------------------

    async def wait(self, rec: Record, condition: str) -> dict:
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidParameter(f"invalid condition: {condition!r}: use not-running, "
                                   "next-exit or removed")
        if condition == "removed":
            await rec.removed.wait()
        elif condition == "next-exit" or rec.running:
            fut = asyncio.get_running_loop().create_future()
            rec.exit_waiters.append(fut)
            await fut
        error = rec.state.get("Error") or ""
        return {"StatusCode": int(rec.state.get("ExitCode") or 0),
                "Error": {"Message": error} if error else None}

    def users_of_volume(self, name: str) -> list[str]:
        return [r.id for r in self.containers
                if any(m.get("Name") == name for m in r.mounts)]

    async def remove(self, rec: Record, force: bool = False, volumes: bool = False) -> None:
        if rec.removing or rec.removed.is_set():
            raise Conflict(f"removal of container {rec.id} is already in progress")
        if rec.running and not force:
            # dockerd 20.10's words (docker-py's tests look for "You cannot remove")
            state = "paused" if rec.state.get("Paused") else \
                "restarting" if rec.state.get("Restarting") else "running"
            procedure = ("Unpause and then stop" if state == "paused" else "Stop") + \
                " the container before attempting removal or force remove"
            raise Conflict(f"You cannot remove a {state} container {rec.id}. {procedure}")
        rec.removing = True
        try:
            if rec.running and rec.shim is not None:
                try:
                    await rec.shim.request("stop", signal=signal.SIGKILL, timeout=0)
                except ShimGone:
                    pass
            await self._settle(rec, lambda: rec.watcher is None)
            async with rec.lock:
                self.containers.discard(rec)
                trash = self.cdir / f".rm-{rec.short}"
                os.rename(rec.dir, trash)
                await asyncio.to_thread(rmtree, trash)
                if self.cgroups:    # what a shim killed before its container's end left
                    await asyncio.to_thread(cgroups.Cgroup.left_by(rec.id).remove)
                rec.removed.set()
        finally:
            rec.removing = False
        for give in rec.pending_attach:
            if not give.done():
                give.cancel()
        if volumes:
            for mp in rec.mounts:
                name = mp.get("Name")
                if mp["Type"] == "volume" and name and self.volumes.exists(name):
                    vol = self.volumes.get(name)
                    if ("com.docker.volume.anonymous" in vol["Labels"]
                            and not self.users_of_volume(name)):
                        self.volumes.remove(name, False, [])
                        self.events.emit("volume", "destroy", name, {"driver": "local"})
        self.container_event(rec, "destroy")
        self.netsetup.refresh_hosts()

    async def rename(self, rec: Record, new: str) -> None:
        new = pathnames.container_name(new)
        if new == rec.name:
            raise Conflict("Renaming a container with the same name as its current name")
        other = self.containers.by_name(new)
        if other is not None:
            raise Conflict(f'Conflict. The container name "/{new}" is already in use by '
                           f'container "{other.id}". You have to remove (or rename) that '
                           "container to be able to reuse that name.")
        old, rec.name = rec.name, new
        self.netsetup.renamed(rec, old)
        self.container_event(rec, "rename", oldName="/" + old)

    async def top(self, rec: Record) -> list[int]:
        """Host PIDs of the container's processes."""
        if not rec.running or rec.shim is None:
            raise Conflict(f"container {rec.id} is not running")
        reply = await rec.shim.request("top")
        return [host for _, host in reply["processes"]]

    # -- streams ------------------------------------------------------------------

    async def pull_log(self, rec: Record) -> None:
        """Before the log is read: have a running container's shim log what
        its processes wrote so far, so a `docker logs` right after they
        wrote sees it (the shim's loop may not have read it yet)."""
        shim = rec.shim
        if rec.running and shim is not None:
            with contextlib.suppress(EngineError):   # ShimGone too: it ended, logged all
                await shim.request("pull")

    async def attach(self, rec: Record, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, *, stdin: bool, stdout: bool, stderr: bool,
                     logs: bool, stream: bool, detach_keys: bytes) -> None:
        """Replay the log (logs), then stream the container's stdio
        (stream): at once when it runs, else from its next start."""
        if logs:
            await self.pull_log(rec)
            async for entry in logslib.read(rec.log_path, stdout=stdout, stderr=stderr, tail=-1,
                                            since=None, until=None, follow=False,
                                            alive=lambda: False):
                kind = shimproto.STDOUT if entry.stream == "stdout" else shimproto.STDERR
                writer.write(entry.data if rec.tty else shimproto.frame(kind, entry.data))
            await writer.drain()
        if not stream:
            return
        ack = None
        if rec.running and rec.shim is not None:
            shim = rec.shim
        else:
            give = asyncio.get_running_loop().create_future()
            rec.pending_attach.append(give)
            try:
                shim, ack = await give
            except asyncio.CancelledError:
                return      # removed before it started
        try:
            _, sr, sw = await shim.connect("attach", stdin=stdin, stdout=stdout, stderr=stderr)
        finally:
            if ack is not None and not ack.done():
                ack.set_result(None)
        self.container_event(rec, "attach")
        result = await proxy(sr, sw, reader, writer, tty=rec.tty, stdin=stdin,
                             detach_keys=detach_keys)
        if result == "detached":
            self.container_event(rec, "detach")

    async def resize(self, rec: Record, height: int, width: int) -> None:
        if not rec.running or rec.shim is None:
            raise Conflict(f"Container {rec.id} is not running")
        if height <= 0 or width <= 0:
            raise InvalidParameter("resize needs positive h and w")
        await rec.shim.request("resize", h=height, w=width)
        self.container_event(rec, "resize", height=str(height), width=str(width))

    # -- prune, update --------------------------------------------------------------

    async def prune_containers(self, f: Filters) -> dict:
        until = f.get("until")
        limit = timefmt.parse_since(until[0]) if until else None
        deleted, space = [], 0
        for rec in self.containers:
            if rec.running or not f.match_labels(rec.config.get("Labels") or {}):
                continue
            if any(_label_match(rec, neg) for neg in f.get("label!")):
                continue
            if limit is not None and timefmt.to_ns(rec.created) > limit:
                continue
            space += await asyncio.to_thread(_tree_size, rec.dir)
            try:
                await self.remove(rec)
            except EngineError:
                continue
            deleted.append(rec.id)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": space}

    async def update(self, rec: Record, body: dict) -> list[str]:
        """`docker update`: the restart policy and resources given (a zero
        value leaves one as it is, as in dockerd) are stored, and the limits
        a cgroup enforces set on the running container; the warnings say
        what is not enforced (as at create) and what applies from the next
        start."""
        changed = {k: v for k, v in body.items() if k in RESOURCES and v not in UNSET}
        cpuset(changed)
        ulimits(changed)
        devices(changed)
        warnings = unenforced(changed, self.cgroups)
        if (body.get("RestartPolicy") or {}).get("Name"):     # the CLI sends an empty one
            changed["RestartPolicy"] = check_restart_policy(
                {"RestartPolicy": body["RestartPolicy"],
                 "AutoRemove": rec.host_config.get("AutoRemove")})
        if not changed:
            return []
        live = [key for key in enforced_resources(self.cgroups) if key in changed]
        if live and rec.running and rec.shim is not None:
            # as dockerd: the running container's cgroup at once
            await rec.shim.request("update", limits=cgroups.Limits.of(
                {**rec.host_config, **changed}).to_json())
        rec.host_config.update(changed)
        rec.save()
        if rec.running:
            warnings += [f"{key}: applies from the container's next start"
                         for key in (*APPLIED_RESOURCES, "RestartPolicy") if key in changed]
        self.container_event(rec, "update")
        return warnings


def _label_match(rec: Record, want: str) -> bool:
    labels = rec.config.get("Labels") or {}
    key, eq, value = want.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _tree_size(path: Path) -> int:
    from .volumes import usage
    return usage(path)


def _daemon_id(path: Path) -> str:
    try:
        return str(json.loads(path.read_text()))
    except FileNotFoundError:
        ident = new_id()
        atomic_write_json(path, ident)
        return ident
