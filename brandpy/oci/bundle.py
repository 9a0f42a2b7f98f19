"""A bundle's config.json read into a Plan: the SandboxConfig brandpy runs,
with the process, hooks and namespaces around it. Every field brandpy cannot
honour is either an error (when ignoring it would change what the container
may do or see in a way the caller relies on) or a note logged at create,
never silently dropped."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from brandpy.runtime import cgroups
from brandpy.runtime.cgroups import Limits
from brandpy.runtime.devices import DEFAULT_DEVICES, Device, device_nodes
from brandpy.runtime.namespaces import NAMESPACES_OFF, kernel_walls, unavailable
from brandpy.runtime.policy import ALL_CAPS, CAP_NUMBERS, DEFAULT_CAPS
from brandpy.runtime.sandbox import MASKED, READONLY_PROC, SandboxConfig, Volume

from .errors import OciError
from .hooks import Hook, parse_hooks
from .options import Options
from .process import Note, ProcessPlan, parse_process
from .seccomp import docker_profile
from .state import ContainerDir

ANNOTATION = "org.brandpy."
ENGINES = ("native", "python")

# Mount points brandpy provides itself; what the container gets there instead.
EMULATED = {
    "/proc": "brandpy's emulated /proc",
    "/dev": "brandpy's own /dev (null, zero, full, random, urandom, tty, console, pts, shm)",
    "/dev/pts": "brandpy's view of the container's own ptys in the host's devpts",
    "/dev/shm": "brandpy's private /dev/shm",
    "/dev/mqueue": "nothing: POSIX message queues are the host's (no IPC namespace)",
    "/sys": "the host's /sys, read-only (no sysfs namespace)",
    "/sys/fs/cgroup": "the host's cgroup tree, read-only under /sys (no cgroup namespace)",
}
KERNEL_TYPES = {"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "tmpfs"}
PROPAGATION = {"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
               "runbindable", "bind", "rbind", "rw", "ro", "rro", "rrw", "defaults"}


@dataclass
class Plan:
    sandbox: SandboxConfig
    process: ProcessPlan
    bundle: str
    engine: str = "native"
    netns: str = ""                  # "": the runtime's; "new"; or a namespace file to join
    nfds: int = 3                    # stdio plus --preserve-fds
    hooks: dict[str, list[Hook]] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> Plan:
        data = json.loads(path.read_text())
        sb = data["sandbox"]
        sb["volumes"] = [Volume(**v) for v in sb["volumes"]]
        sb["devices"] = [Device(**d) for d in sb.get("devices", [])]
        sb["limits"] = Limits(**sb.get("limits", {}))
        data["sandbox"] = SandboxConfig(**sb)
        data["process"] = ProcessPlan.from_json(data["process"])
        data["hooks"] = {k: [Hook(**h) for h in v] for k, v in data["hooks"].items()}
        data["notes"] = [tuple(n) for n in data["notes"]]
        return cls(**data)


def read_config(bundle: str) -> dict[str, Any]:
    path = Path(bundle)
    if not path.is_dir():
        raise OciError(f"bundle {bundle}: no such directory: pass --bundle DIR, the directory "
                       "holding config.json and the root filesystem")
    try:
        text = (path / "config.json").read_text()
    except FileNotFoundError:
        raise OciError(f"bundle {bundle} has no config.json: write one "
                       "(brandpy-runc spec makes a template)") from None
    except OSError as exc:
        raise OciError(f"cannot read {path / 'config.json'}: {exc.strerror}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OciError(f"{path / 'config.json'} is not valid JSON: {exc.msg} at line "
                       f"{exc.lineno} column {exc.colno}") from None
    if not isinstance(config, dict):
        raise OciError(f"{path / 'config.json'} must hold a JSON object")
    version = config.get("ociVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        raise OciError(f"config.json: ociVersion {version!r} is not supported: brandpy runs "
                       "OCI runtime spec 1.x bundles")
    return config


def make_plan(bundle: str, config: dict[str, Any], cdir: ContainerDir, defaults: Options,
              preserve_fds: int = 0) -> Plan:
    """config.json → Plan. Writes the converted seccomp profile and the
    tmpfs directories into the container's directory."""
    bundle = os.path.abspath(bundle)
    notes: list[Note] = []
    root = config.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str):
        raise OciError("config.json: root.path is required (the root filesystem)")
    rootfs = os.path.join(bundle, root["path"])
    if not os.path.isdir(rootfs):
        raise OciError(f"root filesystem {rootfs}: no such directory: fix root.path in "
                       "config.json or unpack the image there")
    if "process" not in config:
        raise OciError("config.json has no process: brandpy needs a process to create a "
                       "container")
    process, pnotes = parse_process(config["process"])
    notes += pnotes
    annotations = config.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
        raise OciError("config.json: annotations must map strings to strings")
    linux = config.get("linux") or {}
    caps = _capabilities(process, notes)
    volumes = [Volume(rootfs, "/", readonly=True, kind="rootfs")] if root.get("readonly") else []
    volumes += _mounts(config.get("mounts") or [], bundle, cdir, notes)
    netns = _namespaces(linux, notes)
    # as root the container gets a PID namespace of the kernel's unless
    # config.json shares the runtime's (no "pid" entry), as runc
    host_pids = not any(ns.get("type") == "pid" for ns in linux.get("namespaces") or [])
    seccomp = "unconfined"
    if linux.get("seccomp") is not None:
        profile, snotes = docker_profile(linux["seccomp"], caps)
        notes += snotes
        path = cdir.path / "seccomp.json"
        path.write_text(json.dumps(profile))
        seccomp = str(path)
    devices = _devices(linux, notes)
    limits = _limits(linux)
    _linux_notes(linux, notes, enforced_keys(limits))
    opts = _annotations(annotations, defaults)
    sandbox = SandboxConfig(
        rootfs=rootfs, argv=process.argv, env=process.env, workdir=process.cwd,
        volumes=volumes, state_dir=str(cdir.sandbox_dir), user=f"{process.uid}:{process.gid}",
        hostname=_str(config, "hostname"), domainname=_str(config, "domainname"),
        kernel_release=opts["kernel-release"], personality=opts["personality"] == "true",
        seccomp=seccomp, cap_add=sorted(caps - DEFAULT_CAPS), cap_drop=sorted(DEFAULT_CAPS - caps),
        no_new_privileges=(config.get("process") or {}).get("noNewPrivileges") is True,
        strict=opts["strict"] == "true", cpuset=opts["cpuset"], devices=devices,
        limits=limits, name=cdir.id, host_pids=host_pids)
    return Plan(sandbox=sandbox, process=process, bundle=bundle, engine=opts["engine"],
                netns=netns, nfds=3 + preserve_fds, hooks=parse_hooks(config.get("hooks")),
                annotations=annotations, notes=notes)


def _str(config: dict[str, Any], key: str) -> str:
    value = config.get(key) or ""
    if not isinstance(value, str):
        raise OciError(f"config.json: {key} must be a string")
    return value


def _annotations(annotations: dict[str, str], defaults: Options) -> dict[str, str]:
    opts = {"engine": defaults.engine, "kernel-release": defaults.kernel_release,
            "personality": "false", "strict": "false", "cpuset": ""}
    for key, value in annotations.items():
        if not key.startswith(ANNOTATION):
            continue
        name = key[len(ANNOTATION):]
        if name not in opts:
            raise OciError(f"unknown annotation {key}: brandpy reads "
                           f"{', '.join(ANNOTATION + k for k in opts)}")
        opts[name] = value
    if opts["engine"] not in ENGINES:
        raise OciError(f"{ANNOTATION}engine {opts['engine']!r}: use native or python")
    for flag in ("personality", "strict"):
        if opts[flag] not in ("true", "false"):
            raise OciError(f"{ANNOTATION}{flag} must be true or false")
    return opts


def own_capabilities() -> frozenset[str]:
    """This process's permitted set: what a real-root container can get."""
    with open("/proc/self/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("CapPrm:"))
    return frozenset(name for name, bit in CAP_NUMBERS.items() if mask >> bit & 1)


def _capabilities(process: ProcessPlan, notes: list[Note]) -> frozenset[str]:
    # runc leaves a process without a capabilities object every capability
    caps = frozenset(process.caps) if process.caps is not None else ALL_CAPS
    if os.geteuid() == 0:   # credentials are real: only what we hold can be given
        missing = caps - own_capabilities()
        if missing:
            notes.append(("warning", f"capabilities {', '.join(sorted(missing))} not given: "
                          "the runtime itself does not hold them"))
            caps -= missing
    return caps


def _mounts(mounts: list[Any], bundle: str, cdir: ContainerDir,
            notes: list[Note]) -> list[Volume]:
    volumes: list[Volume] = []
    emulated: list[str] = []
    for i, m in enumerate(mounts):
        if not isinstance(m, dict) or not isinstance(m.get("destination"), str) \
                or not m["destination"].startswith("/"):
            raise OciError(f"mounts[{i}].destination must be an absolute path")
        dest = os.path.normpath(m["destination"])
        kind = m.get("type") or ""
        options = [o for o in m.get("options") or [] if isinstance(o, str)]
        bind = kind == "bind" or "bind" in options or "rbind" in options
        if dest in ("/proc", "/sys", "/dev") or (dest in EMULATED and not bind):
            emulated.append(f"{dest} ({kind or 'bind'}): {EMULATED[dest]}")
            continue
        unenforced = sorted(set(o for o in options if "=" not in o) - PROPAGATION)
        if bind:
            source = os.path.join(bundle, m.get("source") or "")
            if not os.path.exists(source):
                raise OciError(f"mounts[{i}]: bind source {source} for {dest} does not exist")
            volumes.append(Volume(source, dest, readonly="ro" in options or "rro" in options))
        elif kind == "tmpfs":
            host = cdir.path / "tmpfs" / str(i)
            host.mkdir(parents=True)
            mode = next((o[5:] for o in options if o.startswith("mode=")), "1777")
            host.chmod(int(mode, 8))
            volumes.append(Volume(str(host), dest, readonly="ro" in options, kind="tmpfs"))
            notes.append(("info", f"tmpfs at {dest}: a private directory emptied at delete "
                          "(size not enforced)"))
        elif kind in KERNEL_TYPES:
            notes.append(("warning", f"{kind} mount at {dest} not made: brandpy provides "
                          f"{kind} file systems only at their usual places"))
            continue
        else:
            raise OciError(f"mounts[{i}]: type {kind!r} at {dest} is not supported: brandpy "
                           "translates paths instead of mounting; use a bind mount")
        if unenforced:
            notes.append(("info", f"mount {dest}: options {','.join(unenforced)} not enforced"))
    if emulated:
        notes.append(("info", "mounts brandpy provides itself: " + "; ".join(emulated)))
    return volumes


# What the supervisor emulates above each namespace the container's spawner
# makes (native/spawner.c), or in its stead without kernel walls
VIEWS = {"pid": "the entrypoint is PID 1 and only the container's processes are visible",
         "uts": "hostname and domainname emulated",
         "mount": "the mount table emulated, by path translation",
         "ipc": ""}


def _namespaces(linux: dict[str, Any], notes: list[Note]) -> str:
    """The network namespace to make or join (as root), and notes saying
    what becomes of each namespace config.json names. The container's
    spawner makes new mount, PID, IPC and UTS namespaces where it has
    kernel walls (as root, and unprivileged in a user namespace of its own
    where the host allows one: namespaces.kernel_walls) and joins none of
    them by path; the supervisor emulates the views above them (or, without
    walls, instead of them: then the IPC objects are the host's)."""
    root = os.geteuid() == 0
    kernel = kernel_walls()
    netns = ""
    said: list[str] = []
    for ns in linux.get("namespaces") or []:
        kind, path = ns.get("type"), ns.get("path") or ""
        if kind in VIEWS:
            view = VIEWS[kind]
            if kernel:
                made = "a new kernel namespace" + (f"; {view}" if view else "")
            elif view:
                made = f"no kernel namespace: {view}"
            else:
                notes.append(("warning", "ipc namespace " + (f"{path} not joined and " if path
                                                             else "") +
                              "not isolated: without kernel namespaces the container shares "
                              "the host's SysV IPC and POSIX message queues"))
                continue
            if path:
                notes.append(("warning", f"{kind} namespace {path} not joined (brandpy joins no "
                              f"{kind} namespace by path): the container gets {made}"))
            else:
                said.append(f"{kind} ({made})")
        elif kind == "network":
            if not root:
                notes.append(("warning", "network namespace not isolated: making or joining "
                              "one needs root; the container shares the runtime's network"))
            elif path:
                netns = path
                said.append(f"network (joined {path})")
            else:
                netns = "new"
                said.append("network (a new kernel namespace)")
        elif kind == "user":
            if path:
                notes.append(("warning", f"user namespace {path} not joined: brandpy joins no "
                              "user namespace by path"))
            if root:
                notes.append(("info", "user namespace not created: identities are real host "
                              "ids" + (", uid/gid mappings not applied"
                                       if linux.get("uidMappings") else "")))
            else:
                said.append("user (emulated: fakeroot-style identities" +
                            (", in a new kernel namespace mapping only the runtime's uid)"
                             if kernel else ")"))
        elif kind in ("cgroup", "time"):
            notes.append(("warning", f"{kind} namespace not isolated: brandpy makes none"
                          + (f" and does not join {path}" if path else "")
                          + f"; the container shares the host's {kind} namespace"
                          + (" (its /proc/PID/cgroup shows the root, 0::/)"
                             if kind == "cgroup" else "")))
        else:
            raise OciError(f"linux.namespaces: unknown type {kind!r}")
    if said:
        notes.append(("info", "namespaces honoured: " + "; ".join(said)))
    if not kernel and any(ns.get("type") in VIEWS for ns in linux.get("namespaces") or []):
        notes.append(("warning", "no kernel namespaces for this container: "
                      + (unavailable() or f"{NAMESPACES_OFF}=1 (test-only) switched them off")))
    return netns


def _devices(linux: dict[str, Any], notes: list[Note]) -> list[Device]:
    """linux.devices: brandpy makes no device nodes, so each is the host's
    node of that type and number, bound at its path (with the host node's
    mode and owner). Docker's default devices are in every container's /dev."""
    out = []
    for dev in linux.get("devices") or []:
        if not isinstance(dev, dict) or not isinstance(dev.get("path"), str) or \
                dev.get("type") not in ("c", "u", "b", "p"):
            raise OciError("config.json: each of linux.devices needs a path and a type "
                           "(c, u, b or p)")
        path = dev["path"]
        if path.startswith("/dev/") and os.fsencode(path[5:]) in DEFAULT_DEVICES:
            continue
        host = _host_node(dev) if dev["type"] != "p" else None
        if host is None:
            notes.append(("warning", f"device {path} not created: brandpy makes no device "
                          "nodes and the host has no node of its type and number in /dev"))
            continue
        out.append(Device(host, path))
    return out


def _host_node(dev: dict[str, Any]) -> str | None:
    """The host's node of dev's type and number: at dev's path, else the
    first in /dev."""
    try:
        want = os.makedev(int(dev.get("major", 0)), int(dev.get("minor", 0)))
    except (TypeError, ValueError):
        raise OciError(f"config.json: device {dev['path']}: major and minor must be "
                       "numbers") from None
    kind = stat.S_IFBLK if dev["type"] == "b" else stat.S_IFCHR

    def matches(st: os.stat_result) -> bool:
        return stat.S_IFMT(st.st_mode) == kind and st.st_rdev == want

    try:
        if matches(os.stat(dev["path"], follow_symlinks=False)):
            return dev["path"]
    except OSError:
        pass
    return next((os.fsdecode(node) for node, st in device_nodes(b"/dev") if matches(st)), None)


# linux.resources that a container's cgroup enforces (brandpy/runtime/cgroups.py)
# -> (its controller, Limits field)
OCI_LIMITS = {("memory", "limit"): ("memory", "memory"), ("memory", "swap"): ("memory", "memory_swap"),
              ("cpu", "quota"): ("cpu", "cpu_quota"), ("cpu", "period"): ("cpu", "cpu_period"),
              ("cpu", "shares"): ("cpu", "cpu_shares"), ("pids", "limit"): ("pids", "pids")}


def _limits(linux: dict[str, Any]) -> Limits:
    resources = linux.get("resources") or {}
    values = {}
    for (group, key), (_, name) in OCI_LIMITS.items():
        value = (resources.get(group) or {}).get(key) if isinstance(
            resources.get(group), dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value:
            values[name] = value
    return Limits(**values)


def enforced_keys(limits: Limits) -> set[tuple[str, str]]:
    """The linux.resources given that cgroups here enforce."""
    controllers = cgroups.enforceable()
    return {(group, key) for (group, key), (kind, name) in OCI_LIMITS.items()
            if kind in controllers and getattr(limits, name)}


def _linux_notes(linux: dict[str, Any], notes: list[Note],
                 enforced: set[tuple[str, str]]) -> None:
    limits = []
    for group, values in (linux.get("resources") or {}).items():
        if group == "devices" or not isinstance(values, dict):
            continue
        limits += [f"{group}.{k}={v}" for k, v in values.items()
                   if v not in (None, 0, "", [], {}) and (group, k) not in enforced]
    if limits:
        notes.append(("warning", f"linux.resources not enforced (no cgroup controller for "
                      f"them here, or not one brandpy sets): {', '.join(limits)}"))
    ours = {"/" + p.decode().lstrip("/") for p in MASKED + READONLY_PROC}
    for key in ("maskedPaths", "readonlyPaths"):
        extra = sorted(set(linux.get(key) or []) - ours)
        if extra:
            notes.append(("warning", f"linux.{key} {', '.join(extra)} not applied: brandpy "
                          "masks Docker's default list"))
    if linux.get("sysctl"):
        notes.append(("warning", f"linux.sysctl {sorted(linux['sysctl'])} not applied: "
                      "brandpy's /proc/sys is the host's, read-only"))
    for key in ("intelRdt", "personality", "rootfsPropagation", "mountLabel", "uidMappings"):
        if linux.get(key) and not (key == "uidMappings" and os.geteuid() == 0):
            notes.append(("warning", f"linux.{key} not applied by brandpy"))
    if linux.get("cgroupsPath"):
        notes.append(("debug", f"linux.cgroupsPath {linux['cgroupsPath']}: brandpy makes no "
                      "cgroups"))
