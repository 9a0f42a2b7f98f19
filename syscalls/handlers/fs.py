"""File-system calls: every path is resolved inside the container (see
brandpy/runtime/pathres.py) and the kernel is handed the host path, so each
costs one ptrace stop and the kernel's own checks and errors apply."""

from __future__ import annotations

import errno
import os
import struct

from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.linux import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW
from brandpy.runtime.pathres import _MAGIC, Resolved

from . import fakefs
from .ident import capable
from .paths import check_fd_writable, exists, private, private_fd, read_path, resolve, rewrite, translate

O_ACCMODE = 0o3
O_CREAT = 0o100
O_EXCL = 0o200
O_TRUNC = 0o1000
O_NOFOLLOW = 0o400000
O_TMPFILE = 0o20200000   # __O_TMPFILE | O_DIRECTORY
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
IN_DONT_FOLLOW = 0x02000000
FAN_MARK_DONT_FOLLOW = 0x04
W_OK = 2


# -- open -------------------------------------------------------------------

def _open(call: Call, dirfd_i: int | None, path_i: int, flags: int, resolve_flags: int = 0) -> None:
    follow = not (flags & O_NOFOLLOW) and not (flags & O_CREAT and flags & O_EXCL)
    r = resolve(call, path_i, dirfd_i, follow=follow, resolve_flags=resolve_flags)
    if _open_writes(flags, r.host):
        if r.readonly:
            raise Errno(errno.EROFS)
        private(r.host)
    if r.mount.kind == "proc" and flags & O_ACCMODE == os.O_RDONLY:
        r = _proc_view(call, r)
    rewrite(call, r, path_i, dirfd_i)
    if flags & O_CREAT and fakefs.creator(call) and not exists(r.host):
        fakefs.own_after(call, r.host)


def _proc_view(call: Call, r: Resolved) -> Resolved:
    """/proc files and listings that would show host PIDs or names are
    opened from the container's own version (brandpy/runtime/procfs.py)."""
    procfs = call.sb.procfs
    rel = tuple(c for c in r.guest.split(b"/") if c)[1:]    # below /proc
    host = procfs.listing(rel)
    if host is None:
        content = procfs.synthesize(call.proc, rel, call.tid)
        if content is None:
            return r
        host = procfs.materialize(call.tid, content)
    return Resolved(host=host, guest=r.guest, mount=r.mount)


def _open_writes(flags: int, host: bytes) -> bool:
    if flags & O_ACCMODE in (os.O_WRONLY, os.O_RDWR) or flags & O_TRUNC:
        return True
    if flags & O_TMPFILE == O_TMPFILE:
        return True
    # O_CREAT of an existing file only opens it (the kernel allows that on a
    # read-only mount too)
    return bool(flags & O_CREAT) and not exists(host)


def open_(call: Call) -> None:
    _open(call, None, 0, call.iarg(1))


def creat(call: Call) -> None:
    _open(call, None, 0, O_CREAT | os.O_WRONLY | O_TRUNC)


def openat(call: Call) -> None:
    _open(call, 0, 1, call.iarg(2))


def openat2(call: Call) -> None:
    size = call.arg(3)
    if size < 24 or size > 4096:
        raise Errno(errno.EINVAL)
    how = bytearray(call.read(call.arg(2), size))
    flags, _mode, resolve_flags = struct.unpack_from("<QQQ", how)
    _open(call, 0, 1, flags, resolve_flags)
    scoped = RESOLVE_BENEATH | RESOLVE_IN_ROOT
    if resolve_flags & scoped:
        # applied by the resolver; the host path is absolute, which the
        # kernel would refuse under these flags
        struct.pack_into("<Q", how, 16, resolve_flags & ~scoped)
        call.set_arg(2, call.push(bytes(how)))


# -- stat, access, readlink ------------------------------------------------

def stat_(call: Call) -> None:
    translate(call, 0)


def lstat(call: Call) -> None:
    translate(call, 0, follow=False)


def newfstatat(call: Call) -> None:
    flags = call.iarg(3)
    translate(call, 1, 0, follow=not flags & AT_SYMLINK_NOFOLLOW, empty_path_flags=flags)


def statx(call: Call) -> None:
    flags = call.iarg(2)
    if call.arg(1) == 0 and flags & AT_EMPTY_PATH:
        return None   # statx(fd, NULL, AT_EMPTY_PATH): the fd itself (Linux 6.11+)
    translate(call, 1, 0, follow=not flags & AT_SYMLINK_NOFOLLOW, empty_path_flags=flags)


def statfs(call: Call) -> None:
    translate(call, 0)


def _access(call: Call, dirfd_i: int | None, path_i: int, mode: int, flags: int) -> None:
    path = read_path(call, path_i)
    if not path and flags & AT_EMPTY_PATH and dirfd_i is not None:
        return None
    r = resolve(call, path_i, dirfd_i, follow=not flags & AT_SYMLINK_NOFOLLOW, path=path)
    if mode & W_OK and r.readonly and exists(r.host):
        raise Errno(errno.EROFS)
    rewrite(call, r, path_i, dirfd_i)


def access(call: Call) -> None:
    _access(call, None, 0, call.iarg(1), 0)


def faccessat(call: Call) -> None:
    _access(call, 0, 1, call.iarg(2), 0)


def faccessat2(call: Call) -> None:
    _access(call, 0, 1, call.iarg(2), call.iarg(3))


def _readlink(call: Call, dirfd_i: int | None, path_i: int, buf_i: int, size_i: int) -> int:
    """Emulated: symlink targets are guest text already; /proc magic links
    are answered with the guest path they name."""
    size = call.iarg(size_i)
    if size <= 0:
        raise Errno(errno.EINVAL)
    r = resolve(call, path_i, dirfd_i, follow=False)
    target = _proc_link_text(call, r) if r.mount.kind == "proc" else None
    if target is None:
        try:
            target = os.readlink(r.host)
        except OSError as exc:
            raise Errno(exc.errno or errno.EINVAL) from None
    data = target[:size]
    call.write(call.arg(buf_i), data)
    return len(data)


def _proc_link_text(call: Call, r: Resolved) -> bytes | None:
    """/proc/self, /proc/thread-self and the magic links under /proc/PID,
    as the container names them; None for ordinary /proc entries."""
    rel = b"/".join(c for c in r.guest.split(b"/") if c)[len(b"/".join(r.mount.components)):]
    rel = rel.lstrip(b"/")
    pids = call.sb.pids
    if rel == b"self":
        return b"%d" % pids.to_guest(call.proc.tgid)
    if rel == b"thread-self":
        return b"%d/task/%d" % (pids.to_guest(call.proc.tgid), pids.to_guest(call.tid))
    match = _MAGIC.match(rel)
    if match is None:
        return None
    host_pid = pids.to_host(int(match.group(2) or match.group(1)))
    if host_pid is None:
        raise Errno(errno.ENOENT)
    target = call.sb.resolver.magic_target(host_pid, match.group(3))
    if target is not None:
        return call.sb.resolver.relative_to_root(call.proc, target)
    try:
        raw = os.readlink(b"/proc/%d/%s" % (host_pid, match.group(3)))
    except OSError as exc:
        raise Errno(exc.errno or errno.ENOENT) from None
    if raw.endswith(b" (deleted)"):
        guest_path = call.sb.resolver.guest_of_host(call.proc, raw[:-len(b" (deleted)")])
        if guest_path is not None:
            return guest_path + b" (deleted)"
    return raw


def readlink(call: Call) -> int:
    return _readlink(call, None, 0, 1, 2)


def readlinkat(call: Call) -> int:
    return _readlink(call, 0, 1, 2, 3)


# -- creating and removing names -------------------------------------------

def _mkdir(call: Call, path_i: int, dirfd_i: int | None) -> None:
    r = translate(call, path_i, dirfd_i, follow=False, write=True)
    if r is not None and fakefs.creator(call):
        fakefs.own_after(call, r.host)


def mkdir(call: Call) -> None:
    _mkdir(call, 0, None)


def mkdirat(call: Call) -> None:
    _mkdir(call, 1, 0)


def mknod(call: Call) -> None:
    translate(call, 0, follow=False, write=True)


def mknodat(call: Call) -> None:
    translate(call, 1, 0, follow=False, write=True)


def rmdir(call: Call) -> None:
    translate(call, 0, follow=False, write=True)


def unlink(call: Call) -> None:
    translate(call, 0, follow=False, write=True)


def unlinkat(call: Call) -> None:
    translate(call, 1, 0, follow=False, write=True)


def symlink(call: Call) -> None:
    translate(call, 1, follow=False, write=True)   # the target text stays guest text


def symlinkat(call: Call) -> None:
    translate(call, 2, 1, follow=False, write=True)


def _two_paths(call: Call, old: tuple[int | None, int], new: tuple[int | None, int],
               follow_old: bool = False, old_empty: bool = False) -> None:
    """rename and link: both names resolved, both on the same mount (EXDEV
    otherwise, as between two real mounts)."""
    new_r = resolve(call, new[1], new[0], follow=False)
    if new_r.readonly:
        raise Errno(errno.EROFS)
    if old_empty:
        rewrite(call, new_r, new[1], new[0])
        return
    old_r = resolve(call, old[1], old[0], follow=follow_old)
    if old_r.readonly:
        raise Errno(errno.EROFS)
    if old_r.mount is not new_r.mount:
        raise Errno(errno.EXDEV)
    rewrite(call, old_r, old[1], old[0])
    rewrite(call, new_r, new[1], new[0])


def rename(call: Call) -> None:
    _two_paths(call, (None, 0), (None, 1))


def renameat(call: Call) -> None:
    _two_paths(call, (0, 1), (2, 3))


renameat2 = renameat


def link(call: Call) -> None:
    _two_paths(call, (None, 0), (None, 1))


def linkat(call: Call) -> None:
    flags = call.iarg(4)
    old_empty = bool(flags & AT_EMPTY_PATH) and not read_path(call, 1)
    _two_paths(call, (0, 1), (2, 3), follow_old=bool(flags & AT_SYMLINK_FOLLOW),
               old_empty=old_empty)


# -- metadata ----------------------------------------------------------------

def chmod(call: Call) -> None:
    translate(call, 0, modify=True)


def fchmodat(call: Call) -> None:
    translate(call, 1, 0, modify=True)


def fchmodat2(call: Call) -> None:
    flags = call.iarg(3)
    translate(call, 1, 0, follow=not flags & AT_SYMLINK_NOFOLLOW, modify=True,
              empty_path_flags=flags)


def chown(call: Call) -> None:
    translate(call, 0, modify=True)


def lchown(call: Call) -> None:
    translate(call, 0, follow=False, modify=True)


def fchownat(call: Call) -> None:
    flags = call.iarg(4)
    translate(call, 1, 0, follow=not flags & AT_SYMLINK_NOFOLLOW, modify=True,
              empty_path_flags=flags)


# fd-based changes of an image file act on its copied-up path instead:
# (syscall, path form, index of the fd argument)
SYS_fchmod, SYS_chmod, SYS_fchown, SYS_chown = 91, 90, 93, 92
SYS_fsetxattr, SYS_setxattr, SYS_fremovexattr, SYS_removexattr = 190, 188, 199, 197
PATH_FORM = {SYS_fchmod: SYS_chmod, SYS_fchown: SYS_chown, SYS_fsetxattr: SYS_setxattr,
             SYS_fremovexattr: SYS_removexattr}


def fd_metadata(call: Call) -> None:
    """fchmod, fchown, fsetxattr, fremovexattr: the fd's mount must be
    writable, and an image file is changed through its private copy."""
    check_fd_writable(call, call.iarg(0))
    host = private_fd(call, call.iarg(0))
    if host is not None:
        call.set_nr(PATH_FORM[call.nr])
        call.set_arg(0, call.push_str(host))


def truncate(call: Call) -> None:
    translate(call, 0, modify=True)


def utime(call: Call) -> None:
    translate(call, 0, modify=True)


utimes = utime


def _futimens(call: Call) -> None:
    """utimensat(fd, NULL, ...) / futimesat(fd, NULL, ...): on the fd's file."""
    check_fd_writable(call, call.iarg(0))
    host = private_fd(call, call.iarg(0))
    if host is not None:
        call.set_arg(0, AT_FDCWD)
        call.set_arg(1, call.push_str(host))


def futimesat(call: Call) -> None:
    if call.arg(1) == 0:
        return _futimens(call)
    translate(call, 1, 0, modify=True)


def utimensat(call: Call) -> None:
    flags = call.iarg(3)
    if call.arg(1) == 0:
        return _futimens(call)
    translate(call, 1, 0, follow=not flags & AT_SYMLINK_NOFOLLOW, modify=True,
              empty_path_flags=flags)


def xattr_set(call: Call) -> None:      # setxattr, removexattr
    translate(call, 0, modify=True)


def lxattr_set(call: Call) -> None:     # lsetxattr, lremovexattr
    translate(call, 0, follow=False, modify=True)


def xattr_get(call: Call) -> None:      # getxattr, listxattr
    translate(call, 0)


def lxattr_get(call: Call) -> None:     # lgetxattr, llistxattr
    translate(call, 0, follow=False)


def xattrat(call: Call, write: bool) -> None:
    """setxattrat & co. (Linux 6.13): (dirfd, path, at_flags, ...)."""
    flags = call.iarg(2)
    if call.arg(1) == 0 and flags & AT_EMPTY_PATH:
        if write:
            check_fd_writable(call, call.iarg(0))
        return None
    translate(call, 1, 0, follow=not flags & AT_SYMLINK_NOFOLLOW, modify=write,
              empty_path_flags=flags)


def setxattrat(call: Call) -> None:
    xattrat(call, write=True)


def getxattrat(call: Call) -> None:
    xattrat(call, write=False)


def file_getattr(call: Call) -> None:
    """file_getattr/file_setattr (Linux 6.17): (dirfd, path, attr, size, at_flags)."""
    flags = call.iarg(4)
    if call.arg(1) == 0 and flags & AT_EMPTY_PATH:
        return None
    translate(call, 1, 0, follow=not flags & AT_SYMLINK_NOFOLLOW, empty_path_flags=flags)


def file_setattr(call: Call) -> None:
    flags = call.iarg(4)
    if call.arg(1) == 0 and flags & AT_EMPTY_PATH:
        check_fd_writable(call, call.iarg(0))
        return None
    translate(call, 1, 0, follow=not flags & AT_SYMLINK_NOFOLLOW, modify=True,
              empty_path_flags=flags)


# -- directories and roots -------------------------------------------------

def chdir(call: Call) -> None:
    translate(call, 0)


def getcwd(call: Call) -> int:
    """Emulated: the kernel would print the host path."""
    guest = b"/" + b"/".join(call.sb.resolver.cwd_components(call.proc, call.tid))
    guest = call.sb.resolver.relative_to_root(call.proc, guest) + b"\0"
    if call.arg(1) < len(guest):
        raise Errno(errno.ERANGE)
    call.write(call.arg(0), guest)
    return len(guest)


def chroot(call: Call) -> int:
    """Emulated: the new root applies to this process and its children."""
    r = resolve(call, 0)
    try:
        st = os.stat(r.host)
    except OSError as exc:
        raise Errno(exc.errno or errno.ENOENT) from None
    if not (st.st_mode & 0o170000) == 0o040000:
        raise Errno(errno.ENOTDIR)
    if not os.access(r.host, os.X_OK):
        raise Errno(errno.EACCES)
    if not capable(call, "CAP_SYS_CHROOT"):
        raise Errno(errno.EPERM)
    call.proc.root = r.guest
    call.sb.changed(call.proc)
    return 0


# -- watches and handles ------------------------------------------------------

def inotify_add_watch(call: Call) -> None:
    translate(call, 1, follow=not call.iarg(2) & IN_DONT_FOLLOW)


def fanotify_mark(call: Call) -> None:
    if call.arg(4) == 0:
        return None
    translate(call, 4, 3, follow=not call.iarg(1) & FAN_MARK_DONT_FOLLOW)


def name_to_handle_at(call: Call) -> None:
    flags = call.iarg(4)
    translate(call, 1, 0, follow=bool(flags & AT_SYMLINK_FOLLOW), empty_path_flags=flags)

