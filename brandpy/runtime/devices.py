"""The container's /dev: the host devices every container gets, as Docker's
default /dev has them, and those `--device` adds. Each is the host's node
bound at its container path, so the host's permissions on it apply.

The device gate stands where Docker's device cgroup does: a device node
the supervisor opens for the container (whatever name reached it: made
with mknod, carried by the image, swapped in while the path was walked)
opens only if it is one of these, judged by the type and rdev of the
inode actually opened (syscalls/handlers/perform.py opens it O_PATH,
checks, then reopens that same inode), else EPERM as under the cgroup.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from .cgroups import DeviceRule, device_rule
from .errors import Errno
from .identity import Cred
from .mounts import Mount, MountTable

DEFAULT_DEVICES = {b"null": b"/dev/null", b"zero": b"/dev/zero", b"full": b"/dev/full",
                   b"random": b"/dev/random", b"urandom": b"/dev/urandom", b"tty": b"/dev/tty",
                   b"console": b"/dev/tty",   # the container's console is its terminal
                   # a node, not Docker's link to pts/ptmx: its root is the
                   # container's devpts instance's ptmx (ptys.PtyView.ptmx_root),
                   # without one the host's /dev/ptmx (its devpts has ptmx mode 000)
                   b"ptmx": b"/dev/ptmx"}
DEV_LINKS = {b"fd": b"/proc/self/fd", b"stdin": b"/proc/self/fd/0",
             b"stdout": b"/proc/self/fd/1", b"stderr": b"/proc/self/fd/2",
             b"core": b"/proc/kcore"}


# mounts whose host node is a device the container was given: its /dev's
# default and --device nodes, its ptys (ptys.py), masked paths (/dev/null)
GIVEN = ("device", "masked", "pty")
KMSG = os.makedev(1, 11)


def is_device(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def cgroup_rules(mounts: MountTable) -> list[DeviceRule]:
    """The devices controller's allow rules for the devices given (as
    root, the kernel's wall behind the gate of open_checked)."""
    rules = []
    for m in mounts.mounts:
        if m.kind in GIVEN:
            fd, _, owned = mounts.root_fd(m)
            try:
                rule = device_rule(os.fstat(fd), "rm" if m.readonly else "rwm")
            finally:
                if owned:
                    os.close(fd)
            if rule is not None:
                rules.append(rule)
    return rules


def given(mounts: MountTable, kind: int, rdev: int) -> Mount | None:
    """The mount that gives the container the device of that type
    (S_IFCHR or S_IFBLK) and rdev, if any: a writable one first (a masked
    path's /dev/null is read-only, the container's /dev/null is not)."""
    if kind == stat.S_IFCHR and mounts.ptys is not None and \
            (pty := mounts.ptys.given(rdev)) is not None:
        return pty
    found = None
    for m in mounts.mounts:
        if m.kind in GIVEN and (found is None or found.readonly):
            fd, _, owned = mounts.root_fd(m)
            try:
                st = os.fstat(fd)
            finally:
                if owned:
                    os.close(fd)
            if stat.S_IFMT(st.st_mode) == kind and st.st_rdev == rdev:
                found = m
    return found


def _dmesg_restrict() -> bool:
    try:
        with open("/proc/sys/kernel/dmesg_restrict", "rb") as f:
            return f.read().strip() != b"0"
    except OSError:
        return True


def gate(mounts: MountTable, root_of: Mount | None, kind: int, rdev: int, flags: int,
         cred: Cred) -> Mount:
    """A device node of that type and rdev may be opened with open(2) flags
    by a process with cred: its giving mount, else Errno EPERM. root_of is
    the mount whose root the node is, if it is one (a given device's own
    name in the container's /dev)."""
    m = root_of if root_of is not None and root_of.kind in GIVEN else given(mounts, kind, rdev)
    if m is None:
        raise Errno(errno.EPERM, "not a device the container was given (docker run --device)")
    if m.readonly and flags & 3 != os.O_RDONLY:
        raise Errno(errno.EROFS)
    # reading the kernel log needs CAP_SYSLOG where dmesg_restrict says so
    if kind == stat.S_IFCHR and rdev == KMSG and flags & 3 != os.O_WRONLY and \
            not cred.capable("CAP_SYSLOG") and _dmesg_restrict():
        raise Errno(errno.EPERM)
    return m


def file_id(path: bytes) -> tuple[int, int] | None:
    """(st_dev, st_ino) of what path names, or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


_PROC_KMSG = file_id(b"/proc/kmsg")


def proc_kmsg(st: os.stat_result, cred: Cred) -> None:
    """/proc/kmsg opens only with CAP_SYSLOG (the kernel's syslog open check,
    which a supervisor acting with its own capabilities would pass)."""
    if (st.st_dev, st.st_ino) == _PROC_KMSG and not cred.capable("CAP_SYSLOG"):
        raise Errno(errno.EPERM)


class DeviceError(ValueError):
    """A --device that names no device node."""


def device_nodes(top: bytes) -> list[tuple[bytes, os.stat_result]]:
    """The character and block device nodes under a host directory (symlinks
    not followed), in path order."""
    found = []
    for parent, _dirs, files in os.walk(top):
        for name in files:
            node = os.path.join(parent, name)
            try:
                st = os.stat(node, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                found.append((node, st))
    return sorted(found)


def _valid_permissions(perms: str) -> bool:
    return 0 < len(perms) <= 3 and set(perms) <= set("rwm") and len(set(perms)) == len(perms)


@dataclass(frozen=True)
class Device:
    """`--device HOST[:CONTAINER][:PERMISSIONS]`: the host's device node (or
    every node under a host directory) at CONTAINER, by default the same
    path. PERMISSIONS are Docker's cgroup ones, rwm by default: without w
    the device is read-only (writes get EROFS, where Docker's cgroup gives
    EPERM); m is moot: Docker's default rules let any device node be made
    (c *:* m, b *:* m), as CAP_MKNOD does here, and opening it is the gate's."""
    host: str
    guest: str
    permissions: str = "rwm"

    def __post_init__(self) -> None:
        if not _valid_permissions(self.permissions):
            raise ValueError(f"invalid device permissions {self.permissions!r}: a combination "
                             "of r, w and m")
        if "r" not in self.permissions:
            raise ValueError(f"device {self.host}: brandpy cannot refuse reads of a device "
                             "(it has no device cgroup); give permissions with r")
        for path in (self.host, self.guest):
            if not path.startswith("/"):
                raise ValueError(f"invalid device path {path!r}: it must be absolute")

    @classmethod
    def parse(cls, spec: str) -> Device:
        """As `docker run --device` takes it."""
        parts = spec.split(":")
        if len(parts) > 3 or not parts[0]:
            raise ValueError(f"invalid device {spec!r}: expected HOST[:CONTAINER][:PERMISSIONS]")
        host, guest, perms = parts[0], parts[0], "rwm"
        if len(parts) == 3:
            guest, perms = parts[1] or host, parts[2]
        elif len(parts) == 2:
            if _valid_permissions(parts[1]):
                perms = parts[1]
            else:
                guest = parts[1] or host
        return cls(host, guest, perms)

    @property
    def readonly(self) -> bool:
        return "w" not in self.permissions

    def nodes(self) -> list[tuple[bytes, bytes]]:
        """(host node, container path) pairs: the device, or every device
        under the directory (as Docker adds them). Raises DeviceError if
        there is none."""
        host = os.fsencode(self.host)
        guest = os.fsencode(os.path.normpath(self.guest))
        try:
            st = os.stat(host)
        except OSError as exc:
            raise DeviceError(f"error gathering device information while adding custom device "
                             f"\"{self.host}\": {(exc.strerror or str(exc)).lower()}") from None
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            return [(host, guest)]
        if not stat.S_ISDIR(st.st_mode):
            raise DeviceError(f"{self.host} is not a device node nor a directory of them")
        found = [(node, os.path.join(guest, os.path.relpath(node, host)))
                 for node, _st in device_nodes(host)]
        if not found:
            raise DeviceError(f"no device nodes under {self.host}")
        return found
