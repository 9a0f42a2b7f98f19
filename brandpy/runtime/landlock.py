"""The kernel's wall under the translation layer: Landlock.

Every process of a container is restricted, before it runs any container
code, to the host paths the translation legitimately hands its kernel: the
rootfs and each bind or volume (read-only ones without write rights), the
host /proc and /sys (read), the device nodes bound in /dev, the state
directory's files, the private /proc listings, and the files behind its
stdio. Not the host's /dev/pts: the container's ptys are opened by the
supervisor (every open, and TIOCGPTPEER: syscalls/handlers/tty.py). A translation bug or a time-of-check/time-of-use
race in the path layer then reaches nothing else of the host for what
Landlock controls: reading, writing, creating, removing, renaming, linking,
executing and truncating files, device ioctls, abstract unix sockets and
signals to processes outside the container. Metadata calls (stat, access,
readlink, chmod, chown, utimes, xattrs) and pathname unix-socket connects
are not Landlock-controlled; TCP (ABI 4) is left to the networking layer.

The rules are described here once and built into a ruleset by
native/landlock.c; the container's spawner (native/spawner.c) restricts
itself to it after PR_SET_NO_NEW_PRIVS, and forks every process the
supervisor starts in the container (the children of native/spawn.c, which
every engine uses), so that they share one Landlock domain.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from . import namespaces
from .mounts import split

if TYPE_CHECKING:
    from .sandbox import Sandbox

# LANDLOCK_ACCESS_FS_* (uapi linux/landlock.h)
EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13          # ABI 2
TRUNCATE = 1 << 14       # ABI 3
IOCTL_DEV = 1 << 15      # ABI 5
# LANDLOCK_SCOPE_* (ABI 6)
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

ALL = (1 << 16) - 1      # masked down to what the ABI handles
READ = READ_FILE | READ_DIR
DEVICE = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV

UNAVAILABLE = ("Landlock is not available on this kernel (or is disabled): containers are "
               "confined by syscall translation alone")

# The environment variable that turns the walls off, for the control cases
# of tests/security/test_walls.py only (they show the attacks work without).
TEST_OFF = "BRANDPY_TEST_NO_LANDLOCK"


@lru_cache(maxsize=1)
def abi() -> int:
    """The Landlock ABI version of the running kernel; 0 where it has none
    or it is disabled."""
    from brandpy._native import lib
    version: int = lib.bp_landlock_abi()
    return max(version, 0)


def handled(version: int) -> int:
    """Every filesystem right the ABI knows."""
    rights = (1 << 13) - 1
    if version >= 2:
        rights |= REFER
    if version >= 3:
        rights |= TRUNCATE
    if version >= 5:
        rights |= IOCTL_DEV
    return rights


def scopes(version: int) -> int:
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if version >= 6 else 0


@dataclass(frozen=True)
class Rule:
    """Rights allowed beneath a host path (or the file behind an fd)."""
    access: int
    path: bytes | None = None
    fd: int = -1


def _mount_rights(kind: str, readonly: bool) -> int:
    if kind == "proc":
        # Writable /proc: other users than root cannot write the host's
        # sysctls nor /proc/sysrq-trigger, and root's namespace has them
        # read-only (ns_mounts); the files of processes outside the
        # container are closed by Landlock's own ptrace scoping.
        return READ if readonly else READ | WRITE_FILE | TRUNCATE
    if kind in ("sys", "masked"):
        return READ
    if kind == "device":
        return READ_FILE | IOCTL_DEV if readonly else DEVICE
    return READ | EXECUTE if readonly else ALL


def _paths(sb: Sandbox) -> list[tuple[bytes, str, bool]]:
    """Every host path a process of this container reaches, as (path, mount
    kind, read-only): its mount table; the private /proc listings and
    files, copies of the tracee's own view (root opens them for writing as
    it may open the procfs files: /proc's rights); and the host directories
    of the tmpfs mounts it makes. Landlock allows these (rules) and its
    root holds these alone (ns_mounts)."""
    return [(m.host, m.kind, m.readonly) for m in sb.mounts.mounts] + \
        [(sb.procfs.base, "proc", False), (_tmpfs_base(sb), "tmpfs", False)]


def rules(sb: Sandbox, stdio: tuple[int, ...] = ()) -> list[Rule]:
    """What a process of this container may reach: its paths, and the
    files behind the fds it is handed."""
    found = [Rule(_mount_rights(kind, readonly), path=path)
             for path, kind, readonly in _paths(sb)]
    for fd in stdio:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
            continue    # pipes and sockets are not Landlock's
        mode_flags = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        rights = (READ_FILE if mode_flags != os.O_WRONLY else 0) | \
            (WRITE_FILE | TRUNCATE if mode_flags != os.O_RDONLY else 0)
        if not stat.S_ISREG(mode):
            rights |= IOCTL_DEV
        found.append(Rule(rights, fd=fd))
    return found


def _tmpfs_base(sb: Sandbox) -> bytes:
    """Where the tmpfs mounts the container makes get their host
    directories (syscalls/handlers/mount.py), made now: the walls name it."""
    os.makedirs(sb.tmpfs_base, mode=0o711, exist_ok=True)
    return sb.tmpfs_base


class LandlockError(OSError):
    """The ruleset could not be built (a rule's path is gone...)."""


def ruleset(sb: Sandbox, stdio: tuple[int, ...] = ()) -> int:
    """A ruleset fd for one process of this container (the caller closes
    it), or -1 where the kernel has no Landlock (see status)."""
    version = abi()
    if not version:
        warn_unavailable()
        return -1
    if os.environ.get(TEST_OFF) == "1":
        return -1
    from brandpy._native import ffi, lib
    found = rules(sb, stdio)
    keep = [ffi.new("char[]", r.path) if r.path is not None else ffi.NULL for r in found]
    arr = ffi.new("struct bp_landlock_rule[]", len(found))
    for i, (rule, path) in enumerate(zip(found, keep, strict=True)):
        arr[i].path, arr[i].fd, arr[i].access = path, rule.fd, rule.access
    failed = ffi.new("int *")
    fd: int = lib.bp_landlock_ruleset(arr, len(found), handled(version), scopes(version), failed)
    if fd < 0:
        where = "creating the ruleset" if failed[0] < 0 else _describe(found[failed[0]])
        raise LandlockError(-fd, f"Landlock: {where}: {os.strerror(-fd)}")
    return fd


# bp_ns_mount.how (native/brandpy.h)
NS_RW, NS_RO, NS_MASK, NS_KEEP = 0, 1, 2, 3


def ns_mounts(sb: Sandbox) -> list[tuple[bytes, int]]:
    """What the container's mount namespace is made of (no flag of the
    host's cleared): its writable paths bound writable (parents before what they
    hold), its read-only ones (/proc/sys...) read-only, the paths it reaches
    as the host has them (/sys, its devices) kept, then Docker's masked
    paths hidden. The spawner then pivots into a root holding these paths
    alone (native/spawner.c: pivot), the same paths rules() allows."""
    def how(kind: str, readonly: bool) -> int:
        if kind in ("device", "masked", "sys"):
            return NS_KEEP
        return NS_RO if readonly else NS_RW
    paths = [(path, how(kind, readonly)) for path, kind, readonly in _paths(sb)]
    paths.sort(key=lambda b: len(split(b[0])))
    masks = [(_hidden(sb, m.guest), NS_MASK) for m in sb.mounts.mounts if m.kind == "masked"]
    return paths + masks


def _hidden(sb: Sandbox, guest: bytes) -> bytes:
    """The host path a masked guest path would show without its mask."""
    parent = split(guest)[:-1]
    host, _mount = sb.mounts.to_host(parent)
    return os.path.join(host, os.path.basename(guest))


class Spawner:
    """The container's spawner (native/spawner.c): a process in the
    container's Landlock domain that forks every process the supervisor
    starts there, so that they all share that one domain (the entrypoint
    and each `docker exec`: Landlock scopes signals and abstract sockets to
    a domain). A child of the tracer thread, which must ignore its exit;
    close() ends it once the container's processes are gone."""

    def __init__(self, pid: int, ctl: int, pids: bool) -> None:
        self.pid = pid
        self.ctl = ctl
        self.pids = pids     # its children are in a PID namespace of the container's

    @classmethod
    def start(cls, sb: Sandbox, stdio: tuple[int, ...] = ()) -> Spawner | None:
        """None where there are no walls to share (no Landlock), no
        namespaces to make and no network of its own to make. The spawner
        first makes the container's namespaces (ns_mounts), PID too unless
        config.host_pids (or it joins config.pids_of's): as root, and
        unprivileged in a user namespace of its own (sb.userns; that of
        config.pids_of's process when it joins its PID namespace); with
        config.own_network, its network namespace in that user namespace
        (brandpy/network/pasta.py), or with config.network_of the user and
        network namespaces of that process."""
        fd = ruleset(sb, stdio)
        helper = sb.config.own_network
        spaced = sb.namespaced
        if fd < 0 and helper is None and not spaced:
            return None
        from brandpy._native import ffi, lib
        mounts = ns_mounts(sb) if spaced else []
        keep = [ffi.new("char[]", path) for path, _how in mounts]
        arr = ffi.new("struct bp_ns_mount[]", max(len(mounts), 1))
        for i, ((_path, how), cpath) in enumerate(zip(mounts, keep, strict=True)):
            arr[i].path, arr[i].how = cpath, how
        pids = sb.kernel_pids
        flags = (lib.BP_SPAWNER_NAMESPACES if spaced else 0) | \
            (lib.BP_SPAWNER_USERNS if sb.userns else 0) | (lib.BP_SPAWNER_PIDNS if pids else 0)
        argv = ffi.NULL
        if helper is not None:
            flags |= lib.BP_SPAWNER_NETWORK
            keep += [ffi.new("char[]", os.fsencode(a)) for a in helper]
            argv = ffi.new("char *[]", [*keep[len(mounts):], ffi.NULL]) if helper else ffi.NULL
        if sb.config.network_of:
            flags |= lib.BP_SPAWNER_JOIN
        ctl = ffi.new("int *", -1)
        try:
            pid = lib.bp_spawner_start(fd, arr, len(mounts), flags, argv,
                                       sb.config.network_of, sb.config.pids_of if pids else 0,
                                       ctl)
        finally:
            if fd >= 0:
                os.close(fd)
        if pid == -errno.ENONET and helper:
            tail = _log_tail(helper)
            raise LandlockError(errno.ENONET, f"the container's network: {helper[0]} failed"
                                + (f": {tail}" if tail else ""))
        if pid < 0 and sb.config.network_of:
            raise LandlockError(-pid, "joining the network of process "
                                f"{sb.config.network_of}: {os.strerror(-pid)}")
        if pid < 0 and pids and sb.config.pids_of:
            raise LandlockError(-pid, "joining the PID namespace of process "
                                f"{sb.config.pids_of}: {os.strerror(-pid)}")
        if pid < 0:
            raise LandlockError(-pid, f"starting the container's spawner: {os.strerror(-pid)}")
        return cls(pid, ctl[0], pids)

    def close(self) -> None:
        if self.ctl >= 0:
            os.close(self.ctl)
            self.ctl = -1


def _describe(rule: Rule) -> str:
    return os.fsdecode(rule.path) if rule.path is not None else f"fd {rule.fd}"


def status() -> str:
    """One line for `brandpy run --debug`."""
    version = abi()
    if not version:
        return UNAVAILABLE + _namespaces()
    what = "files, abstract unix sockets, signals" if scopes(version) else "files"
    return f"landlock ABI {version} ({what}){_namespaces()}"


def _namespaces() -> str:
    if namespaces.kernel_walls():
        user = "" if os.geteuid() == 0 else "user (our uid alone), "
        return (f"; {user}mount, PID, IPC and UTS namespaces, pivoted into a root of the "
                "container's own paths")
    why = namespaces.unavailable()
    return f"; {why}" if why else ""


def security_options() -> list[str]:
    """`docker info`'s SecurityOptions entries for the wall."""
    version = abi()
    if not version:
        return []
    scoped = ",scopes=abstract-unix-socket+signal" if scopes(version) else ""
    return [f"name=landlock,abi={version}{scoped}"]


@lru_cache(maxsize=1)
def warn_unavailable() -> None:
    """Said once per process: containers here are walled by translation
    alone."""
    if not abi():
        print(f"brandpy: warning: {UNAVAILABLE}", file=sys.stderr)


def _log_tail(argv: list[str], lines: int = 5) -> str:
    """The last lines of the log a network helper's command line names
    (`--log-file PATH`, as brandpy/network/pasta.py gives pasta), for an error."""
    try:
        with open(argv[argv.index("--log-file") + 1], errors="replace") as f:
            return " / ".join(line.strip() for line in f.readlines()[-lines:] if line.strip())
    except (ValueError, IndexError, OSError):
        return ""
