"""File-system calls, performed by the supervisor: every path is resolved
on descriptors inside the container (brandpy/runtime/pathres.py) and the
call made on what it resolved to (paths.py), with the caller's filesystem
identity (brandpy/runtime/acting.py). The kernel never walks a path the
container wrote, and reads no argument after the check: each is copied out
of the tracee once. Results are written back into the tracee's memory.

Exceptions, made by the tracee itself: chdir (its cwd must change; see
`chdir`) and execve (handlers/exec.py), which the Landlock walls confine.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import struct
from contextlib import AbstractContextManager, nullcontext

from brandpy import fsmeta
from brandpy.fsmeta import Override
from brandpy.images.layers import MARKER
from brandpy.runtime import dac, statbuf
from brandpy.runtime.acting import as_tracee, at_home, beside_mounts
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.linux import AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, libc
from brandpy.runtime.linux import renameat2 as _renameat2
from brandpy.runtime.pathres import _MAGIC, Resolved

from . import fakefs
from .ident import capable
from .paths import (
    OBJ,
    Obj,
    changing,
    check_fd_writable,
    check_not_opath,
    exists_at,
    find,
    make_at,
    mount_of_host,
    oserror,
    parent_of,
    read_path,
    stat_at,
    tracee_file,
    umask_of,
    writable,
)
from .perform import performed

IN_DONT_FOLLOW = 0x02000000
IN_ONLYDIR = 0x01000000
FAN_MARK_DONT_FOLLOW = 0x04
FAN_MARK_ONLYDIR = 0x08
XATTR_NAME_MAX, XATTR_SIZE_MAX, XATTR_LIST_MAX = 255, 65536, 65536
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
RENAME_EXCHANGE = 0x2
RENAME_FLAGS = 0x7               # NOREPLACE | EXCHANGE | WHITEOUT
STATFS_SIZE, F_FLAGS, ST_RDONLY = 120, 80, 0x1   # struct statfs, its f_flags' offset


def _follow(flags: int) -> bool:
    return not flags & AT_SYMLINK_NOFOLLOW


def _check_at(flags: int, allowed: int) -> None:
    if flags & ~allowed:
        raise Errno(errno.EINVAL)


# -- stat, readlink, statfs -------------------------------------------------

def _view(call: Call, obj: Obj) -> Override:
    return fakefs.view(obj) if call.sb.fake_ids else Override.from_stat(obj.st)


def _stat(call: Call, obj: Obj, buf_i: int) -> int:
    with obj:
        call.write(call.arg(buf_i), statbuf.pack_stat(obj.st, _view(call, obj)))
    return 0


@performed
def stat_(call: Call) -> int:
    return _stat(call, find(call, 0), 1)


@performed
def lstat(call: Call) -> int:
    return _stat(call, find(call, 0, follow=False), 1)


@performed
def fstat(call: Call) -> int:
    return _stat(call, tracee_file(call, call.iarg(0)), 1)


@performed
def newfstatat(call: Call) -> int:
    flags = call.iarg(3)
    _check_at(flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800 | 0x6000)
    if call.arg(1) == 0 and flags & AT_EMPTY_PATH:
        return _stat(call, tracee_file(call, call.iarg(0)), 2)   # a NULL path: 6.11+
    return _stat(call, find(call, 1, 0, follow=_follow(flags), flags=flags), 2)


@performed
def statx(call: Call) -> int:
    flags, mask = call.iarg(2), call.arg(3) & 0xFFFFFFFF
    if call.arg(1) == 0 and flags & AT_EMPTY_PATH:
        obj = tracee_file(call, call.iarg(0))     # statx(fd, NULL, AT_EMPTY_PATH): 6.11+
    else:
        obj = find(call, 1, 0, follow=_follow(flags), flags=flags)
    with obj:
        try:
            raw = statbuf.statx(obj.fd, b"", AT_EMPTY_PATH | flags & 0x6000, mask)
        except OSError as exc:
            raise oserror(exc) from None
        data = statbuf.patch_statx(raw, fakefs.view(obj)) if call.sb.fake_ids else bytes(raw)
        call.write(call.arg(4), data)
    return 0


@performed
def statfs(call: Call) -> int:
    """The host file system of the file found (fstatfs, not trapped, stays
    the host's: README, Limits), read-only as its container mount is."""
    with find(call, 0) as obj:
        buf = ctypes.create_string_buffer(STATFS_SIZE)
        if libc.fstatfs(obj.fd, buf) != 0:
            raise Errno(ctypes.get_errno() or errno.EIO)
        if obj.mount is not None and obj.mount.shown_readonly:   # (notify.c statfs_ too)
            flags, = struct.unpack_from("=Q", buf, F_FLAGS)
            struct.pack_into("=Q", buf, F_FLAGS, flags | ST_RDONLY)
        call.write(call.arg(1), buf.raw)
    return 0


def _readlink(call: Call, dirfd_i: int | None, path_i: int, buf_i: int, size_i: int) -> int:
    """Symlink targets are guest text already; /proc magic links are
    answered with the guest path they name."""
    size = call.iarg(size_i)
    if size <= 0:
        raise Errno(errno.EINVAL)
    path = read_path(call, path_i)
    if not path and dirfd_i is not None:       # readlinkat(fd, ""): the fd's own symlink
        with tracee_file(call, call.iarg(dirfd_i)) as obj:
            target = _readlink_at(obj.fd, b"")
    else:
        with call.sb.resolver.resolve(call.proc, call.tid, path,
                                      call.iarg(dirfd_i) if dirfd_i is not None else AT_FDCWD,
                                      follow=False) as r:
            target = _link_text(call, r)
    data = target[:size]
    call.write(call.arg(buf_i), data)
    return len(data)


def _readlink_at(dirfd: int, name: bytes) -> bytes:
    try:
        return os.readlink(name, dir_fd=dirfd)
    except OSError as exc:
        raise oserror(exc, errno.EINVAL) from None


def _link_text(call: Call, r: Resolved) -> bytes:
    if r.proc is not None:
        text = _proc_link_text(call, r)
        if text is not None:
            return text
        try:
            return os.readlink(r.proc)
        except OSError as exc:
            raise oserror(exc, errno.EINVAL) from None
    if not r.name or r.name == b".":
        raise Errno(errno.EINVAL)
    if r.must_dir:                       # "x/": a directory's name, never a symlink's
        st = stat_at(r)
        raise Errno(errno.ENOENT if st is None else
                    errno.EINVAL if stat.S_ISDIR(st.st_mode) else errno.ENOTDIR)
    return _readlink_at(r.dirfd, r.name)


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
        raise oserror(exc, errno.ENOENT) from None
    if raw.endswith(b" (deleted)"):
        guest_path = call.sb.resolver.guest_of_host(call.proc, raw[:-len(b" (deleted)")])
        if guest_path is not None:
            return guest_path + b" (deleted)"
    return raw


@performed
def readlink(call: Call) -> int:
    return _readlink(call, None, 0, 1, 2)


@performed
def readlinkat(call: Call) -> int:
    return _readlink(call, 0, 1, 2, 3)


# -- creating and removing names -------------------------------------------

def _mkdir(call: Call, path_i: int, dirfd_i: int | None, mode: int) -> int:
    with parent_of(call, path_i, dirfd_i) as r:
        if not r.name:
            raise Errno(errno.EEXIST)
        dac.may_create(r.dirfd, r.name)
        perm = mode & 0o7777 & ~umask_of(call.tid)
        old = os.umask(0)
        try:
            os.mkdir(r.name, perm, dir_fd=r.dirfd)
        except OSError as exc:
            raise oserror(exc) from None
        finally:
            os.umask(old)
        if fakefs.creator(call):
            fakefs.own_new(call, r)
    return 0


@performed
def mkdir(call: Call) -> int:
    return _mkdir(call, 0, None, call.arg(1))


@performed
def mkdirat(call: Call) -> int:
    return _mkdir(call, 1, 0, call.arg(2))


def _mknod(call: Call, path_i: int, dirfd_i: int | None, mode: int, dev: int) -> int:
    """Fifos, sockets and regular files are real. Character and block
    devices are real as root (with CAP_MKNOD); unprivileged they are files
    recorded as devices (fakefs)."""
    kind = stat.S_IFMT(mode) or stat.S_IFREG
    if kind not in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK):
        raise Errno(errno.EPERM if kind == stat.S_IFDIR else errno.EINVAL)   # may_mknod()
    with parent_of(call, path_i, dirfd_i) as r:
        make_at(r)
        if exists_at(r):
            raise Errno(errno.EEXIST)
        dac.may_create(r.dirfd)
        perm = mode & 0o7777 & ~umask_of(call.tid)
        if call.sb.fake_ids and kind in (stat.S_IFCHR, stat.S_IFBLK):
            return fakefs.mknod_device(call, r, kind, perm, dev)
        old = os.umask(0)
        try:
            os.mknod(r.name, kind | perm, dev, dir_fd=r.dirfd)
        except OSError as exc:
            raise oserror(exc) from None
        finally:
            os.umask(old)
        if fakefs.creator(call):
            fakefs.own_new(call, r)
    return 0


@performed
def mknod(call: Call) -> int:
    return _mknod(call, 0, None, call.arg(1) & 0xFFFFFFFF, call.arg(2))


@performed
def mknodat(call: Call) -> int:
    return _mknod(call, 1, 0, call.arg(2) & 0xFFFFFFFF, call.arg(3))


def _unslashed(call: Call, path_i: int) -> tuple[bytes, bool, bytes]:
    """A name a call removes or renames: its path without trailing slashes,
    whether it had any, and its last component. The last name is never
    followed, slashes or not: "link/" names the symlink (ENOTDIR where a
    directory is needed), not the directory it points to."""
    path = read_path(call, path_i)
    name = path.rstrip(b"/") or path[:1]
    return name, name != path, b"/" if name == b"/" else name.rsplit(b"/", 1)[-1]


def _is_dir_at(r: Resolved) -> bool | None:
    st = stat_at(r)
    return None if st is None else stat.S_ISDIR(st.st_mode)


def _remove(call: Call, path_i: int, dirfd_i: int | None, directory: bool) -> int:
    name, trailing_slash, last = _unslashed(call, path_i)
    with parent_of(call, path_i, dirfd_i, creating=False, path=name) as r:
        if last == b"/" or (last in (b".", b"..") and not directory):
            raise Errno(errno.EBUSY if directory else errno.EISDIR)
        if directory and last in (b".", b".."):
            raise Errno(errno.EINVAL if last == b"." else errno.ENOTEMPTY)
        if trailing_slash and not directory:
            is_dir = _is_dir_at(r)
            raise Errno(errno.ENOENT if is_dir is None else
                        errno.EISDIR if is_dir else errno.ENOTDIR)
        if not r.name:                         # a mount point
            raise Errno(errno.EBUSY if directory or not stat_at(r) or
                        not stat.S_ISDIR(stat_at(r).st_mode) else errno.EISDIR)  # type: ignore[union-attr]
        dac.may_delete(r.dirfd, r.name)
        try:
            if directory:
                beside_mounts(lambda: os.rmdir(r.name, dir_fd=r.dirfd))
            else:
                beside_mounts(lambda: os.unlink(r.name, dir_fd=r.dirfd))
        except OSError as exc:
            raise oserror(exc) from None
    return 0


@performed
def rmdir(call: Call) -> int:
    return _remove(call, 0, None, True)


@performed
def unlink(call: Call) -> int:
    return _remove(call, 0, None, False)


@performed
def unlinkat(call: Call) -> int:
    flags = call.iarg(2)
    _check_at(flags, AT_REMOVEDIR)
    return _remove(call, 1, 0, bool(flags & AT_REMOVEDIR))


def _symlink(call: Call, target_i: int, path_i: int, dirfd_i: int | None) -> int:
    """The target is stored as the guest wrote it."""
    target = read_path(call, target_i)
    if not target:
        raise Errno(errno.ENOENT)
    with parent_of(call, path_i, dirfd_i) as r:
        make_at(r)
        dac.may_create(r.dirfd, r.name)
        try:
            os.symlink(target, r.name, dir_fd=r.dirfd)
        except OSError as exc:
            raise oserror(exc) from None
    return 0


@performed
def symlink(call: Call) -> int:
    return _symlink(call, 0, 1, None)


@performed
def symlinkat(call: Call) -> int:
    return _symlink(call, 0, 2, 1)


def _rename(call: Call, old: tuple[int | None, int], new: tuple[int | None, int],
            flags: int) -> int:
    """Both names in the same mount (EXDEV otherwise, as between two real
    mounts); a mount point cannot move (EBUSY)."""
    if flags & ~RENAME_FLAGS:
        raise Errno(errno.EINVAL)
    old_name, old_slash, old_last = _unslashed(call, old[1])
    new_name, new_slash, new_last = _unslashed(call, new[1])
    with parent_of(call, old[1], old[0], creating=False, path=old_name) as o, \
            parent_of(call, new[1], new[0], path=new_name) as n:
        if not o.name or not n.name or {old_last, new_last} & {b".", b"..", b"/"}:
            raise Errno(errno.EBUSY)
        if o.mount is not n.mount:
            raise Errno(errno.EXDEV)
        # as Linux's do_renameat2: a slash on either name asks for a directory
        exchange = bool(flags & RENAME_EXCHANGE)
        if (old_slash or (new_slash and not exchange)) and _is_dir_at(o) is False:
            raise Errno(errno.ENOTDIR)
        if new_slash and exchange and _is_dir_at(n) is False:
            raise Errno(errno.ENOTDIR)
        dac.may_rename(o.dirfd, o.name, n.dirfd, n.name, flags)
        try:
            beside_mounts(lambda: _renameat2(o.dirfd, o.name, n.dirfd, n.name, flags))
        except OSError as exc:
            raise oserror(exc) from None
    return 0


@performed
def rename(call: Call) -> int:
    return _rename(call, (None, 0), (None, 1), 0)


@performed
def renameat(call: Call) -> int:
    return _rename(call, (0, 1), (2, 3), 0)


@performed
def renameat2(call: Call) -> int:
    return _rename(call, (0, 1), (2, 3), call.iarg(4) & 0xFFFFFFFF)


def _link(call: Call, old: tuple[int | None, int], new: tuple[int | None, int],
          flags: int) -> int:
    """A hard link to exactly the file found (through its O_PATH descriptor's
    magic link), in the same mount."""
    _check_at(flags, AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)
    with find(call, old[1], old[0], follow=bool(flags & AT_SYMLINK_FOLLOW),
              flags=flags) as obj, parent_of(call, new[1], new[0]) as n:
        make_at(n)
        if exists_at(n):
            raise Errno(errno.EEXIST)
        # a file reached through a descriptor (AT_EMPTY_PATH, /proc/PID/fd/N
        # followed) is on the mount its own path names
        home = obj.mount if obj.r is None or obj.r.proc is None else \
            mount_of_host(call, os.readlink(obj.path))
        if home is None or home is not n.mount:
            raise Errno(errno.EXDEV)
        dac.may_link(obj.fd, obj.st)
        dac.may_create(n.dirfd)
        if stat.S_ISDIR(obj.st.st_mode):
            raise Errno(errno.EPERM)
        try:
            os.link(obj.path, n.name, dst_dir_fd=n.dirfd, follow_symlinks=True)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise oserror(exc) from None
            _link_again(obj, n)
    return 0


def _link_again(obj: Obj, n: Resolved) -> None:
    """A file the process opened itself is on its mount namespace's copy of
    the mount (as root), which the kernel will not link across to ours:
    the same inode, opened again by its path in ours (at_home: the
    supervisor's, whose mounts the resolved descriptors are on), is linked
    instead."""
    host = os.readlink(obj.path)
    try:
        fd = at_home(lambda: os.open(host, OBJ | os.O_NOFOLLOW)) if host.startswith(b"/") else -1
    except OSError:
        fd = -1
    if fd < 0:
        raise Errno(errno.EXDEV)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (obj.st.st_dev, obj.st.st_ino):
            raise Errno(errno.EXDEV)       # renamed meanwhile: not the file asked for
        os.link(b"/proc/self/fd/%d" % fd, n.name, dst_dir_fd=n.dirfd, follow_symlinks=True)
    except OSError as exc:
        raise oserror(exc) from None
    finally:
        os.close(fd)


@performed
def link(call: Call) -> int:
    return _link(call, (None, 0), (None, 1), 0)


@performed
def linkat(call: Call) -> int:
    return _link(call, (0, 1), (2, 3), call.iarg(4))


# -- metadata ----------------------------------------------------------------

def _chmod(call: Call, obj: Obj, mode: int) -> int:
    if call.sb.fake_ids:
        return fakefs.chmod(call, obj, mode)
    if obj.is_link:
        raise Errno(errno.EOPNOTSUPP)       # fchmodat2(AT_SYMLINK_NOFOLLOW) on a symlink
    try:
        os.chmod(obj.path, mode & 0o7777)
    except OSError as exc:
        raise oserror(exc) from None
    return 0


def _path_chmod(call: Call, path_i: int, dirfd_i: int | None, mode: int, flags: int) -> int:
    with changing(call, path_i, dirfd_i, follow=_follow(flags), flags=flags) as obj:
        return _chmod(call, obj, mode)


@performed
def chmod(call: Call) -> int:
    return _path_chmod(call, 0, None, call.arg(1), 0)


@performed
def fchmodat(call: Call) -> int:
    return _path_chmod(call, 1, 0, call.arg(2), 0)


@performed
def fchmodat2(call: Call) -> int:
    flags = call.iarg(3)
    _check_at(flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
    return _path_chmod(call, 1, 0, call.arg(2), flags)


def _ids(call: Call, i: int) -> int:
    v = call.arg(i) & 0xFFFFFFFF
    return -1 if v == 0xFFFFFFFF else v


def _chown(call: Call, obj: Obj, uid: int, gid: int) -> int:
    if call.sb.fake_ids:
        return fakefs.chown(call, obj, uid, gid)
    try:
        os.chown(obj.path, uid, gid)
    except OSError as exc:
        raise oserror(exc) from None
    return 0


def _path_chown(call: Call, path_i: int, dirfd_i: int | None, ids: tuple[int, int],
                flags: int) -> int:
    with changing(call, path_i, dirfd_i, follow=_follow(flags), flags=flags) as obj:
        return _chown(call, obj, *ids)


@performed
def chown(call: Call) -> int:
    return _path_chown(call, 0, None, (_ids(call, 1), _ids(call, 2)), 0)


@performed
def lchown(call: Call) -> int:
    return _path_chown(call, 0, None, (_ids(call, 1), _ids(call, 2)), AT_SYMLINK_NOFOLLOW)


@performed
def fchownat(call: Call) -> int:
    flags = call.iarg(4)
    _check_at(flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
    return _path_chown(call, 1, 0, (_ids(call, 2), _ids(call, 3)), flags)


def _truncatable(obj: Obj) -> None:
    if stat.S_ISDIR(obj.st.st_mode):
        raise Errno(errno.EISDIR)
    if not stat.S_ISREG(obj.st.st_mode):
        raise Errno(errno.EINVAL)
    dac.need(obj.fd, dac.MAY_WRITE, obj.st)


@performed
def truncate(call: Call) -> int:
    length = call.arg(1)
    if length >= 1 << 63:
        raise Errno(errno.EINVAL)
    with changing(call, 0, check=_truncatable) as obj:
        try:
            fd = os.open(obj.path, os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise oserror(exc) from None
        try:
            os.ftruncate(fd, length)
        except OSError as exc:
            raise oserror(exc) from None
        finally:
            os.close(fd)
    return 0


class _Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


def _set_times(obj: Obj, times: tuple[tuple[int, int], tuple[int, int]] | None) -> int:
    """utimensat on exactly obj (through its O_PATH descriptor)."""
    buf = None if times is None else (_Timespec * 2)(_Timespec(*times[0]), _Timespec(*times[1]))
    if libc.utimensat(obj.fd, b"", buf, AT_EMPTY_PATH) != 0:
        raise Errno(ctypes.get_errno() or errno.EIO)
    return 0


def _timespecs(call: Call, addr: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    if addr == 0:
        return None
    a_sec, a_nsec, m_sec, m_nsec = struct.unpack("<qqqq", call.read(addr, 32))
    return (a_sec, a_nsec), (m_sec, m_nsec)


def _timevals(call: Call, addr: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    if addr == 0:
        return None
    a_sec, a_usec, m_sec, m_usec = struct.unpack("<qqqq", call.read(addr, 32))
    if not (0 <= a_usec < 1000000 and 0 <= m_usec < 1000000):
        raise Errno(errno.EINVAL)
    return (a_sec, a_usec * 1000), (m_sec, m_usec * 1000)


def _utimes(call: Call, path_i: int | None, dirfd_i: int | None,
            times: tuple[tuple[int, int], tuple[int, int]] | None, flags: int = 0) -> int:
    # explicit times are the owner's; "now" (NULL, or UTIME_NOW for both) a writer's too
    explicit = times is not None and not all(t[1] == UTIME_NOW for t in times)
    with changing(call, path_i, dirfd_i, follow=_follow(flags), flags=flags,
                  check=lambda obj: dac.may_set_times(obj.fd, obj.st, explicit)) as obj:
        return _set_times(obj, times)


@performed
def utime(call: Call) -> int:
    times = None
    if call.arg(1):
        atime, mtime = struct.unpack("<qq", call.read(call.arg(1), 16))
        times = ((atime, 0), (mtime, 0))
    return _utimes(call, 0, None, times)


@performed
def utimes(call: Call) -> int:
    return _utimes(call, 0, None, _timevals(call, call.arg(1)))


@performed
def futimesat(call: Call) -> int:
    times = _timevals(call, call.arg(2))
    if call.arg(1) == 0:
        return _futimens(call, times)
    return _utimes(call, 1, 0, times)


@performed
def utimensat(call: Call) -> int:
    flags = call.iarg(3)
    _check_at(flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
    times = _timespecs(call, call.arg(2))
    if times is not None and all(t[1] == UTIME_OMIT for t in times):
        return 0
    if call.arg(1) == 0:
        return _futimens(call, times)
    return _utimes(call, 1, 0, times, flags)


def _futimens(call: Call, times: tuple[tuple[int, int], tuple[int, int]] | None) -> int:
    """utimensat(fd, NULL, ...) / futimesat(fd, NULL, ...): the fd's file."""
    if call.iarg(0) == AT_FDCWD:
        raise Errno(errno.EFAULT)
    return _utimes(call, None, 0, times)


SYS_fchmod, SYS_fchown, SYS_fsetxattr, SYS_fremovexattr = 91, 93, 190, 199


def fd_metadata(call: Call) -> int | None:
    """fsetxattr, fremovexattr, fchmod and fchown, made here on the file the
    fd names when it is looked at (brandpy's own xattrs are refused,
    permissions checked): never handed back to the kernel, which would look
    the fd up again, after another thread could have made it an image
    file's (dup2). An O_PATH or closed fd is EBADF, as the kernel says
    before it reads a name; the xattr calls take AT_FDCWD for the cwd, as
    Linux 6.13's do."""
    if call.iarg(0) != AT_FDCWD or call.nr not in (SYS_fsetxattr, SYS_fremovexattr):
        check_not_opath(call, call.iarg(0))
    check_fd_writable(call, call.iarg(0))
    obj = tracee_file(call, call.iarg(0))
    with as_tracee(call.proc.cred, call.sb):
        try:
            obj = writable(call, obj)
            if call.nr == SYS_fchmod:
                return _chmod(call, obj, call.arg(1))
            if call.nr == SYS_fchown:
                return _chown(call, obj, _ids(call, 1), _ids(call, 2))
            if call.nr == SYS_fsetxattr:
                return _setxattr(call, obj, 1, call.arg(2), call.arg(3), call.iarg(4))
            return _removexattr(call, obj, 1)
        finally:
            obj.close()


@performed
def fchmod(call: Call) -> int:
    """Unprivileged: recorded (fakefs)."""
    check_not_opath(call, call.iarg(0))
    check_fd_writable(call, call.iarg(0))
    with writable(call, tracee_file(call, call.iarg(0))) as obj:
        return _chmod(call, obj, call.arg(1))


@performed
def fchown(call: Call) -> int:
    """Unprivileged: recorded (fakefs)."""
    check_not_opath(call, call.iarg(0))
    check_fd_writable(call, call.iarg(0))
    with writable(call, tracee_file(call, call.iarg(0))) as obj:
        return _chown(call, obj, _ids(call, 1), _ids(call, 2))


# -- extended attributes -----------------------------------------------------

# brandpy's own bookkeeping (fake ownership, the image files of a hard-link
# farm): not the container's to read or change
OWN_XATTRS = frozenset({fsmeta.XATTR.encode(), MARKER.encode()})


def _xattr_name(call: Call, i: int, obj: Obj, write: bool) -> bytes:
    """The name, ERANGE when empty or longer than XATTR_NAME_MAX."""
    try:
        name = call.read_str(call.arg(i), XATTR_NAME_MAX + 1)
    except Errno as exc:
        raise Errno(errno.ERANGE if exc.errno == errno.ENAMETOOLONG else exc.errno) from None
    if not name:
        raise Errno(errno.ERANGE)
    if name in OWN_XATTRS:
        raise Errno(errno.EPERM if write else errno.ENODATA)
    dac.may_xattr(obj.fd, obj.st, name, write)
    return name


# the kernel checks capabilities beyond the filesystem ones for these
# (CAP_SYS_ADMIN, CAP_SETFCAP): made with the caller's exact capabilities,
# never the supervisor's
CAPABLE_XATTRS = (b"trusted.", b"security.")


def _as_caller(call: Call, exact: bool) -> AbstractContextManager[None]:
    return as_tracee(call.proc.cred, call.sb, exact=True) if exact else nullcontext()


def _setxattr(call: Call, obj: Obj, name_i: int, value_p: int, size: int, flags: int) -> int:
    name = _xattr_name(call, name_i, obj, True)
    if size > XATTR_SIZE_MAX:
        raise Errno(errno.E2BIG)
    value = call.read(value_p, size) if size else b""
    try:
        with _as_caller(call, name.startswith(CAPABLE_XATTRS)):
            os.setxattr(obj.path, name, value, flags)
    except OSError as exc:
        raise oserror(exc) from None
    return 0


def _removexattr(call: Call, obj: Obj, name_i: int) -> int:
    name = _xattr_name(call, name_i, obj, True)
    try:
        with _as_caller(call, name.startswith(CAPABLE_XATTRS)):
            os.removexattr(obj.path, name)
    except OSError as exc:
        raise oserror(exc) from None
    return 0


def _give(call: Call, data: bytes, buf: int, size: int) -> int:
    """getxattr/listxattr's answer: the size wanted for size 0, ERANGE when
    it does not fit."""
    if size == 0:
        return len(data)
    if len(data) > size:
        raise Errno(errno.ERANGE)
    call.write(buf, data)
    return len(data)


def _getxattr(call: Call, obj: Obj, name_i: int, buf: int, size: int) -> int:
    name = _xattr_name(call, name_i, obj, False)
    try:
        with _as_caller(call, name.startswith(CAPABLE_XATTRS)):
            value = os.getxattr(obj.path, name)
    except OSError as exc:
        raise oserror(exc) from None
    return _give(call, value, buf, size)


def _listxattr(call: Call, obj: Obj, buf: int, size: int) -> int:
    try:
        with _as_caller(call, True):       # trusted.* names are listed with CAP_SYS_ADMIN
            names = os.listxattr(obj.path)
    except OSError as exc:
        raise oserror(exc) from None
    return _give(call, b"".join(os.fsencode(n) + b"\0" for n in names
                                if os.fsencode(n) not in OWN_XATTRS), buf, size)


def _open_file(call: Call) -> Obj:
    """The open file fd arg 0 holds, duplicated (pipes and sockets too);
    an O_PATH fd is EBADF, as fgetxattr's and flistxattr's fdget says."""
    fd = call.iarg(0)
    own = call.sb.grab_fd(call.proc, fd)
    if fcntl.fcntl(own, fcntl.F_GETFL) & os.O_PATH:
        os.close(own)
        raise Errno(errno.EBADF)
    return Obj(own, os.fstat(own), None, tracee_fd=fd)


@performed
def fgetxattr(call: Call) -> int:
    """Made here so that brandpy's own xattrs stay hidden (ENODATA)."""
    with _open_file(call) as obj:
        return _getxattr(call, obj, 1, call.arg(2), call.arg(3))


@performed
def flistxattr(call: Call) -> int:
    """Made here so that brandpy's own xattrs stay unlisted."""
    with _open_file(call) as obj:
        return _listxattr(call, obj, call.arg(1), call.arg(2))


@performed
def setxattr(call: Call) -> int:
    with changing(call, 0) as obj:
        return _setxattr(call, obj, 1, call.arg(2), call.arg(3), call.iarg(4))


@performed
def lsetxattr(call: Call) -> int:
    with changing(call, 0, follow=False) as obj:
        return _setxattr(call, obj, 1, call.arg(2), call.arg(3), call.iarg(4))


@performed
def removexattr(call: Call) -> int:
    with changing(call, 0) as obj:
        return _removexattr(call, obj, 1)


@performed
def lremovexattr(call: Call) -> int:
    with changing(call, 0, follow=False) as obj:
        return _removexattr(call, obj, 1)


@performed
def getxattr(call: Call) -> int:
    with find(call, 0) as obj:
        return _getxattr(call, obj, 1, call.arg(2), call.arg(3))


@performed
def lgetxattr(call: Call) -> int:
    with find(call, 0, follow=False) as obj:
        return _getxattr(call, obj, 1, call.arg(2), call.arg(3))


@performed
def listxattr(call: Call) -> int:
    with find(call, 0) as obj:
        return _listxattr(call, obj, call.arg(1), call.arg(2))


@performed
def llistxattr(call: Call) -> int:
    with find(call, 0, follow=False) as obj:
        return _listxattr(call, obj, call.arg(1), call.arg(2))


def _xattrat_obj(call: Call, write: bool) -> Obj:
    """setxattrat & co. (Linux 6.13): (dirfd, path, at_flags, ...); a NULL
    path with AT_EMPTY_PATH is the dirfd's file."""
    flags = call.iarg(2)
    _check_at(flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
    if call.arg(1) == 0 and flags & AT_EMPTY_PATH:
        obj = tracee_file(call, call.iarg(0))
    else:
        obj = find(call, 1, 0, follow=_follow(flags), flags=flags)
    return writable(call, obj) if write else obj


def _xattr_args(call: Call) -> tuple[int, int, int]:
    """struct xattr_args {value, size, flags}."""
    if call.arg(5) < 16:
        raise Errno(errno.EINVAL)
    return struct.unpack("<QII", call.read(call.arg(4), 16))


@performed
def setxattrat(call: Call) -> int:
    value, size, flags = _xattr_args(call)
    with _xattrat_obj(call, True) as obj:
        return _setxattr(call, obj, 3, value, size, flags)


@performed
def getxattrat(call: Call) -> int:
    value, size, flags = _xattr_args(call)
    if flags:
        raise Errno(errno.EINVAL)
    with _xattrat_obj(call, False) as obj:
        return _getxattr(call, obj, 3, value, size)


@performed
def listxattrat(call: Call) -> int:
    with _xattrat_obj(call, False) as obj:
        return _listxattr(call, obj, call.arg(3), call.arg(4))


@performed
def removexattrat(call: Call) -> int:
    with _xattrat_obj(call, True) as obj:
        return _removexattr(call, obj, 3)


# -- file attributes (Linux 6.17) -----------------------------------------------

SYS_file_getattr, SYS_file_setattr = 468, 469


def _file_attr(call: Call, write: bool) -> int:
    """file_getattr/file_setattr(dirfd, path, attr, size, at_flags): made
    on the file found, with the attribute struct copied through."""
    flags = call.iarg(4)
    _check_at(flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
    size = call.arg(3)
    if size > 4096:
        raise Errno(errno.E2BIG)
    if call.arg(1) == 0 and flags & AT_EMPTY_PATH:
        obj = tracee_file(call, call.iarg(0))
    else:
        obj = find(call, 1, 0, follow=_follow(flags), flags=flags)
    if write:
        obj = writable(call, obj)
    with obj:
        buf = ctypes.create_string_buffer(call.read(call.arg(2), size) if write else b"", size)
        nr = SYS_file_setattr if write else SYS_file_getattr
        if libc.syscall(nr, obj.fd, b"", buf, ctypes.c_size_t(size), AT_EMPTY_PATH) != 0:
            raise Errno(ctypes.get_errno() or errno.EIO)
        if not write:
            call.write(call.arg(2), buf.raw)
    return 0


@performed
def file_getattr(call: Call) -> int:
    return _file_attr(call, False)


@performed
def file_setattr(call: Call) -> int:
    return _file_attr(call, True)


# -- directories and roots -------------------------------------------------

def chdir(call: Call) -> None:
    """Made by the tracee (its cwd must change), on the host path of the
    directory checked here. A race can only move the kernel's cwd, never
    what the container reaches: every later path is resolved here from the
    cwd's guest path, and a cwd outside the container counts as its root;
    the Landlock walls confine the kernel's walk."""
    with as_tracee(call.proc.cred, call.sb), find(call, 0) as obj:
        if not stat.S_ISDIR(obj.st.st_mode):
            raise Errno(errno.ENOTDIR)
        if not dac.allowed(obj.fd, dac.MAY_EXEC, obj.st):
            raise Errno(errno.EACCES)
        assert obj.r is not None
        host = obj.r.host
    call.set_arg(0, call.push_str(host))


def fchdir(call: Call) -> None:
    """Runs natively once the caller may search the directory, which the
    host kernel cannot check between emulated users (one host user to it).
    A bad fd or a non-directory is left to the kernel (EBADF, ENOTDIR); a
    sibling that swaps the fd in between moves the kernel's cwd only, as
    for chdir."""
    try:
        own = call.sb.grab_fd(call.proc, call.iarg(0))
    except Errno:
        return None
    try:
        st = os.fstat(own)
        with as_tracee(call.proc.cred, call.sb):
            if stat.S_ISDIR(st.st_mode) and not dac.allowed(own, dac.MAY_EXEC, st):
                raise Errno(errno.EACCES)
    finally:
        os.close(own)
    return None


def getcwd(call: Call) -> int:
    """Emulated: the kernel would print the host path. A cwd removed since
    is ENOENT, as Linux says."""
    link = b"/proc/%d/cwd" % call.tid
    try:
        if os.readlink(link).endswith(b" (deleted)") and not os.stat(link).st_nlink:
            raise Errno(errno.ENOENT)
    except OSError as exc:
        raise Errno(exc.errno or errno.ESRCH) from None
    guest = b"/" + b"/".join(call.sb.resolver.cwd_components(call.proc, call.tid))
    guest = call.sb.resolver.relative_to_root(call.proc, guest) + b"\0"
    if call.arg(1) < len(guest):
        raise Errno(errno.ERANGE)
    call.write(call.arg(0), guest)
    return len(guest)


@performed
def chroot(call: Call) -> int:
    """Emulated: the new root applies to this process and its children."""
    with find(call, 0) as obj:
        if not stat.S_ISDIR(obj.st.st_mode):
            raise Errno(errno.ENOTDIR)
        if not dac.allowed(obj.fd, dac.MAY_EXEC, obj.st):
            raise Errno(errno.EACCES)
        if not capable(call, "CAP_SYS_CHROOT"):     # after the path's own errors
            raise Errno(errno.EPERM)
        assert obj.r is not None
        call.proc.root = obj.r.guest
    call.sb.changed(call.proc)
    return 0


# -- watches and handles ------------------------------------------------------

@performed
def inotify_add_watch(call: Call) -> int:
    """The watch is added to the tracee's inotify instance (taken with
    pidfd_getfd) on exactly the file found."""
    mask = call.arg(2) & 0xFFFFFFFF
    with find(call, 1, follow=not mask & IN_DONT_FOLLOW) as obj:
        dac.need(obj.fd, dac.MAY_READ, obj.st)
        if not obj.readonly:
            # an image file is shared with other containers: the watch goes
            # on the container's own copy, which its writes will change
            obj = writable(call, obj)
        if mask & IN_ONLYDIR and not stat.S_ISDIR(obj.st.st_mode):
            raise Errno(errno.ENOTDIR)
        fd = call.sb.grab_fd(call.proc, call.iarg(0))
        try:
            wd = int(libc.inotify_add_watch(fd, obj.path, mask & ~(IN_DONT_FOLLOW | IN_ONLYDIR)))
            if wd < 0:
                raise Errno(ctypes.get_errno() or errno.EINVAL)
            return wd
        finally:
            os.close(fd)


@performed
def fanotify_mark(call: Call) -> int:
    flags, mask = call.arg(1) & 0xFFFFFFFF, call.arg(2)
    if call.arg(4) == 0:
        obj = tracee_file(call, call.iarg(3))
    else:
        obj = find(call, 4, 3, follow=not flags & FAN_MARK_DONT_FOLLOW)
    with obj:
        if flags & FAN_MARK_ONLYDIR and not stat.S_ISDIR(obj.st.st_mode):
            raise Errno(errno.ENOTDIR)
        fd = call.sb.grab_fd(call.proc, call.iarg(0))
        try:
            if libc.fanotify_mark(fd, flags & ~(FAN_MARK_DONT_FOLLOW | FAN_MARK_ONLYDIR),
                                  ctypes.c_uint64(mask), AT_FDCWD, obj.path) != 0:
                raise Errno(ctypes.get_errno() or errno.EINVAL)
        finally:
            os.close(fd)
    return 0


@performed
def name_to_handle_at(call: Call) -> int:
    """The handle of exactly the file found (open_by_handle_at is denied)."""
    flags = call.iarg(4)
    _check_at(flags, AT_SYMLINK_FOLLOW | AT_EMPTY_PATH | 0x200 | 0x001)
    handle_bytes = struct.unpack("<I", call.read(call.arg(2), 4))[0]
    if handle_bytes > 128:
        raise Errno(errno.EINVAL)
    with find(call, 1, 0, follow=bool(flags & AT_SYMLINK_FOLLOW), flags=flags) as obj:
        buf = ctypes.create_string_buffer(struct.pack("<Ii", handle_bytes, 0), 8 + handle_bytes)
        mount_id = ctypes.c_int()
        rc = libc.name_to_handle_at(obj.fd, b"", buf, ctypes.byref(mount_id),
                                    AT_EMPTY_PATH | (flags & 0x201))
        err = ctypes.get_errno()
        if rc != 0 and err != errno.EOVERFLOW:
            raise Errno(err or errno.EINVAL)
        written = 8 + struct.unpack_from("<I", buf.raw)[0] if rc == 0 else 4
        call.write(call.arg(2), buf.raw[:written])
        if rc != 0:
            raise Errno(err)
        call.write(call.arg(3), struct.pack("<i", mount_id.value))
    return 0

