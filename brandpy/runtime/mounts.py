"""The container's mount table: which host directory backs each guest path.

Everything here is bytes: guest programs may use paths that are not UTF-8.
Guest paths are absolute and canonical (no `.`, `..`, `//`, symlinks); the
resolver in `pathres` produces them component by component. Each mount's
host directory (or file) is held open as an O_PATH descriptor, the root
every walk inside that mount starts from: the host path string is read
once, when the mount is first used, never again by a walk.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .acting import at_home
from .errors import Errno
from .linux import O_PATH

if TYPE_CHECKING:
    from .ptys import PtyView

PINS = b"binds.json"                    # in the state directory: MountTable.pin
PINNED = ("bind", "volume")             # the operator's mounts, whose host paths may be reached


@dataclass(frozen=True)
class Mount:
    guest: bytes            # canonical guest mount point, b"/" for the rootfs
    host: bytes             # host directory or file backing it
    readonly: bool = False
    # rootfs | bind | volume | tmpfs | proc | sys | dev | device | masked, and the
    # container's /dev/pts: "pts", the view of its ptys, each one "pty" (ptys.py)
    kind: str = "bind"
    # a file the engine rewrites by renaming a new one over it, in the state
    # directory (out of the container's reach): opened by name at each use
    reopen: bool = False
    source: bytes = b""     # what /proc/self/mounts names as the source ("" = the kind's)
    made: bool = False      # by the container's own mount(2) (syscalls/handlers/mount.py)

    @property
    def components(self) -> tuple[bytes, ...]:
        return split(self.guest)

    @property
    def shown_readonly(self) -> bool:
        """Whether the container sees it read-only (statfs's ST_RDONLY, "ro"
        in /proc/self/mountinfo) as Docker makes it. A given device node
        (/dev's, --device's without w, a masked file's /dev/null) is
        read-only here by brandpy's own checks alone: in Docker it is a
        node of /dev's tmpfs or a read-write bind of /dev/null."""
        return self.readonly and not (self.kind in ("device", "pty") or self.masks_file)

    @property
    def masks_file(self) -> bool:
        """A masked file (/proc/keys...): /dev/null bound over it, as runc does."""
        return self.kind == "masked" and self.host == b"/dev/null"


def split(path: bytes) -> tuple[bytes, ...]:
    return tuple(c for c in path.split(b"/") if c)


def join(components: tuple[bytes, ...] | list[bytes]) -> bytes:
    return b"/" + b"/".join(components)


@dataclass
class MountTable:
    mounts: list[Mount] = field(default_factory=list)
    # host directories standing in for a guest directory (synthesized /proc
    # listings): only consulted when mapping host paths back
    aliases: dict[bytes, bytes] = field(default_factory=dict)
    # a host PID's container PID, 0 outside the container (PidMap.to_guest):
    # /proc/PID paths mapped back name the container's PIDs
    pid_of: Callable[[int], int] | None = None
    # the container's ptys: the names below its "pts" mount (ptys.py)
    ptys: PtyView | None = None

    def __post_init__(self) -> None:
        self._roots: dict[Mount, tuple[int, bool]] = {}   # mount -> (fd, is dir)
        self._lock = threading.Lock()
        self.resolver: Any = None     # pathres.Resolver over this table, made on first use
        # what mount(2) covered, by mount point, the last on top (unstack)
        self._hidden: dict[bytes, list[tuple[Mount, tuple[int, bool] | None]]] = {}
        self._sort()

    def root_fd(self, mount: Mount) -> tuple[int, bool, bool]:
        """An O_PATH fd of a mount's host directory or file (following the
        host path: it is the operator's), whether it is a directory, and
        whether the caller owns it. It is opened on first use (the
        supervisor opens every mount's before the container runs:
        native_engine.mounts_changed) and kept until close(), so that a
        container which renames or replaces what lies on a bind's host path
        (a file bind inside another of its mounts) cannot make it another
        host file, as a kernel bind mount pins its inode. Only the engine's
        `reopen` files are opened by name at each use, so that one it
        rewrote (/etc/hosts) is seen at once. A pty's is the view's, and
        so is /dev/ptmx's with a private devpts instance (ptys.py).
        Opened in the supervisor's mount namespace (acting.at_home)."""
        if self.ptys is not None:
            if mount.kind == "pty":
                return self.ptys.root(mount), False, False
            if (ptmx := self.ptys.ptmx_root(mount)) >= 0:
                return ptmx, False, False
        with self._lock:
            root = self._roots.get(mount)
            if root is not None:
                return (*root, False)
            fd = at_home(lambda: os.open(mount.host, O_PATH | os.O_CLOEXEC))
            mode = os.fstat(fd).st_mode
            if mount.reopen and stat.S_ISREG(mode):
                return fd, False, True
            root = self._roots[mount] = (fd, stat.S_ISDIR(mode))
            return (*root, False)

    def pin(self, state: bytes) -> None:
        """Open every bind's and volume's root now, before the container
        runs, and record what each is (device, inode) in the state
        directory: the daemon's own view of the running container
        (engine/fsview.py) opens the host paths again and must find the
        same, not what the container put there meanwhile."""
        pins = {}
        for m in self.mounts:
            if m.kind in PINNED and not m.reopen:
                try:
                    fd, _, owned = self.root_fd(m)
                except OSError:
                    continue          # a walk into it fails as the kernel would
                st = os.fstat(fd)
                if owned:
                    os.close(fd)
                pins[os.fsdecode(m.guest)] = [st.st_dev, st.st_ino]
        if state:
            with open(os.path.join(state, PINS), "w") as f:
                json.dump(pins, f)

    def check_pins(self, state: bytes) -> None:
        """What pin() recorded, checked: Errno(ESTALE) for a bind whose host
        path names another file or directory now."""
        try:
            with open(os.path.join(state, PINS)) as f:
                pins = json.load(f)
        except FileNotFoundError:
            return                    # a container never started: nothing pinned
        for m in self.mounts:
            pin = pins.get(os.fsdecode(m.guest))
            if pin is None or m.kind not in PINNED or m.reopen:
                continue
            try:
                fd, _, owned = self.root_fd(m)
                st = os.fstat(fd)
                if owned:
                    os.close(fd)
                same = [st.st_dev, st.st_ino] == pin
            except OSError:
                same = False
            if not same:
                raise Errno(errno.ESTALE, f"the host path of the mount at {os.fsdecode(m.guest)} "
                            "names another file than when the container started (renamed or "
                            "replaced meanwhile): restart the container")

    def copy(self) -> MountTable:
        """Another namespace's table, the same mounts (a mount namespace
        unshared): its root descriptors are its own duplicates."""
        other = MountTable(list(self.mounts), self.aliases, self.pid_of, self.ptys)
        with self._lock:
            for mount, (fd, is_dir) in self._roots.items():
                other._roots[mount] = (os.dup(fd), is_dir)
            for guest, below in self._hidden.items():
                other._hidden[guest] = [(m, (os.dup(r[0]), r[1]) if r else None)
                                        for m, r in below]
        return other

    def stack(self, mount: Mount, fd: int | None = None, is_dir: bool = False) -> None:
        """mount(2): on top of what is at its mount point, which unstack()
        uncovers again. `fd`: the root the caller already holds (a bind's
        source found by a race-free walk, never reopened by host path)."""
        with self._lock:
            for m in [m for m in self.mounts if m.guest == mount.guest]:
                self._hidden.setdefault(mount.guest, []).append((m, self._roots.pop(m, None)))
            if fd is not None:
                self._roots[mount] = (fd, is_dir)
            self.mounts = [m for m in self.mounts if m.guest != mount.guest] + [mount]
        self._sort()

    def unstack(self, mount: Mount) -> None:
        """umount(2)."""
        with self._lock:
            root = self._roots.pop(mount, None)
            if root is not None:
                os.close(root[0])
            self.mounts = [m for m in self.mounts if m is not mount]
            below = self._hidden.get(mount.guest)
            if below:
                m, r = below.pop()
                self.mounts.append(m)
                if r is not None:
                    self._roots[m] = r
        self._sort()

    def replace(self, old: Mount, new: Mount) -> None:
        """A mount changed in place (remounted, moved), its root kept."""
        with self._lock:
            root = self._roots.pop(old, None)
            if root is not None:
                self._roots[new] = root
            self.mounts = [new if m is old else m for m in self.mounts]
        self._sort()

    def close(self) -> None:
        with self._lock:
            for fd, _ in self._roots.values():
                os.close(fd)
            self._roots.clear()
            for below in self._hidden.values():
                for _, root in below:
                    if root is not None:
                        os.close(root[0])
            self._hidden.clear()

    def __del__(self) -> None:
        self.close()

    def _sort(self) -> None:
        # Deepest guest mount point first so lookups find the innermost mount.
        self.mounts.sort(key=lambda m: len(m.components), reverse=True)
        self._by_guest = {m.components: m for m in self.mounts}
        # Reverse lookup prefers the longest host prefix (the most specific
        # mount). A masked path is no answer: its host node (/dev/null, an
        # empty directory) is a stand-in whose own name is elsewhere, so a
        # host /dev/null on stdin stays /dev/null, not /proc/keys.
        self._by_host = sorted((m for m in self.mounts if m.kind != "masked"),
                               key=lambda m: len(m.host), reverse=True)

    def add(self, mount: Mount) -> None:
        self.mounts = [m for m in self.mounts if m.guest != mount.guest] + [mount]
        with self._lock:
            gone = [m for m in self._roots if m.guest == mount.guest]
            for m in gone:
                os.close(self._roots.pop(m)[0])
        self._sort()

    def is_mountpoint(self, components: tuple[bytes, ...]) -> Mount | None:
        return self._by_guest.get(components)

    @property
    def root(self) -> Mount:
        return self._by_guest[()]

    def lookup(self, components: tuple[bytes, ...] | list[bytes]) -> tuple[Mount, int]:
        """The mount holding a canonical guest path and how many leading
        components its mount point consumes."""
        comps = tuple(components)
        for depth in range(len(comps), -1, -1):
            mount = self._by_guest.get(comps[:depth])
            if mount is not None:
                if mount.kind == "pts" and depth < len(comps) and self.ptys is not None:
                    pty = self.ptys.mount(comps[depth])     # one of its ptys, by number
                    if pty is not None:
                        return pty, depth + 1
                return mount, depth
        raise LookupError("mount table has no root mount")

    def to_host(self, components: tuple[bytes, ...] | list[bytes]) -> tuple[bytes, Mount]:
        mount, depth = self.lookup(components)
        rest = components[depth:]
        if not rest:
            return mount.host, mount
        host = mount.host.rstrip(b"/") + b"/" + b"/".join(rest)
        return host, mount

    def to_guest(self, host: bytes) -> bytes | None:
        """Map a host path (from /proc/PID/cwd, /proc/PID/fd/N, a socket
        name...) back to the guest path that names it; None when no mount
        covers it."""
        if self.ptys is not None and (pty := self.ptys.guest_of(host)) is not None:
            return pty
        for alias, guest in self.aliases.items():
            if host == alias or host.startswith(alias + b"/"):
                return guest + host[len(alias):]
        for mount in self._by_host:
            base = mount.host.rstrip(b"/")
            if host == base or host == mount.host:
                return mount.guest
            if host.startswith(base + b"/"):
                rest = split(host[len(base) + 1:])
                if mount.kind == "proc" and base == b"/proc":
                    pids = self._container_pids(rest)
                    if pids is None:
                        return None
                    rest = pids
                return join(split(mount.guest) + rest)
        return None

    def _container_pids(self, rest: tuple[bytes, ...]) -> tuple[bytes, ...] | None:
        """/proc's PID and task/TID components as the container numbers
        them (a cwd or fd in /proc/PID, from the kernel, names host PIDs);
        None for a process outside the container."""
        if self.pid_of is None:
            return rest
        out = list(rest)
        for i in (0, 2):
            if len(out) > i and out[i].isdigit() and (i == 0 or out[1] == b"task"):
                guest = self.pid_of(int(out[i]))
                if not guest:
                    return None
                out[i] = b"%d" % guest
        return tuple(out)

    def mountpoints_to_create(self) -> list[Mount]:
        """Bind mounts whose guest mount point must exist in the rootfs so
        directory listings show them, as Docker creates them."""
        return [m for m in self.mounts if m.guest != b"/"]


def host_is_dir(path: bytes) -> bool:
    try:
        return os.path.isdir(path)
    except OSError:
        return False
