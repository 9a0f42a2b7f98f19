"""The two kernel namespaces the monitor uses when it runs as root, both
made on its tracer thread before the entrypoint is spawned, so the
container inherits them (its own mount, PID, IPC and UTS namespaces are
made below those by its spawner, native/spawner.c: bundle._namespaces).

- network: a new namespace or an existing one joined (config.json's
  linux.namespaces), as runc would; dockerd and CNI then configure it.
- mount: a private one, only to give the container's host paths a
  world-traversable prefix. brandpy's container processes reach their files
  through real host paths, with real credentials when root, so a non-root
  container user needs search permission on every directory above its
  rootfs, volumes and /dev views; callers keep those in directories closed
  to others (dockerd's data-root is 0710, its exec-root 0700). In its own
  namespace the monitor bind-mounts each of them below PRIVATE_BASE, which
  exists only there: nothing is mounted on the host, and the mounts vanish
  with the monitor.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import replace

from brandpy.network import netns as netnslib
from brandpy.network.errors import NetworkError
from brandpy.runtime.sandbox import SandboxConfig

from .errors import OciError

CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PRIVATE_BASE = "/run/brandpy-oci"   # an empty directory on the host, a tmpfs in each monitor

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        raise OciError(f"{what}: {os.strerror(ctypes.get_errno())}")


def enter_network(netns: str) -> None:
    """Make ("new") or join (a path) the network namespace; "" keeps ours."""
    try:
        netnslib.enter(netns)
        if netns == netnslib.NEW:
            # a new namespace's lo is down: runc brings it up (its "loopback"
            # network), and so do we, so 127.0.0.1 works in the container when
            # the engine configures nothing else (dockerd without a bridge)
            netnslib.loopback_up()
    except NetworkError as exc:
        raise OciError(str(exc)) from None


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
           f"mount {source or fstype} on {target}")


def private_paths(config: SandboxConfig) -> SandboxConfig:
    """The config with its rootfs, state directory and volumes reached
    through bind mounts below PRIVATE_BASE, in a new private mount
    namespace of this thread (and the children it spawns)."""
    os.makedirs(PRIVATE_BASE, mode=0o755, exist_ok=True)
    _check(_libc.unshare(CLONE_NEWNS), "private mount namespace")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)   # nothing we mount reaches the host
    _mount("tmpfs", PRIVATE_BASE, "tmpfs", 0, "mode=755")

    def bind(source: str, name: str) -> str:
        target = os.path.join(PRIVATE_BASE, name)
        if os.path.isdir(source):
            os.mkdir(target)
        else:
            open(target, "x").close()
        _mount(source, target, None, MS_BIND | MS_REC)
        return target

    rootfs = bind(config.rootfs, "rootfs")
    volumes = [replace(v, host=rootfs if v.host == config.rootfs else bind(v.host, f"v{i}"))
               for i, v in enumerate(config.volumes)]
    return replace(config, rootfs=rootfs, state_dir=bind(config.state_dir, "state"),
                   volumes=volumes)
