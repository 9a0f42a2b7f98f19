"""File ownership and modes when the supervisor is unprivileged
(fakeroot-style): chown, chmod of bits the host user cannot apply, and
device nodes are recorded in the file's `user.containers.override_stat`
xattr (brandpy/fsmeta.py) and reported back by every stat call, so tar,
dpkg and `ls -l` see what they set. The host user's own files appear owned
by the container's root; other host IDs appear as nobody.

Only the container's root may change other people's files (CAP_CHOWN,
CAP_FOWNER), as on Linux; permission checks between two non-root container
users are the host's (both are the same host user) — see README.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import replace

from brandpy import fsmeta
from brandpy.fsmeta import Override
from brandpy.runtime import statbuf
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.linux import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW

from .paths import check_fd_writable, private, private_fd, read_path, resolve, rewrite

OWNER_BITS_FILE = 0o600     # kept on the real file so the host user can still use it
OWNER_BITS_DIR = 0o700
F_OK, X_OK, W_OK, R_OK = 0, 1, 2, 4


# -- where the file is ----------------------------------------------------------

def _target(call: Call, dirfd_i: int | None, path_i: int | None, follow: bool,
            flags: int = 0) -> tuple[bytes, bool]:
    """(host path, read-only mount) of a path argument, or of the fd itself
    for fd calls and AT_EMPTY_PATH (through /proc/TID/fd/N, which the
    supervisor may open as the tracer)."""
    if path_i is None or (flags & AT_EMPTY_PATH and not read_path(call, path_i)):
        fd = call.iarg(0 if path_i is None or dirfd_i is None else dirfd_i)
        if fd == AT_FDCWD:
            return _fd_path(call, b"cwd"), False
        link = _fd_path(call, b"fd/%d" % fd)
        if not os.path.lexists(link):
            raise Errno(errno.EBADF)   # not ENOENT: CPython takes that for an odd file
        return link, False
    r = resolve(call, path_i, dirfd_i, follow=follow)
    return r.host, r.readonly


def _fd_path(call: Call, what: bytes) -> bytes:
    return b"/proc/%d/%s" % (call.tid, what)


def _via_fd(call: Call, host: bytes) -> bool:
    """A /proc/TID/{fd/N,cwd} link _target made: it must be followed."""
    return host.startswith(b"/proc/%d/" % call.tid) and (
        host.startswith(b"/proc/%d/fd/" % call.tid) or host.endswith(b"/cwd"))


def _lstat(host: bytes, follow: bool) -> os.stat_result:
    try:
        return os.stat(host, follow_symlinks=follow)
    except OSError as exc:
        raise Errno(exc.errno or errno.ENOENT) from None


def view(host: bytes, st: os.stat_result) -> Override:
    """What the container sees. The xattr is read following the path the
    way `st` was taken (an fd's /proc/TID/fd/N link leads to the file)."""
    if not stat.S_ISLNK(st.st_mode):
        try:
            return Override.decode(os.getxattr(host, fsmeta.XATTR))
        except (OSError, ValueError):
            pass
    return fsmeta.default_view(st)


# -- stat ---------------------------------------------------------------------------

def _stat(call: Call, host: bytes, follow: bool, buf_i: int) -> int:
    st = _lstat(host, follow)
    call.write(call.arg(buf_i), statbuf.pack_stat(st, view(host, st)))
    return 0


def stat_(call: Call) -> int:
    return _stat(call, _target(call, None, 0, True)[0], True, 1)


def lstat(call: Call) -> int:
    return _stat(call, _target(call, None, 0, False)[0], False, 1)


def fstat(call: Call) -> int:
    return _stat(call, _target(call, 0, None, True)[0], True, 1)


def newfstatat(call: Call) -> int:
    flags = call.iarg(3)
    follow = not flags & AT_SYMLINK_NOFOLLOW
    host, _ = _target(call, 0, 1, follow, flags)
    return _stat(call, host, follow or _via_fd(call, host), 2)


def statx(call: Call) -> int:
    flags, mask = call.iarg(2), call.arg(3) & 0xFFFFFFFF
    follow = not flags & AT_SYMLINK_NOFOLLOW
    if call.arg(1) == 0:
        host = _target(call, 0, None, True)[0]
    else:
        host, _ = _target(call, 0, 1, follow, flags)
    follow = follow or _via_fd(call, host)
    try:
        raw = statbuf.statx(AT_FDCWD, host, (flags & ~AT_EMPTY_PATH)
                            | (0 if follow else AT_SYMLINK_NOFOLLOW), mask)
    except OSError as exc:
        raise Errno(exc.errno or errno.ENOENT) from None
    st = _lstat(host, follow)
    call.write(call.arg(4), statbuf.patch_statx(raw, view(host, st)))
    return 0


# -- access ---------------------------------------------------------------------------

def _access(call: Call, dirfd_i: int | None, path_i: int, mode: int, flags: int) -> int | None:
    """The container's root passes every check a real root passes: the
    host user's own permission bits do not apply to it."""
    if call.proc.cred.fsuid != 0:
        host_r = resolve(call, path_i, dirfd_i, follow=not flags & AT_SYMLINK_NOFOLLOW)
        rewrite(call, host_r, path_i, dirfd_i)
        return None
    host, readonly = _target(call, dirfd_i, path_i, not flags & AT_SYMLINK_NOFOLLOW, flags)
    return root_access(host, readonly, mode, not flags & AT_SYMLINK_NOFOLLOW)


def root_access(host: bytes, readonly: bool, mode: int, follow: bool) -> int:
    """access() as root sees it: existence, read-only mounts, and X_OK needs
    some execute bit on a non-directory."""
    st = _lstat(host, follow)
    if mode & W_OK and readonly:
        raise Errno(errno.EROFS)
    if mode & X_OK and not stat.S_ISDIR(st.st_mode) and not view(host, st).mode & 0o111:
        raise Errno(errno.EACCES)
    return 0


def access(call: Call) -> int | None:
    return _access(call, None, 0, call.iarg(1), 0)


def faccessat(call: Call) -> int | None:
    return _access(call, 0, 1, call.iarg(2), 0)


def faccessat2(call: Call) -> int | None:
    return _access(call, 0, 1, call.iarg(2), call.iarg(3))


# -- chown and chmod ----------------------------------------------------------------

def _own_copy(call: Call, host: bytes) -> bytes:
    """Copy an image file up before changing it; an fd's file is then
    changed through its new path."""
    prefix = b"/proc/%d/fd/" % call.tid
    if host.startswith(prefix):
        return private_fd(call, int(host[len(prefix):])) or host
    private(host)
    return host


def _chown(call: Call, host: bytes, readonly: bool, follow: bool, uid: int, gid: int) -> int:
    if readonly:
        raise Errno(errno.EROFS)
    host = _own_copy(call, host)
    st = _lstat(host, follow)
    old = view(host, st)
    c = call.proc.cred
    if not c.capable("CAP_CHOWN") and (
            (uid != -1 and uid != old.uid) or c.fsuid != old.uid
            or (gid != -1 and gid != old.gid and gid not in c.groups and gid != c.fsgid)):
        raise Errno(errno.EPERM)
    new_uid = old.uid if uid == -1 else uid
    new_gid = old.gid if gid == -1 else gid
    mode = old.mode
    if not stat.S_ISDIR(st.st_mode) and (uid != -1 or gid != -1):
        mode &= ~0o4000                     # chown clears set-user-ID
        if mode & 0o010:
            mode &= ~0o2000                 # and set-group-ID on group-executable files
    if stat.S_ISLNK(st.st_mode):
        return 0   # symlinks cannot carry the xattr: their ownership is not recorded
    _record(host, st, Override(new_uid, new_gid, mode, old.kind, old.rdev))
    return 0


def _record(host: bytes, st: os.stat_result, ov: Override) -> None:
    """Store an override (on the file `host` leads to), or drop it when the
    default view says the same. user.* xattrs need write permission, which a
    file created with mode 0 (dpkg does that) lacks even for its owner: lend
    it owner-write for the moment."""
    lend = not st.st_mode & 0o200 and not stat.S_ISLNK(st.st_mode)
    try:
        if lend:
            os.chmod(host, stat.S_IMODE(st.st_mode) | 0o200)
        try:
            if ov == fsmeta.default_view(st):
                os.removexattr(host, fsmeta.XATTR)
            else:
                os.setxattr(host, fsmeta.XATTR, ov.encode())
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                raise
        finally:
            if lend:
                os.chmod(host, stat.S_IMODE(st.st_mode))
    except OSError as exc:
        raise Errno(exc.errno or errno.EPERM) from None


def creator(call: Call) -> bool:
    """Whether what this caller creates needs its owner recorded: the
    container's root creates files as the host user, which the default view
    already shows as root; anyone else's must say who they are."""
    c = call.proc.cred
    return call.sb.fake_ids and (c.fsuid, c.fsgid) != (0, 0)


def own_new(call: Call, host: bytes) -> None:
    """Record the caller as the owner of the file it just created at host."""
    try:
        st = os.lstat(host)
    except OSError:
        return   # gone already
    if not stat.S_ISLNK(st.st_mode):
        c = call.proc.cred
        _record(host, st, replace(Override.from_stat(st), uid=c.fsuid, gid=c.fsgid))


def own_after(call: Call, host: bytes) -> None:
    """own_new once the kernel's call (rewritten to host) succeeds."""
    call.after(lambda c, result: own_new(c, host) if result >= 0 else None)


def _ids(call: Call, i: int) -> int:
    v = call.arg(i) & 0xFFFFFFFF
    return -1 if v == 0xFFFFFFFF else v


def chown(call: Call) -> int:
    host, ro = _target(call, None, 0, True)
    return _chown(call, host, ro, True, _ids(call, 1), _ids(call, 2))


def lchown(call: Call) -> int:
    host, ro = _target(call, None, 0, False)
    return _chown(call, host, ro, False, _ids(call, 1), _ids(call, 2))


def fchown(call: Call) -> int:
    check_fd_writable(call, call.iarg(0))
    return _chown(call, _target(call, 0, None, True)[0], False, True,
                  _ids(call, 1), _ids(call, 2))


def fchownat(call: Call) -> int:
    flags = call.iarg(4)
    follow = not flags & AT_SYMLINK_NOFOLLOW
    host, ro = _target(call, 0, 1, follow, flags)
    return _chown(call, host, ro, follow or _via_fd(call, host),
                  _ids(call, 2), _ids(call, 3))


def _chmod(call: Call, host: bytes, readonly: bool, follow: bool, mode: int) -> int:
    if readonly:
        raise Errno(errno.EROFS)
    host = _own_copy(call, host)
    st = _lstat(host, follow)
    if stat.S_ISLNK(st.st_mode):
        raise Errno(errno.EOPNOTSUPP)       # as fchmodat(AT_SYMLINK_NOFOLLOW) on Linux
    old = view(host, st)
    c = call.proc.cred
    if not c.capable("CAP_FOWNER") and c.fsuid != old.uid:
        raise Errno(errno.EPERM)
    mode &= 0o7777
    if (not c.capable("CAP_FSETID") and old.gid != c.fsgid and old.gid not in c.groups):
        mode &= ~0o2000
    keep = OWNER_BITS_DIR if stat.S_ISDIR(st.st_mode) else OWNER_BITS_FILE
    try:
        os.chmod(host, (mode | keep) & 0o777 | mode & 0o1000)
    except OSError as exc:
        raise Errno(exc.errno or errno.EPERM) from None
    st = _lstat(host, follow)
    _record(host, st, Override(old.uid, old.gid, mode, old.kind, old.rdev))
    return 0


def chmod(call: Call) -> int:
    host, ro = _target(call, None, 0, True)
    return _chmod(call, host, ro, True, call.arg(1))


def fchmod(call: Call) -> int:
    check_fd_writable(call, call.iarg(0))
    return _chmod(call, _target(call, 0, None, True)[0], False, True, call.arg(1))


def fchmodat(call: Call) -> int:
    host, ro = _target(call, 0, 1, True)
    return _chmod(call, host, ro, True, call.arg(2))


def fchmodat2(call: Call) -> int:
    flags = call.iarg(3)
    follow = not flags & AT_SYMLINK_NOFOLLOW
    host, ro = _target(call, 0, 1, follow, flags)
    return _chmod(call, host, ro, follow or _via_fd(call, host), call.arg(2))


# -- device nodes ------------------------------------------------------------------

def _mknod(call: Call, dirfd_i: int | None, path_i: int, mode: int, dev: int) -> int | None:
    """Character and block devices become empty files whose override names
    them (opening one gives the file, not the device); fifos and sockets are
    real."""
    kind = stat.S_IFMT(mode)
    r = resolve(call, path_i, dirfd_i, follow=False)
    if r.readonly:
        raise Errno(errno.EROFS)
    if kind not in (stat.S_IFCHR, stat.S_IFBLK):
        rewrite(call, r, path_i, dirfd_i)
        if creator(call):
            own_after(call, r.host)
        return None
    if not call.proc.cred.capable("CAP_MKNOD"):
        raise Errno(errno.EPERM)
    try:
        fd = os.open(r.host, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise Errno(exc.errno or errno.EPERM) from None
    os.close(fd)
    c = call.proc.cred
    perm = mode & 0o7777 & ~process_umask(call.tid)
    fsmeta.write(r.host, Override(c.fsuid, c.fsgid, perm,
                                  "char" if kind == stat.S_IFCHR else "block", dev))
    return 0


def process_umask(tid: int) -> int:
    try:
        with open(b"/proc/%d/status" % tid, "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def mknod(call: Call) -> int | None:
    return _mknod(call, None, 0, call.arg(1) & 0xFFFFFFFF, call.arg(2))


def mknodat(call: Call) -> int | None:
    return _mknod(call, 0, 1, call.arg(2) & 0xFFFFFFFF, call.arg(3))
