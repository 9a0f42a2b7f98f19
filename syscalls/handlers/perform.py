"""The open family and access, performed by the supervisor: it opens the
file on the resolved directory descriptor (paths.py) and the tracee gets the
new fd through seccomp user notification (SECCOMP_IOCTL_NOTIF_ADDFD), so
the kernel never walks a path the container wrote or can still change.

Performed calls use the tracee's credentials (brandpy/runtime/acting.py).
Opens that would block (a fifo waiting for its other end) finish on a
thread of their own (deferred.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import struct
from collections.abc import Callable
from typing import TypeVar

from brandpy.runtime import dac, devices
from brandpy.runtime.acting import as_tracee
from brandpy.runtime.call import Call, Inject
from brandpy.runtime.errors import Errno
from brandpy.runtime.linux import (
    AT_EACCESS,
    AT_EMPTY_PATH,
    AT_FDCWD,
    AT_SYMLINK_NOFOLLOW,
    RESOLVE_ALL,
    RESOLVE_CACHED,
)
from brandpy.runtime.pathres import MAXSYMLINKS, SCOPED, Resolved

from . import deferred, fakefs
from .paths import (
    copy_up,
    fd_flags,
    find,
    image_inode,
    mount_of_host,
    oserror,
    read_path,
    resolve,
    umask_of,
)

O_ACCMODE = 0o3
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_NOFOLLOW = 0o400000
O_DIRECTORY = 0o200000
O_PATH = 0o10000000
O_TMPFILE = 0o20200000   # __O_TMPFILE | O_DIRECTORY
__O_TMPFILE = 0o20000000  # the bit alone: what Linux tests for a mode
W_OK, X_OK = 2, 1
PTS_MAJORS = range(136, 144)

R = TypeVar("R")

def performed(handler: Callable[[Call], R]) -> Callable[[Call], R]:
    """The handler runs with the caller's filesystem identity."""
    def perform(call: Call) -> R:
        with as_tracee(call.proc.cred, call.sb):
            return handler(call)
    perform.__name__ = handler.__name__
    perform.__doc__ = handler.__doc__
    return perform


def root_like(call: Call) -> bool:
    """Passes permission checks as root does."""
    c = call.proc.cred
    return c.fsuid == 0 and (call.sb.fake_ids or c.capable("CAP_DAC_OVERRIDE"))


# -- access ---------------------------------------------------------------------

def _access(call: Call, dirfd_i: int | None, path_i: int, mode: int, flags: int) -> int:
    if mode & ~7:
        raise Errno(errno.EINVAL)
    # access() checks with the real IDs, faccessat2(AT_EACCESS) with the
    # effective ones; the walk too
    c = call.proc.cred if flags & AT_EACCESS else call.proc.cred.for_access()
    with as_tracee(c, call.sb), \
            find(call, path_i, dirfd_i, follow=not flags & AT_SYMLINK_NOFOLLOW,
                 flags=flags) as obj:
        if mode & W_OK and obj.readonly and (stat.S_ISREG(obj.st.st_mode) or obj.is_link
                                             or stat.S_ISDIR(obj.st.st_mode)):
            raise Errno(errno.EROFS)
        if mode and not dac.allowed(obj.fd, mode, obj.st):
            raise Errno(errno.EACCES)
    return 0


def access(call: Call) -> int:
    return _access(call, None, 0, call.iarg(1), 0)


def faccessat(call: Call) -> int:
    return _access(call, 0, 1, call.iarg(2), 0)


def faccessat2(call: Call) -> int:
    flags = call.iarg(3)
    if flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    return _access(call, 0, 1, call.iarg(2), flags)


# -- open -------------------------------------------------------------------------

class _Again(Exception):
    """The last name turned into a symlink between the walk and the open."""


def _terminal(call: Call) -> int:
    """/dev/tty is the opener's controlling terminal, not the supervisor's:
    a pty the container holds (ptys.PtyView) with the device number the
    kernel gives for it (a new fd of its dentry). The number alone, as a
    host path, would not do: a private devpts instance's pty N is c 136:N,
    as the host's /dev/pts/N, another session's terminal. Two of the
    container's ptys share a number when a console (a host pty) does with
    one of its instance: the one among the opener's open files is taken."""
    with open(b"/proc/%d/stat" % call.tid, "rb") as f:
        tty_nr = int(f.read().rsplit(b")", 1)[1].split()[4])
    major, minor = (tty_nr >> 8) & 0xFFF, (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    held = [dentry for dentry, _ in list(call.sb.ptys.held.values())
            if major in PTS_MAJORS and os.fstat(dentry).st_rdev == os.makedev(major, minor)]
    if len(held) > 1:
        fds = f"/proc/{call.tid}/fd"
        opened = set()
        for fd in os.listdir(fds):
            with contextlib.suppress(OSError):
                st = os.stat(f"{fds}/{fd}")
                opened.add((st.st_dev, st.st_ino))
        held = [d for d in held if (os.fstat(d).st_dev, os.fstat(d).st_ino) in opened] or held
    if not held:
        raise Errno(errno.ENXIO)
    return os.dup(held[0])


_FD_LINK = re.compile(rb"^/proc/(\d+)/(?:task/\d+/)?fd/(\d+)$")


def reopen_check(call: Call, link: bytes, flags: int) -> None:
    """A /proc/PID/fd/N the kernel would follow to a file the container does
    not name: one outside it (inherited stdio), or an image file copied up
    since the fd was opened (the image's own inode). Reopened with no more
    access than that fd has (read for read, write for write, O_APPEND
    kept), never created or truncated, never from an O_PATH fd nor through a
    cwd or root link. The container's own deleted files reopen as on Linux."""
    try:
        target = os.readlink(link)
    except OSError as exc:
        raise oserror(exc, errno.ENOENT) from None
    if not target.startswith(b"/"):
        return                                # pipes, sockets, anonymous inodes
    if target.endswith(_DELETED):
        mount = mount_of_host(call, target[:-len(_DELETED)])
        if mount is not None and not mount.readonly and not image_inode(link):
            return
    m = _FD_LINK.match(link)
    have = fd_flags(int(m.group(1)), int(m.group(2))) if m is not None else -1
    want_acc, have_acc = flags & O_ACCMODE, have & O_ACCMODE
    want_write = want_acc != os.O_RDONLY
    if have < 0 or have & O_PATH or flags & (O_CREAT | O_TRUNC) or \
            (want_acc != os.O_WRONLY and have_acc == os.O_WRONLY) or \
            (want_write and have_acc == os.O_RDONLY) or \
            (want_write and have & os.O_APPEND and not flags & os.O_APPEND):
        raise Errno(errno.EACCES, "reopening a file outside the container")


_DELETED = b" (deleted)"


def _open_writes(flags: int, exists: bool) -> bool:
    if flags & O_ACCMODE in (os.O_WRONLY, os.O_RDWR) or flags & O_TRUNC:
        return True
    if flags & O_TMPFILE == O_TMPFILE:
        return True
    # O_CREAT of an existing file only opens it (the kernel allows that on a
    # read-only mount too)
    return bool(flags & O_CREAT) and not exists


def open_how(call: Call, dirfd_i: int | None, path_i: int, flags: int, mode: int,
             resolve_flags: int = 0) -> int | Inject | None:
    """Open as the caller would, and hand it the new fd (O_PATH excepted)."""
    if flags & O_PATH:
        raise Errno(errno.EINVAL)            # O_PATH opens are made by the tracee (opath.py)
    path = read_path(call, path_i)
    follow = not (flags & O_NOFOLLOW) and not (flags & O_CREAT and flags & O_EXCL)
    with as_tracee(call.proc.cred, call.sb):
        for _ in range(MAXSYMLINKS):
            with resolve(call, path_i, dirfd_i, follow=follow, path=path,
                         resolve_flags=resolve_flags) as r:
                try:
                    return _open_resolved(call, r, flags, mode, follow)
                except _Again:
                    continue
    raise Errno(errno.ELOOP)


def _open_resolved(call: Call, r: Resolved, flags: int, mode: int,
                   follow: bool) -> int | Inject | None:
    real_flags = (flags | os.O_CLOEXEC | O_NOCTTY) & ~os.O_ASYNC
    cloexec = bool(flags & os.O_CLOEXEC)
    if r.proc is not None:
        return _open_proc(call, r, real_flags, mode, cloexec)
    if r.must_dir:
        if flags & O_CREAT:
            raise Errno(errno.EISDIR)
        real_flags |= O_DIRECTORY
    obj = _object(r)
    try:
        return _open_object(call, r, obj, flags, real_flags, mode, follow, cloexec)
    finally:
        if obj >= 0:
            os.close(obj)


def _object(r: Resolved) -> int:
    """An O_PATH fd of what r names now (-1: nothing there). What opens is
    this inode, checked: never a name walked again."""
    try:
        if not r.name:
            return os.dup(r.dirfd)
        return os.open(r.name, O_PATH | O_NOFOLLOW | os.O_CLOEXEC, dir_fd=r.dirfd)
    except FileNotFoundError:
        return -1
    except OSError as exc:
        raise oserror(exc) from None


def _open_object(call: Call, r: Resolved, obj: int, flags: int, real_flags: int, mode: int,
                 follow: bool, cloexec: bool, copied: bool = False) -> int | Inject | None:
    st = os.fstat(obj) if obj >= 0 else None
    if st is not None and stat.S_ISLNK(st.st_mode) and follow:
        raise _Again
    if r.mount.kind == "pts" and not r.name:
        call.sb.ptys.prune()       # its listing: the ptys the kernel freed are gone
    if _open_writes(flags, st is not None):
        if r.readonly:
            raise Errno(errno.EROFS)
        if st is not None and stat.S_ISREG(st.st_mode):
            if r.name and copy_up(r):
                if copied:
                    raise _Again
                # the container's own copy is there now: open it, not what
                # a link walked again (/proc/self/fd/N) leads to, the image's
                copy = _object(r)
                try:
                    return _open_object(call, r, copy, flags, real_flags, mode, follow,
                                        cloexec, copied=True)
                finally:
                    if copy >= 0:
                        os.close(copy)
            if image_inode(b"/proc/self/fd/%d" % obj):
                # no name to copy it up under (a bind mount's root): the image's inode
                raise Errno(errno.EROFS, "an image file the container cannot copy up")
    opener: _Opener
    target = -1      # the given device a fake device record stands for
    if r.mount.kind == "device" and r.mount.host == b"/dev/tty":
        opener = _Opener(_terminal(call), None, real_flags & ~O_NOFOLLOW, 0)
    elif st is None or (flags & O_CREAT and flags & O_EXCL) or \
            flags & O_TMPFILE == O_TMPFILE or stat.S_ISLNK(st.st_mode):
        # a new file (O_EXCL: never anything that was there), or a link not followed
        if st is None and not flags & O_CREAT:
            raise Errno(errno.ENOENT)
        if not r.name:
            raise Errno(errno.EEXIST)
        if st is None:
            dac.may_create(r.dirfd)
        elif flags & O_TMPFILE == O_TMPFILE and stat.S_ISDIR(st.st_mode):
            dac.need(obj, dac.MAY_WRITE | dac.MAY_EXEC, st)
        umask = umask_of(call.tid) if flags & (O_CREAT | __O_TMPFILE) else 0
        opener = _Opener(os.dup(r.dirfd), r.name, real_flags | O_NOFOLLOW | (
            O_EXCL if st is None and flags & O_CREAT else 0), mode & 0o7777 & ~umask)
    else:
        if stat.S_ISDIR(st.st_mode) and flags & O_CREAT:
            raise Errno(errno.EISDIR)
        if flags & O_CREAT:
            dac.may_create_in_sticky(r.dirfd, obj, st)
        dac.may_open(obj, st, flags)
        if devices.is_device(st.st_mode):
            devices.gate(call.sb.mounts, None if r.name else r.mount, stat.S_IFMT(st.st_mode),
                         st.st_rdev, flags, call.proc.cred)
        elif call.sb.fake_ids and stat.S_ISREG(st.st_mode) and not st.st_size:
            target = fakefs.device_record(call, obj, flags)
        opener = _Opener(os.dup(obj) if target < 0 else target, None,
                         real_flags & ~(O_CREAT | O_NOFOLLOW), 0)
    if st is not None and stat.S_ISFIFO(st.st_mode) and not flags & os.O_NONBLOCK:
        # waits for the fifo's other end
        return deferred.defer(call, (r.guest, real_flags), lambda: _do_open(opener, cloexec),
                              opener.close)
    new = bool(flags & O_CREAT) and st is None and fakefs.creator(call)
    try:
        with as_tracee(call.proc.cred, call.sb,
                       exact=st is not None and devices.is_device(st.st_mode)):
            result = _do_open(opener, cloexec)
    except Errno as exc:
        if exc.errno == errno.EEXIST and st is None and not flags & O_EXCL:
            raise _Again from None          # made by another meanwhile: open that
        if exc.errno == errno.ELOOP and follow:
            raise _Again from None
        raise
    if new:
        fakefs.own_new(call, r, result.fd)
    return result


class _Opener:
    """One open (name in the directory fd, or with name None the object fd
    itself, through /proc/self/fd) of descriptors it owns (the
    supervisor's umask off: the caller's is in perm), made now or on a
    fifo's thread."""

    def __init__(self, fd: int, name: bytes | None, flags: int, perm: int) -> None:
        self.fd, self.name, self.flags, self.perm = fd, name, flags, perm

    def __call__(self) -> int:
        old = os.umask(0)
        try:
            if self.name is None:
                return os.open(b"/proc/self/fd/%d" % self.fd, self.flags)
            return os.open(self.name, self.flags, self.perm, dir_fd=self.fd)
        finally:
            os.umask(old)
            self.close()

    def close(self) -> None:
        if self.fd != AT_FDCWD:
            os.close(self.fd)
            self.fd = AT_FDCWD


def _do_open(opener: Callable[[], int], cloexec: bool) -> Inject:
    try:
        return Inject(opener(), cloexec)
    except OSError as exc:
        raise oserror(exc) from None


def _open_proc(call: Call, r: Resolved, flags: int, mode: int, cloexec: bool) -> Inject:
    """procfs, on its host path (the container cannot change procfs); what
    would show host PIDs is opened from the container's own version. A
    magic link is followed once (O_PATH) and what it led to is checked
    and opened: a device node held through one meets the device gate."""
    assert r.proc is not None
    host = r.proc
    if r.magic:
        reopen_check(call, host, flags)
    elif flags & O_ACCMODE == os.O_RDONLY:
        host = proc_view(call, r) or host
    if r.readonly and flags & O_ACCMODE != os.O_RDONLY:
        raise Errno(errno.EROFS)
    try:
        obj = os.open(host, O_PATH | os.O_CLOEXEC | (flags & O_NOFOLLOW))
    except OSError as exc:
        if not flags & O_CREAT:
            raise oserror(exc) from None
        return _do_open(_Opener(AT_FDCWD, host, flags, mode & 0o7777), cloexec)
    try:
        st = os.fstat(obj)
        if devices.is_device(st.st_mode):
            devices.gate(call.sb.mounts, None, stat.S_IFMT(st.st_mode), st.st_rdev, flags,
                         call.proc.cred)
        devices.proc_kmsg(st, call.proc.cred)
    except BaseException:
        os.close(obj)
        raise
    with as_tracee(call.proc.cred, call.sb, exact=True):
        return _do_open(_Opener(obj, None, flags & ~(O_CREAT | O_NOFOLLOW), 0), cloexec)


def proc_view(call: Call, r: Resolved) -> bytes | None:
    """/proc files and listings that would show host PIDs or names are
    opened from the container's own version (brandpy/runtime/procfs.py)."""
    procfs = call.sb.procfs
    rel = tuple(c for c in r.guest.split(b"/") if c)[1:]    # below /proc
    host = procfs.listing(rel)
    if host is None:
        content = procfs.synthesize(call.proc, rel, call.tid)
        if content is None:
            return None
        host = procfs.materialize(call.tid, content)
    return host


def open_(call: Call) -> int | Inject | None:
    return open_how(call, None, 0, call.iarg(1), call.arg(2))


def creat(call: Call) -> int | Inject | None:
    return open_how(call, None, 0, O_CREAT | os.O_WRONLY | O_TRUNC, call.arg(1))


def openat(call: Call) -> int | Inject | None:
    return open_how(call, 0, 1, call.iarg(2), call.arg(3))


def openat2_how(call: Call) -> tuple[int, int, int]:
    """openat2's struct open_how, read once: (flags, mode, resolve)."""
    size = call.arg(3)
    if size < 24 or size > 4096:
        raise Errno(errno.E2BIG if size > 4096 else errno.EINVAL)
    how = call.read(call.arg(2), size)
    if any(how[24:]):
        raise Errno(errno.E2BIG)
    flags, mode, resolve_flags = struct.unpack_from("<QQQ", how)
    if flags >> 32 or mode >> 12 or (mode and not flags & (O_CREAT | __O_TMPFILE)):
        raise Errno(errno.EINVAL)
    if resolve_flags & ~RESOLVE_ALL or resolve_flags & SCOPED == SCOPED:
        raise Errno(errno.EINVAL)
    if resolve_flags & RESOLVE_CACHED and flags & (O_CREAT | O_TRUNC | __O_TMPFILE):
        raise Errno(errno.EAGAIN)
    return flags, mode, resolve_flags
