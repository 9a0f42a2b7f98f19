"""Shared steps of path-taking handlers: read the guest path, resolve it in
the container, enforce read-only mounts, and hand the kernel the host path."""

from __future__ import annotations

import errno
import os
import stat

from brandpy.images import rootfs
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.linux import AT_EMPTY_PATH, AT_FDCWD
from brandpy.runtime.mounts import Mount
from brandpy.runtime.pathres import Resolved


def read_path(call: Call, i: int) -> bytes:
    return call.read_str(call.arg(i))


def resolve(call: Call, path_i: int, dirfd_i: int | None = None, *, follow: bool = True,
            path: bytes | None = None, resolve_flags: int = 0) -> Resolved:
    if path is None:
        path = read_path(call, path_i)
    dirfd = call.iarg(dirfd_i) if dirfd_i is not None else AT_FDCWD
    return call.sb.resolver.resolve(call.proc, call.tid, path, dirfd, follow,
                                    resolve_flags=resolve_flags)


def rewrite(call: Call, r: Resolved, path_i: int, dirfd_i: int | None = None) -> None:
    """Point the path argument at the host path (absolute, so the dirfd no
    longer matters; AT_FDCWD makes that explicit)."""
    call.set_arg(path_i, call.push_str(r.host))
    if dirfd_i is not None:
        call.set_arg(dirfd_i, AT_FDCWD)


def translate(call: Call, path_i: int, dirfd_i: int | None = None, *, follow: bool = True,
              write: bool = False, modify: bool = False,
              empty_path_flags: int = 0) -> Resolved | None:
    """The common case: resolve, check, rewrite, let the kernel do the call;
    what the path resolved to (None: the call acts on the dirfd).
    `write`: the call changes the file system (EROFS on read-only mounts);
    `modify`: it changes the file itself (copy-up of an image file first).
    With AT_EMPTY_PATH in `empty_path_flags` and an empty path the call acts
    on the dirfd itself (see private_fd)."""
    path = read_path(call, path_i)
    if not path and empty_path_flags & AT_EMPTY_PATH and dirfd_i is not None:
        if write:
            check_fd_writable(call, call.iarg(dirfd_i))
        return None
    r = resolve(call, path_i, dirfd_i, follow=follow, path=path)
    if (write or modify) and r.readonly:
        raise Errno(errno.EROFS)
    if modify:
        private(r.host)
    rewrite(call, r, path_i, dirfd_i)
    return r


def private(host: bytes) -> None:
    """Copy-on-write of container root filesystems made from an image (a
    hard-link farm, brandpy/images/rootfs.py): an image file is copied up
    before anything changes it. One getxattr when there is nothing to do."""
    try:
        if rootfs.needs_copy_up(host):
            rootfs.copy_up(os.fsdecode(host))
    except PermissionError:
        pass   # unreadable xattrs (a mode-0 file the container made): not an image file
    except OSError as exc:
        raise Errno(exc.errno or errno.EIO) from None


def private_fd(call: Call, fd: int) -> bytes | None:
    """An fd-based change (fchmod...) of an image file: the file is copied up
    and its new host path returned, for the call to act on instead (the fd
    keeps the image's inode). None when the file is the container's own."""
    link = b"/proc/%d/fd/%d" % (call.tid, fd)
    try:
        os.getxattr(link, rootfs.MARKER)
    except OSError:
        return None
    try:
        host = os.readlink(link)
        rootfs.copy_up(os.fsdecode(host))
    except OSError as exc:
        raise Errno(exc.errno or errno.EIO) from None
    return host


def fd_mount(call: Call, fd: int) -> Mount | None:
    """The mount an open file lives on, None for pipes, sockets and files
    outside the container."""
    try:
        host = os.readlink(b"/proc/%d/fd/%d" % (call.tid, fd))
    except OSError:
        raise Errno(errno.EBADF) from None
    if not host.startswith(b"/"):
        return None
    guest = call.sb.mounts.to_guest(host)
    if guest is None:
        return None
    mount, _ = call.sb.mounts.lookup(tuple(c for c in guest.split(b"/") if c))
    return mount


def check_fd_writable(call: Call, fd: int) -> None:
    """Metadata changes through an fd (fchmod, fchown, fsetxattr...) honour
    read-only mounts as the kernel would for a read-only mount."""
    if fd == AT_FDCWD:
        return
    mount = fd_mount(call, fd)
    if mount is not None and mount.readonly:
        raise Errno(errno.EROFS)


def exists(host: bytes) -> bool:
    try:
        os.lstat(host)
        return True
    except OSError:
        return False


def is_dir(host: bytes) -> bool:
    try:
        return stat.S_ISDIR(os.stat(host).st_mode)
    except OSError:
        return False
