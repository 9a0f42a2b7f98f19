"""/version, /info and /system/df."""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata
from typing import TYPE_CHECKING

from brandpy.images import rootfs
from brandpy.runtime import cgroups, landlock, namespaces

from . import imageviews, runtimes, timefmt
from .fsview import PLACEHOLDERS
from .records import Record
from .views import summary
from .volumes import usage

if TYPE_CHECKING:
    from .engine import Engine

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def brandpy_version() -> str:
    try:
        return metadata.version("brandpy")
    except metadata.PackageNotFoundError:
        return "0.0.0+source"


def version(api: str, min_api: str) -> dict:
    uname = platform.uname()
    details = {"ApiVersion": api, "MinAPIVersion": min_api, "Os": "linux",
               "Arch": ARCH.get(uname.machine, uname.machine), "KernelVersion": uname.release,
               "GitCommit": "", "GoVersion": "python" + platform.python_version(),
               "Experimental": "false", "BuildTime": ""}
    return {"Platform": {"Name": "brandpy"},
            "Components": [{"Name": "Engine", "Version": brandpy_version(), "Details": details}],
            "Version": brandpy_version(), **{k: v for k, v in details.items()
                                             if k != "Experimental"}}


def _meminfo() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def info(engine: Engine) -> dict:
    recs = list(engine.containers)
    running = sum(1 for r in recs if r.running and not r.state.get("Paused"))
    paused = sum(1 for r in recs if r.state.get("Paused"))
    uname = platform.uname()
    cg = engine.cgroups
    return {
        "ID": engine.daemon_id, "Containers": len(recs), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": len(recs) - running - paused,
        "Images": len(engine.store.records()), "Driver": "brandpy-linkfarm",
        "DriverStatus": [["Backing Filesystem", "hard-link farm of the image tree"],
                         ["Root Dir", str(engine.root)]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file", "local", "none"]},
        "MemoryLimit": "memory" in cg, "SwapLimit": False, "KernelMemoryTCP": False,
        "CpuCfsPeriod": "cpu" in cg, "CpuCfsQuota": "cpu" in cg, "CPUShares": "cpu" in cg,
        "CPUSet": False, "PidsLimit": "pids" in cg, "IPv4Forwarding": engine.netsetup.net is not None, "Debug": False,
        "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": False,
        "NGoroutines": 0, "SystemTime": timefmt.iso(),
        "LoggingDriver": engine.settings.log_driver,
        "CgroupDriver": "cgroupfs" if cg else "none", "CgroupVersion": cgroups.version(), "NEventsListener": len(
            engine.events.subscribers),
        "KernelVersion": uname.release, "OperatingSystem": _os_name(), "OSVersion": "",
        "OSType": "linux", "Architecture": uname.machine, "NCPU": os.cpu_count() or 1,
        "MemTotal": _meminfo(), "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": engine.settings.registries.info(),
        "GenericResources": None, "DockerRootDir": str(engine.root), "HttpProxy": "",
        "HttpsProxy": "", "NoProxy": "", "Name": socket.gethostname(),
        "Labels": list(engine.settings.labels),
        "ExperimentalBuild": False, "ServerVersion": brandpy_version(),
        "Runtimes": runtimes.info(), "DefaultRuntime": engine.settings.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
        "SecurityOptions": ["name=brandpy-syscall-translation", *landlock.security_options(),
                            engine.netsetup.security_option()],
        "Warnings": [
            *([] if landlock.abi() else [f"WARNING: {landlock.UNAVAILABLE}"]),
            *([f"WARNING: {why}"] if (why := namespaces.unavailable()) else []),
            *([] if {"memory", "cpu", "pids"} <= cg else [
                "WARNING: no cgroups (the daemon is not root, or the host has no such "
                f"controllers): {', '.join(sorted({'memory', 'cpu', 'pids'} - cg))} limits "
                "are not enforced"]),
            *([] if engine.netsetup.net is not None else [
                "WARNING: containers share the host's network stack (an unprivileged daemon "
                "makes no network namespaces): ports are translated, the host's loopback is "
                "closed to them"]),
        ],
    }


def disk_usage(engine: Engine, types: list[str]) -> dict:
    want = set(types) or {"container", "image", "volume", "build-cache"}
    out: dict = {}
    if "image" in want:
        images = imageviews.summaries(engine, with_containers=True)
        out["LayersSize"] = engine.store.disk_usage()
        out["Images"] = images
    if "container" in want:
        names = imageviews.names(engine)
        items = []
        for rec in engine.containers:
            s = summary(rec, names)
            s["SizeRw"] = changed_size(engine, rec)
            s["SizeRootFs"] = engine.store.get(rec.image_id).size if _has(engine, rec) else 0
            items.append(s)
        out["Containers"] = items
    if "volume" in want:
        vols = []
        for vol in engine.volumes.all():
            users = engine.users_of_volume(vol["Name"])
            vols.append({**vol, "UsageData": {"Size": usage(engine.volumes.data_path(vol["Name"])),
                                              "RefCount": len(users)}})
        out["Volumes"] = vols
    if "build-cache" in want:
        out["BuildCache"] = []
    return out


def _has(engine: Engine, rec: Record) -> bool:
    return rec.image_id in engine.store.records()


def changed_size(engine: Engine, rec: Record) -> int:
    """Bytes of the files the container added or changed (SizeRw)."""
    if not _has(engine, rec):
        return 0
    tree = engine.store.get(rec.image_id).tree
    total = 0
    for kind, path in rootfs.diff(rec.rootfs, tree, PLACEHOLDERS):
        if kind == "D":
            continue
        try:
            st = os.lstat(os.path.join(rec.rootfs, path.lstrip("/")))
        except OSError:
            continue
        if not os.path.isdir(os.path.join(rec.rootfs, path.lstrip("/"))):
            total += st.st_size
    return total
