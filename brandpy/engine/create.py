"""`docker create`: the request's Config and HostConfig checked, merged with
the image's config as Docker merges them, and the container's mounts
worked out from Binds, Mounts, Tmpfs and the image's VOLUMEs."""

from __future__ import annotations

import posixpath
import signal
import socket
from dataclasses import dataclass, field

from brandpy import pathnames
from brandpy.runtime.devices import Device
from brandpy.runtime.run_setup import ContainerError
from brandpy.runtime.sandbox import Ulimit
from brandpy.supervise.container import parse_cpuset

from .errors import InvalidParameter
from .validate import RESOURCES

RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")


def parse_signal(text: str | int | None, default: int = signal.SIGTERM) -> int:
    """SIGTERM, TERM or 15, as docker accepts them."""
    if text is None or text == "":
        return default
    if isinstance(text, int) or text.isdigit():
        n = int(text)
        if 0 < n < signal.NSIG:
            return n
        raise InvalidParameter(f"Invalid signal: {text}")
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidParameter(f"Invalid signal: {text}") from None


@dataclass
class MountSpec:
    """One mount of the container, as inspect's MountPoint shows it."""
    type: str            # bind | volume | tmpfs
    destination: str
    source: str = ""     # host path (bind), volume name (volume)
    rw: bool = True
    mode: str = ""
    options: str = ""    # tmpfs options as given (not enforced, see README)

    def mount_point(self, volume_dir: str = "") -> dict:
        mp = {"Type": self.type, "Source": volume_dir or self.source,
              "Destination": self.destination, "Mode": self.mode, "RW": self.rw,
              "Propagation": "rprivate" if self.type == "bind" else ""}
        if self.type == "volume":
            mp.update(Name=self.source, Driver="local")
        return mp


@dataclass
class Mounts:
    specs: list[MountSpec] = field(default_factory=list)

    def add(self, spec: MountSpec) -> None:
        if not spec.destination.startswith("/"):
            raise InvalidParameter(f"invalid mount config: mount path must be absolute: "
                                   f"{spec.destination}")
        spec.destination = posixpath.normpath(spec.destination)
        if spec.destination == "/":
            raise InvalidParameter("invalid mount config: destination can't be '/'")
        if any(s.destination == spec.destination for s in self.specs):
            raise InvalidParameter(f"Duplicate mount point: {spec.destination}")
        self.specs.append(spec)

    def covers(self, path: str) -> bool:
        return any(s.destination == posixpath.normpath(path) for s in self.specs)


def parse_bind(text: str) -> MountSpec:
    """`-v SRC:DST[:OPTS]`: SRC an absolute host path (bind) or a volume
    name; `-v DST` alone is an anonymous volume."""
    parts = text.split(":")
    if len(parts) == 1:
        return MountSpec("volume", parts[0])
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidParameter(f"invalid volume specification: '{text}'")
    src, dst = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 else []
    for opt in opts:
        if opt not in ("ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "shared",
                       "rshared", "slave", "rslave", "consistent", "cached", "delegated"):
            raise InvalidParameter(f"invalid mode: {opt}")
    rw = "ro" not in opts
    mode = ",".join(opts)
    if src.startswith("/"):
        return MountSpec("bind", dst, posixpath.normpath(src), rw, mode)
    return MountSpec("volume", dst, pathnames.volume_name(src), rw, mode)


def parse_mount(m: dict) -> MountSpec:
    """One entry of HostConfig.Mounts (`--mount type=...`)."""
    if not isinstance(m, dict):
        raise InvalidParameter("json: cannot unmarshal value into Go struct field "
                               "HostConfig.Mounts of type mount.Mount")
    kind = m.get("Type") or "volume"
    target = m.get("Target") or ""
    if not target:
        raise InvalidParameter(f"invalid mount config for type \"{kind}\": field Target must not be "
                               "empty")
    rw = not m.get("ReadOnly")
    source = m.get("Source") or ""
    if kind == "bind":
        if not source.startswith("/"):
            raise InvalidParameter(f"invalid mount config for type \"bind\": invalid mount "
                                   f"path: '{source}' mount path must be absolute")
        return MountSpec("bind", target, posixpath.normpath(source), rw)
    if kind == "volume":
        return MountSpec("volume", target, source and pathnames.volume_name(source), rw)
    if kind == "tmpfs":
        if source:
            raise InvalidParameter("invalid mount config for type \"tmpfs\": field Source "
                                   "must not be specified")
        opts = m.get("TmpfsOptions") or {}
        return MountSpec("tmpfs", target, "", rw, options=",".join(
            f"{k}={v}" for k, v in opts.items()))
    raise InvalidParameter(f"mount type {kind!r} is not supported: use bind, volume or tmpfs")


def container_mounts(host_config: dict, image_volumes: dict | None) -> Mounts:
    mounts = Mounts()
    for bind in host_config.get("Binds") or []:
        mounts.add(parse_bind(bind))
    for m in host_config.get("Mounts") or []:
        mounts.add(parse_mount(m))
    for dst, opts in (host_config.get("Tmpfs") or {}).items():
        mounts.add(MountSpec("tmpfs", dst, "", "ro" not in opts.split(","), options=opts))
    for dst in image_volumes or {}:
        if not mounts.covers(dst):
            mounts.add(MountSpec("volume", dst))
    return mounts


def check_restart_policy(host_config: dict) -> dict:
    policy = dict(host_config.get("RestartPolicy") or {})
    name = policy.get("Name") or ""
    if name not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy '{name}': use no, always, "
                               "unless-stopped or on-failure[:max-retries]")
    retries = int(policy.get("MaximumRetryCount") or 0)
    if retries < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count can't be negative")
    if retries and name != "on-failure":
        raise InvalidParameter("invalid restart policy: maximum retry count can only be used "
                               "with 'on-failure'")
    if name not in ("", "no") and host_config.get("AutoRemove"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    return {"Name": name or "no", "MaximumRetryCount": retries}


def no_new_privileges(opts: list[str]) -> bool:
    """--security-opt no-new-privileges[=true|false|:true]: setuid and
    setgid programs do not elevate."""
    nnp = False
    for opt in opts:
        key, _, value = opt.partition("=" if "=" in opt else ":")
        if key == "no-new-privileges":
            nnp = value != "false"
    return nnp


def security_options(opts: list[str], cdir_profile: str) -> tuple[str, list[str]]:
    """(the runtime's seccomp setting, warnings) from HostConfig.SecurityOpt.
    The CLI sends a seccomp profile's content (it reads the file itself);
    the engine stores it at cdir_profile for the runtime."""
    seccomp, warnings = "", []
    for opt in opts:
        key, sep, value = opt.partition("=" if "=" in opt else ":")
        if key == "seccomp":
            seccomp = value if value in ("unconfined", "builtin", "default") else cdir_profile
        elif key == "no-new-privileges":
            continue    # no_new_privileges() reads it
        elif key in ("apparmor", "label", "systempaths", "writable-cgroups"):
            warnings.append(f"SecurityOpt {opt}: not applied (brandpy uses no LSM or "
                            "kernel mounts)")
        else:
            raise InvalidParameter(f"invalid --security-opt: {opt!r}")
    return seccomp, warnings


def seccomp_profile_text(opts: list[str]) -> str | None:
    for opt in opts:
        key, _, value = opt.partition("=")
        if key == "seccomp" and value not in ("unconfined", "builtin", "default"):
            return value
    return None


def ulimits(host_config: dict) -> list[dict]:
    """HostConfig.Ulimits as the shim's spec carries them (checked here, so
    a bad one is a 400 at create)."""
    out = []
    for u in host_config.get("Ulimits") or []:
        if not isinstance(u, dict):
            raise InvalidParameter("invalid Ulimits: expected {\"Name\", \"Soft\", \"Hard\"}")
        try:
            limit = Ulimit(str(u.get("Name")), int(u.get("Soft", 0)), int(u.get("Hard", 0)))
        except (TypeError, ValueError) as exc:
            raise InvalidParameter(str(exc)) from None
        out.append({"name": limit.name, "soft": limit.soft, "hard": limit.hard})
    return out


def devices(host_config: dict) -> list[dict]:
    """HostConfig.Devices as the shim's spec carries them (checked here, so
    a device that is not there is a 400 at create)."""
    out = []
    for d in host_config.get("Devices") or []:
        if not isinstance(d, dict) or not isinstance(d.get("PathOnHost"), str):
            raise InvalidParameter("invalid Devices: expected {\"PathOnHost\", "
                                   "\"PathInContainer\", \"CgroupPermissions\"}")
        try:
            device = Device(d["PathOnHost"], d.get("PathInContainer") or d["PathOnHost"],
                            d.get("CgroupPermissions") or "rwm")
            device.nodes()
        except ValueError as exc:
            raise InvalidParameter(str(exc)) from None
        out.append({"host": device.host, "guest": device.guest,
                    "permissions": device.permissions})
    return out


def cpuset(host_config: dict) -> str:
    spec = host_config.get("CpusetCpus") or ""
    if spec:
        try:
            parse_cpuset(spec)
        except ContainerError as exc:
            raise InvalidParameter(str(exc)) from None
    return spec


def port_bindings(host_config: dict, exposed: dict | None) -> dict[str, list[dict]]:
    """Requested bindings {"80/tcp": [{"HostIp", "HostPort"}]}, with -P's
    exposed ports added; an empty HostPort means "pick one" at start."""
    out: dict[str, list[dict]] = {}
    for port, bindings in (host_config.get("PortBindings") or {}).items():
        number, _, proto = port.partition("/")
        if not number.isdigit() or not 0 < int(number) < 65536 or proto not in ("", "tcp",
                                                                                 "udp"):
            raise InvalidParameter(f"invalid port specification: \"{port}\"")
        for b in bindings or [{}]:
            host_port = str((b or {}).get("HostPort") or "")
            if host_port and (not host_port.isdigit() or not 0 < int(host_port) < 65536):
                raise InvalidParameter(f"invalid port specification: \"{host_port}\"")
            out.setdefault(f"{number}/{proto or 'tcp'}", []).append(
                {"HostIp": (b or {}).get("HostIp") or "", "HostPort": host_port})
    if host_config.get("PublishAllPorts"):
        for port in exposed or {}:
            out.setdefault(port if "/" in port else port + "/tcp",
                           [{"HostIp": "", "HostPort": ""}])
    return out


def allocate_ports(bindings: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Pick free host ports for bindings without one (`-p 80`, `-P`), as
    Docker allocates from the ephemeral range."""
    out: dict[str, list[dict]] = {}
    for port, blist in bindings.items():
        proto = port.split("/")[1]
        for b in blist:
            host_port = b["HostPort"]
            if not host_port:
                kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((b["HostIp"] or "0.0.0.0", 0))
                    host_port = str(s.getsockname()[1])
            out.setdefault(port, []).append({"HostIp": b["HostIp"] or "0.0.0.0",
                                             "HostPort": host_port})
    return out


# What a container's cgroup enforces (as root, where the host has the
# controller: brandpy/runtime/cgroups.py), by HostConfig key.
CGROUP_RESOURCES = {"Memory": "memory", "MemorySwap": "memory", "NanoCpus": "cpu",
                    "CpuShares": "cpu", "CpuQuota": "cpu", "CpuPeriod": "cpu", "PidsLimit": "pids"}
UNENFORCED_HOST = {
    "Memory": "memory limits are not enforced (no cgroups)",
    "MemorySwap": "memory limits are not enforced (no cgroups)",
    "NanoCpus": "CPU limits are not enforced (no cgroups)",
    "CpuShares": "CPU shares are not enforced (no cgroups)",
    "CpuQuota": "CPU limits are not enforced (no cgroups)",
    "CpuPeriod": "CPU limits are not enforced (no cgroups)",
    "PidsLimit": "PID limits are not enforced (no cgroups)",
    "Sysctls": "sysctls are not applied",
    "Init": "--init is not provided: the entrypoint is the container's PID 1",
    "ShmSize": "the size of /dev/shm is not limited",
}


# Resources brandpy applies (at each start); every other one is a cgroup's.
APPLIED_RESOURCES = ("CpusetCpus", "Ulimits", "Devices")
UNSET: tuple[object, ...] = (None, 0, -1, False, "", [], {})


def enforced_resources(controllers: set[str]) -> list[str]:
    """The HostConfig keys cgroups with these controllers enforce."""
    return [key for key, kind in CGROUP_RESOURCES.items() if kind in controllers]


def unenforced(host_config: dict, controllers: set[str]) -> list[str]:
    """Warnings for settings brandpy accepts but does not enforce (with
    containers' cgroups having these controllers); docker prints them at
    create time (the README lists them too)."""
    out = []
    enforced = enforced_resources(controllers)
    for key, why in UNENFORCED_HOST.items():
        if key not in enforced and host_config.get(key) not in UNSET:
            out.append(f"{key}: {why}")
    for key in RESOURCES:
        if key not in UNENFORCED_HOST and key not in APPLIED_RESOURCES \
                and host_config.get(key) not in UNSET:
            out.append(f"{key}: resource limits are not enforced (no cgroups)")
    for mp in host_config.get("Tmpfs") or {}:
        if any(o.startswith(("size=", "nr_inodes=")) for o in host_config["Tmpfs"][mp].split(",")):
            out.append(f"Tmpfs {mp}: size limits are not enforced (a private directory stands "
                       "in for the tmpfs, emptied at each start)")
    return out
