"""The Sandbox: the container's kernel view.

Handlers read it; they keep no state of their own. It holds the root
filesystem and mount table, the container's processes (with the PID map),
and the statistics the supervisor collects.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from .linux import pidfd_getfd, pidfd_open
from .mounts import Mount, MountTable, split
from .pathres import Resolver
from .process import Errno, Process
from .stats import Stats

# Devices a container gets from the host, as Docker's default /dev has them.
HOST_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {b"fd": b"/proc/self/fd", b"stdin": b"/proc/self/fd/0",
             b"stdout": b"/proc/self/fd/1", b"stderr": b"/proc/self/fd/2",
             b"ptmx": b"pts/ptmx", b"core": b"/proc/kcore"}


@dataclass(frozen=True)
class Volume:
    host: str
    guest: str
    readonly: bool = False
    kind: str = "bind"

    @classmethod
    def parse(cls, spec: str) -> Volume:
        """`HOST:GUEST[:ro|rw]` as `docker run -v` takes it."""
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
            raise ValueError(f"invalid volume {spec!r}: expected HOST:GUEST[:ro], "
                             "GUEST an absolute path")
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise ValueError(f"invalid volume mode {mode!r} in {spec!r}: use ro or rw")
        return cls(host=os.path.abspath(parts[0]), guest=parts[1], readonly=mode == "ro")


@dataclass
class SandboxConfig:
    rootfs: str
    argv: list[str]
    env: list[str] = field(default_factory=list)
    workdir: str = "/"
    volumes: list[Volume] = field(default_factory=list)
    state_dir: str = ""          # per-container scratch: /dev, /dev/shm


class PidMap:
    """Container PIDs. Until PID virtualisation lands they equal host PIDs,
    but only the container's own processes are visible."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    def to_guest(self, host_pid: int) -> int:
        return host_pid

    def to_host(self, guest_pid: int) -> int | None:
        return guest_pid if guest_pid in self.sb.threads else None


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.rootfs = os.fsencode(os.path.realpath(config.rootfs))
        self.mounts = MountTable(build_mounts(config, self.rootfs))
        self.pids = PidMap(self)
        self.init_pid = 0                       # host PID of the entrypoint
        self.procs: dict[int, Process] = {}     # host tgid -> process
        self.threads: dict[int, Process] = {}   # host tid -> its process
        self.resolver = Resolver(self)
        self.stats = Stats()

    def process_of(self, host_pid: int) -> Process | None:
        return self.threads.get(host_pid)

    def add_thread(self, tid: int, proc: Process) -> None:
        self.procs.setdefault(proc.tgid, proc)
        proc.threads.add(tid)
        self.threads[tid] = proc

    def remove_thread(self, tid: int) -> None:
        proc = self.threads.pop(tid, None)
        if proc is None:
            return
        proc.threads.discard(tid)
        if not proc.threads:
            self.procs.pop(proc.tgid, None)
            if proc.pidfd is not None:
                os.close(proc.pidfd)
                proc.pidfd = None

    def grab_fd(self, proc: Process, fd: int) -> int:
        """A duplicate of one of the tracee's fds in the supervisor
        (pidfd_getfd), for handlers that operate on the tracee's files."""
        try:
            if proc.pidfd is None:
                proc.pidfd = pidfd_open(proc.tgid)
            return pidfd_getfd(proc.pidfd, fd)
        except OSError as exc:
            raise Errno(exc.errno or errno.EBADF) from None


def build_mounts(config: SandboxConfig, rootfs: bytes) -> list[Mount]:
    """The default container mounts (rootfs, /proc, /sys, a private /dev)
    plus the user's volumes, creating mount points as Docker does."""
    state = os.fsencode(config.state_dir)
    dev = os.path.join(state, b"dev")
    mounts = [
        Mount(b"/", rootfs, kind="rootfs"),
        Mount(b"/proc", b"/proc", kind="proc"),
        Mount(b"/sys", b"/sys", readonly=True, kind="sys"),
        Mount(b"/dev", dev, kind="dev"),
        Mount(b"/dev/pts", b"/dev/pts", kind="bind"),
        Mount(b"/dev/shm", os.path.join(dev, b"shm"), kind="tmpfs"),
    ]
    os.makedirs(os.path.join(dev, b"pts"), exist_ok=True)
    os.makedirs(os.path.join(dev, b"shm"), mode=0o1777, exist_ok=True)
    os.chmod(os.path.join(dev, b"shm"), 0o1777)
    for name in HOST_DEVICES:
        host = b"/dev/" + name.encode()
        if os.path.exists(host):
            placeholder = os.path.join(dev, name.encode())
            open(placeholder, "ab").close()
            mounts.append(Mount(b"/dev/" + name.encode(), host, kind="bind"))
    for name, target in DEV_LINKS.items():
        link = os.path.join(dev, name)
        if not os.path.lexists(link):
            os.symlink(target, link)
    for vol in config.volumes:
        host = os.fsencode(os.path.realpath(vol.host))
        if not os.path.exists(host):
            os.makedirs(host, exist_ok=True)   # docker run -v creates a missing host dir
        guest = b"/" + b"/".join(split(os.fsencode(vol.guest)))
        mounts.append(Mount(guest, host, readonly=vol.readonly, kind=vol.kind))
        _make_mountpoint(rootfs, guest, os.path.isdir(host))
    for guest in (b"/proc", b"/sys", b"/dev"):
        _make_mountpoint(rootfs, guest, True)
    return mounts


def _make_mountpoint(rootfs: bytes, guest: bytes, is_dir: bool) -> None:
    """Create the mount point inside the rootfs if it is missing, so listings
    of its parent show it. Best effort: the mount table, not this directory,
    is what makes the mount reachable, so a read-only rootfs or a symlink on
    the way (never followed here: it could point out of the rootfs) only
    hides the mount point from listings."""
    target = rootfs.rstrip(b"/")
    for comp in split(guest):
        target += b"/" + comp
        if os.path.islink(target):
            return
    if os.path.lexists(target):
        return
    try:
        if is_dir:
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "ab").close()
    except OSError:
        pass
