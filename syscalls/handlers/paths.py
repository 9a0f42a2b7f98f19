"""Shared steps of path-taking handlers: read the guest path once, resolve
it on descriptors inside the container (brandpy/runtime/pathres.py), and
act on what it resolved to, never on a host path string.

Two shapes of call:
- calls that act on an existing file (stat, chmod, chown, utimes, xattrs,
  truncate, open of an existing file...) take an `Obj`: the file held as an
  O_PATH descriptor, so the file checked is the file changed. A path call on
  it goes through /proc/self/fd/N, a magic link to that exact inode
  (`Obj.path`);
- calls that make or remove a name (mkdir, unlink, rename, link, symlink,
  mknod) act on the Resolved's directory descriptor and last name with the
  *at calls, which never follow that name.

Either way, when the last name turned into a symlink between the walk and
the call (a container racing renames against its own calls), the call is
resolved again from scratch, as the kernel's own walk would see the new
state; the container can only ever reach its own files.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from brandpy.images import layers, rootfs
from brandpy.runtime.acting import as_supervisor
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.linux import AT_EMPTY_PATH, AT_FDCWD, O_PATH
from brandpy.runtime.mounts import Mount, split
from brandpy.runtime.pathres import MAXSYMLINKS, Resolved
from brandpy.runtime.process import Process

OBJ = O_PATH | os.O_CLOEXEC


def read_path(call: Call, i: int) -> bytes:
    return call.read_str(call.arg(i))


def resolve(call: Call, path_i: int, dirfd_i: int | None = None, *, follow: bool = True,
            path: bytes | None = None, resolve_flags: int = 0) -> Resolved:
    if path is None:
        path = read_path(call, path_i)
    dirfd = call.iarg(dirfd_i) if dirfd_i is not None else AT_FDCWD
    return call.sb.resolver.resolve(call.proc, call.tid, path, dirfd, follow,
                                    resolve_flags=resolve_flags)


def oserror(exc: OSError, default: int = errno.EIO) -> Errno:
    return Errno(exc.errno or default)


class Obj:
    """An existing file, held as an O_PATH descriptor, with its lstat and
    the mount it is on (None for pipes, sockets and files outside the
    container, reached through a process's fd)."""

    __slots__ = ("fd", "st", "mount", "r", "tracee_fd")

    def __init__(self, fd: int, st: os.stat_result, mount: Mount | None,
                 r: Resolved | None = None, tracee_fd: int | None = None) -> None:
        self.fd = fd
        self.st = st
        self.mount = mount
        self.r = r                    # how a path led to it (None: a process's fd)
        self.tracee_fd = tracee_fd    # the process's fd it was reached through

    @property
    def path(self) -> bytes:
        """A path to exactly this inode, for the calls that only take paths."""
        return b"/proc/self/fd/%d" % self.fd

    @property
    def readonly(self) -> bool:
        return self.mount is not None and self.mount.readonly

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.st.st_mode)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.r is not None:
            self.r.close()

    def __enter__(self) -> Obj:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _open_obj(r: Resolved, follow: bool) -> int:
    """An O_PATH descriptor of what r names (a new one: Obj owns it)."""
    try:
        if r.proc is not None:
            return os.open(r.proc, OBJ | (0 if follow or r.magic else os.O_NOFOLLOW))
        if not r.name:
            return os.open(b"/proc/self/fd/%d" % r.dirfd, OBJ)
        return os.open(r.name, OBJ | os.O_NOFOLLOW, dir_fd=r.dirfd)
    except OSError as exc:
        raise oserror(exc, errno.ENOENT) from None


def find(call: Call, path_i: int | None, dirfd_i: int | None = None, *, follow: bool = True,
         flags: int = 0) -> Obj:
    """The existing file a call names: its path argument resolved, or with
    AT_EMPTY_PATH and an empty path (or no path argument) the dirfd's own
    file. Raises Errno (ENOENT when it does not exist)."""
    path = read_path(call, path_i) if path_i is not None else b""
    if path_i is None or (not path and flags & AT_EMPTY_PATH):
        return tracee_file(call, call.iarg(dirfd_i if dirfd_i is not None else 0))
    dirfd = call.iarg(dirfd_i) if dirfd_i is not None else AT_FDCWD
    return find_path(call, path, dirfd, follow=follow)


def find_path(call: Call, path: bytes, dirfd: int = AT_FDCWD, *, follow: bool = True,
              proc: Process | None = None, resolve_flags: int = 0) -> Obj:
    """find() of a path given (proc: resolve as that process, e.g. one
    without the caller's chroot for a full guest path)."""
    for _ in range(MAXSYMLINKS):
        r = call.sb.resolver.resolve(proc or call.proc, call.tid, path, dirfd, follow,
                                     resolve_flags=resolve_flags)
        try:
            fd = _open_obj(r, follow)
        except Errno:
            r.close()
            raise
        st = os.fstat(fd)
        if follow and stat.S_ISLNK(st.st_mode) and r.proc is None:
            os.close(fd)                     # became a symlink meanwhile: walk again
            r.close()
            continue
        if r.must_dir and not stat.S_ISDIR(st.st_mode):
            os.close(fd)
            r.close()
            raise Errno(errno.ENOTDIR)
        return Obj(fd, st, r.mount, r)
    raise Errno(errno.ELOOP)


def tracee_file(call: Call, fd: int) -> Obj:
    """A process's open file (AT_FDCWD: its cwd), reached through its
    /proc/TID/fd/N magic link: that exact file, wherever it is."""
    link = b"/proc/%d/%s" % (call.tid, b"cwd" if fd == AT_FDCWD else b"fd/%d" % fd)
    if fd < 0 and fd != AT_FDCWD:
        raise Errno(errno.EBADF)
    try:
        own = os.open(link, OBJ)
        target = os.readlink(link)
    except OSError as exc:
        # not ENOENT for a closed fd: CPython takes that for an odd file
        raise Errno(errno.EBADF if exc.errno == errno.ENOENT else exc.errno or errno.EBADF) \
            from None
    return Obj(own, os.fstat(own), mount_of_host(call, target), tracee_fd=fd)


def fd_mount(call: Call, fd: int) -> Mount | None:
    """The mount an open file lives on, None for pipes, sockets and files
    outside the container."""
    try:
        host = os.readlink(b"/proc/%d/fd/%d" % (call.tid, fd))
    except OSError:
        raise Errno(errno.EBADF) from None
    return mount_of_host(call, host)


def mount_of_host(call: Call, host: bytes) -> Mount | None:
    """The caller's mount a host path (an open file's link) is on, None
    for pipes, sockets and files outside the container."""
    table = call.sb.mounts_of(call.proc)
    guest = table.to_guest(host) if host.startswith(b"/") else None
    return table.lookup(split(guest))[0] if guest is not None else None


def fd_flags(tid: int, fd: int) -> int:
    """A descriptor's open flags, as /proc/TID/fdinfo shows them; -1 if gone."""
    try:
        with open(b"/proc/%d/fdinfo/%d" % (tid, fd), "rb") as f:
            for line in f:
                if line.startswith(b"flags:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return -1


def check_not_opath(call: Call, fd: int) -> None:
    """The fd calls (fchmod, fchown, fsetxattr...) refuse an O_PATH, closed
    or negative descriptor (EBADF; AT_FDCWD is no fd here), as Linux does."""
    if fd < 0 or fd_flags(call.tid, fd) & os.O_PATH:
        raise Errno(errno.EBADF)


def check_fd_writable(call: Call, fd: int) -> None:
    """Metadata changes through an fd (fchmod, fchown, fsetxattr...) honour
    read-only mounts as the kernel would for a read-only mount."""
    if fd == AT_FDCWD:
        return
    mount = fd_mount(call, fd)
    if mount is not None and mount.readonly:
        raise Errno(errno.EROFS)


# -- copy-up --------------------------------------------------------------------

def is_image_file(obj: Obj) -> bool:
    return stat.S_ISREG(obj.st.st_mode) and image_inode(obj.path)


def image_inode(path: bytes) -> bool:
    """Whether path (followed: a magic link too) is an image's inode, which
    the image store and every container of the image share."""
    try:
        os.getxattr(path, layers.MARKER)
        return True
    except OSError:
        return False


def copy_up(r: Resolved) -> bool:
    """Before a change of the file r names: an image file (a hard-link
    farm's, brandpy/images/rootfs.py) is replaced by the container's own
    copy (True). One getxattr when there is nothing to do."""
    if r.proc is not None or not r.name or r.name == b".":
        return False
    try:
        with as_supervisor():
            return rootfs.copy_up_at(r.dirfd, r.name)
    except OSError as exc:
        raise oserror(exc) from None


def writable(call: Call, obj: Obj) -> Obj:
    """obj about to be changed: EROFS on a read-only mount; an image file
    is copied up first and the container's own copy returned in its place
    (obj is closed)."""
    if obj.readonly:
        raise Errno(errno.EROFS)
    if not is_image_file(obj):
        return obj
    if obj.r is None or obj.r.magic:       # through a process's fd: where it is now
        guest = call.sb.resolver.magic_target(call.tid, b"fd/%d" % obj.tracee_fd) \
            if obj.tracee_fd is not None and obj.tracee_fd != AT_FDCWD else None
        if guest is None:
            # no name in the container leads to it any more (copied up since
            # the fd was opened; a /proc link the resolver could not name):
            # the image's own inode, shared with every container of it
            raise Errno(errno.EROFS, "an image file the container no longer names")
        obj.close()
        obj = find_path(call, guest, follow=False, proc=Process(tgid=call.proc.tgid))
    assert obj.r is not None
    copy_up(obj.r)
    fd = _open_obj(obj.r, False)
    os.close(obj.fd)
    obj.fd, obj.st = fd, os.fstat(fd)
    if is_image_file(obj):
        # no name to copy it up under (a bind mount's root): the image's inode
        raise Errno(errno.EROFS, "an image file the container cannot copy up")
    return obj


@contextmanager
def changing(call: Call, path_i: int | None, dirfd_i: int | None = None, *,
             follow: bool = True, flags: int = 0,
             check: Callable[[Obj], None] | None = None) -> Iterator[Obj]:
    """find() for a call that changes the file: read-only mounts and
    copy-up applied, after the call's own check of the file (check)."""
    obj = find(call, path_i, dirfd_i, follow=follow, flags=flags)
    try:
        if obj.readonly:
            raise Errno(errno.EROFS)
        if check is not None:
            check(obj)
        obj = writable(call, obj)
        yield obj
    finally:
        obj.close()


# -- names ----------------------------------------------------------------------

def parent_of(call: Call, path_i: int, dirfd_i: int | None = None, *,
              creating: bool = True, path: bytes | None = None) -> Resolved:
    """Where a call makes or removes a name: the last component is not
    followed. EROFS on a read-only mount."""
    r = resolve(call, path_i, dirfd_i, follow=False, path=path)
    if r.readonly:
        r.close()
        raise Errno(errno.EROFS)
    if r.proc is not None:
        r.close()
        raise Errno(errno.EACCES if creating else errno.EPERM)
    return r


def make_at(r: Resolved) -> None:
    """A new name other than a directory (mknod, symlink, link): errors a
    name-creating walk gives before the call is made."""
    if not r.name:
        raise Errno(errno.EEXIST)
    if r.must_dir:
        raise Errno(errno.EEXIST if exists_at(r) else errno.ENOENT)


def exists_at(r: Resolved) -> bool:
    try:
        os.stat(r.name, dir_fd=r.dirfd, follow_symlinks=False)
        return True
    except OSError:
        return False


def stat_at(r: Resolved) -> os.stat_result | None:
    try:
        return os.stat(r.name or b".", dir_fd=r.dirfd, follow_symlinks=False)
    except OSError:
        return None


def umask_of(tid: int) -> int:
    """The process's umask, which the kernel keeps and /proc shows (umask(2)
    runs natively): a file the supervisor creates for it is masked by it."""
    try:
        with open(b"/proc/%d/status" % tid, "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
