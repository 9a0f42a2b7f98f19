"""The container's /dev: the host devices every container gets, as Docker's
default /dev has them, and those `--device` adds. Each is the host's node
bound at its container path (brandpy makes no device nodes), so the host's
permissions on it apply."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

DEFAULT_DEVICES = {b"null": b"/dev/null", b"zero": b"/dev/zero", b"full": b"/dev/full",
                   b"random": b"/dev/random", b"urandom": b"/dev/urandom", b"tty": b"/dev/tty",
                   b"console": b"/dev/tty",   # the container's console is its terminal
                   # not Docker's link to pts/ptmx: the host devpts has it mode 000,
                   # and /dev/ptmx allocates in that same instance (the /dev/pts we show)
                   b"ptmx": b"/dev/ptmx"}
DEV_LINKS = {b"fd": b"/proc/self/fd", b"stdin": b"/proc/self/fd/0",
             b"stdout": b"/proc/self/fd/1", b"stderr": b"/proc/self/fd/2",
             b"core": b"/proc/kcore"}


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
    EPERM); m is moot, as mknod never makes real nodes here."""
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
