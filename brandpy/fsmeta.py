"""Fake ownership for unprivileged operation.

An unprivileged user cannot chown, create device nodes or keep files it cannot
read, so the ownership, permission bits and file type a container should see
are recorded in the xattr ``user.containers.override_stat`` with the value
``UID:GID:0MODE[:TYPE]``, the format containers/storage and fuse-overlayfs use
(MODE: the 12 permission bits in octal; TYPE: file, dir, symlink, pipe,
socket, block-MAJ-MIN or char-MAJ-MIN). A device node or fifo is then stored
as an empty regular file whose override names its real type.

Without the xattr a file is seen as it is on disk, with the host owner mapped
by the default mapping (`view`): the current user is the container's root.
Symlinks cannot carry user.* xattrs, so their ownership is always the
default mapping. When running as root none of this is needed: real
chown/chmod/mknod are used and no xattr is written (`enabled()` is False).
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

XATTR = "user.containers.override_stat"
KINDS = ("file", "dir", "symlink", "pipe", "socket", "block", "char")

Target = str | bytes | os.PathLike | int  # a path (symlinks not followed) or an fd

_IFMT = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
         stat.S_IFIFO: "pipe", stat.S_IFSOCK: "socket", stat.S_IFBLK: "block",
         stat.S_IFCHR: "char"}
_KIND_IFMT = {v: k for k, v in _IFMT.items()}


@dataclass(frozen=True, slots=True)
class Override:
    uid: int
    gid: int
    mode: int           # permission bits incl. setuid/setgid/sticky (& 0o7777)
    kind: str = "file"  # one of KINDS
    rdev: int = 0       # os.makedev(major, minor) for block/char

    @property
    def st_mode(self) -> int:
        """The full st_mode (file type bits | permission bits) to report."""
        return _KIND_IFMT[self.kind] | self.mode

    def encode(self) -> bytes:
        value = f"{self.uid}:{self.gid}:0{self.mode:o}:{self.kind}"
        if self.kind in ("block", "char"):
            value += f"-{os.major(self.rdev)}-{os.minor(self.rdev)}"
        return value.encode()

    @classmethod
    def decode(cls, raw: bytes) -> Override:
        try:
            parts = raw.decode().split(":")
            uid, gid, mode = int(parts[0]), int(parts[1]), int(parts[2], 8)
            kind, rdev = _IFMT.get(stat.S_IFMT(mode), "file"), 0
            if len(parts) > 3:
                kind, _, dev = parts[3].partition("-")
                if kind in ("block", "char"):
                    major, minor = dev.split("-")
                    rdev = os.makedev(int(major), int(minor))
            if kind not in KINDS:
                raise ValueError(f"unknown type {kind!r}")
        except (ValueError, IndexError, UnicodeDecodeError) as e:
            raise ValueError(f"malformed {XATTR} value {raw!r}: {e}") from None
        return cls(uid, gid, mode & 0o7777, kind, rdev)

    @classmethod
    def from_stat(cls, st: os.stat_result) -> Override:
        return cls(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode),
                   _IFMT.get(stat.S_IFMT(st.st_mode), "file"), st.st_rdev)


def enabled() -> bool:
    """True when ownership must be faked (not root)."""
    return os.geteuid() != 0


def nofollow(target: Target) -> dict:
    # The fd forms of the xattr calls refuse follow_symlinks.
    return {} if isinstance(target, int) else {"follow_symlinks": False}


def read(target: Target) -> Override | None:
    """The recorded override, or None (none recorded, a symlink, or no xattr support)."""
    try:
        return Override.decode(os.getxattr(target, XATTR, **nofollow(target)))
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
            return None
        raise


def write(target: Target, ov: Override) -> None:
    try:
        os.setxattr(target, XATTR, ov.encode(), **nofollow(target))
    except OSError as e:
        if e.errno == errno.ENOTSUP:
            raise OSError(e.errno, f"{target!r}: this filesystem has no user xattrs, which "
                          "brandpy needs to run unprivileged; put the data root "
                          "($BRANDPY_ROOT) on ext4, xfs, btrfs or tmpfs") from None
        raise


def clear(target: Target) -> None:
    try:
        os.removexattr(target, XATTR, **nofollow(target))
    except OSError as e:
        if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
            raise


def default_view(st: os.stat_result) -> Override:
    """What the container sees for a file without an override: the current
    user (and group) are its root, any other host id is nobody (65534)."""
    uid = 0 if st.st_uid == os.geteuid() else st.st_uid if not enabled() else 65534
    gid = 0 if st.st_gid == os.getegid() else st.st_gid if not enabled() else 65534
    return Override(uid, gid, stat.S_IMODE(st.st_mode),
                    _IFMT.get(stat.S_IFMT(st.st_mode), "file"), st.st_rdev)


def view(target: Target, st: os.stat_result | None = None) -> Override:
    """Ownership, mode and type as the container sees them."""
    if st is None:
        st = os.stat(target, follow_symlinks=False) if not isinstance(target, int) else os.fstat(target)
    if not stat.S_ISLNK(st.st_mode):
        ov = read(target)
        if ov is not None:
            return ov
    return default_view(st)
