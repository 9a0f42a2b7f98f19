"""Linux's discretionary access control, for emulated identities.

Unprivileged, the container's users are emulated over one host user
(fsmeta.py's fake ownership): the host kernel sees every container process
as the file's owner and checks nothing between them. What it would check
with real credentials is checked here instead, with the emulated
credentials of whoever the supervisor performs for (acting.as_tracee) and
the ownership and mode the container sees: search permission at each step
of the path walk (pathres.py), and read, write and execute permission,
the parent's write and search permission, the sticky bit, protected
hardlinks, user.* xattrs and owner-only changes in the handlers, as
fs/namei.c, fs/attr.c and fs/xattr.c do (generic_permission, may_delete,
may_create, may_linkat, setattr_prepare, xattr_permission). CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER
bypass them as on Linux; POSIX ACLs are not emulated.

With real credentials (the supervisor runs as root) the kernel makes these
checks itself on the calls performed as the caller; `allowed` asks it, for
the calls that are checked without being performed (access, chdir, exec)
and for `..`, which the walk takes lexically.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import replace

from brandpy import fsmeta
from brandpy.fsmeta import Override

from .acting import acting_cred, emulated_cred
from .errors import Errno
from .identity import Cred

MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def _self(fd: int) -> bytes:
    return b"/proc/self/fd/%d" % fd


def view(fd: int, st: os.stat_result | None = None) -> Override:
    """Ownership and mode the container sees of the file fd holds (O_PATH
    or not): its override, read through the fd's magic link (the xattr
    calls take no O_PATH fd), or the default view."""
    if st is None:
        st = os.fstat(fd)
    if not stat.S_ISLNK(st.st_mode):
        try:
            return Override.decode(os.getxattr(_self(fd), fsmeta.XATTR))
        except (OSError, ValueError):
            pass
    return fsmeta.default_view(st)


def _subject(cred: Cred, fd: int, st: os.stat_result | None = None) -> Override:
    """view() for a check. Symlinks, fifos and sockets take no user.*
    xattr, so their owner is never recorded: the caller is taken for it
    (a user's own fifo or symlink must stay theirs; the mode still counts)."""
    if st is None:
        st = os.fstat(fd)
    ov = view(fd, st)
    if stat.S_ISLNK(st.st_mode) or stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        return replace(ov, uid=cred.fsuid, gid=cred.fsgid)
    return ov


# -- the rules, on what the container sees -----------------------------------------

def in_group(cred: Cred, gid: int) -> bool:
    return gid == cred.fsgid or gid in cred.groups


def permission(cred: Cred, ov: Override, mask: int) -> bool:
    """generic_permission(): the owner's, group's or others' bits, then the
    capabilities that override them."""
    bits = ov.mode >> 6 if cred.fsuid == ov.uid else \
        ov.mode >> 3 if in_group(cred, ov.gid) else ov.mode
    if not mask & ~bits & 7:
        return True
    if ov.kind == "dir":
        if not mask & MAY_WRITE and cred.capable("CAP_DAC_READ_SEARCH"):
            return True
        return cred.capable("CAP_DAC_OVERRIDE")
    if mask == MAY_READ and cred.capable("CAP_DAC_READ_SEARCH"):
        return True
    return (not mask & MAY_EXEC or bool(ov.mode & 0o111)) and cred.capable("CAP_DAC_OVERRIDE")


def owner_or_capable(cred: Cred, ov: Override) -> bool:
    """inode_owner_or_capable()."""
    return cred.fsuid == ov.uid or cred.capable("CAP_FOWNER")


def _sure(cred: Cred, mask: int) -> bool:
    """Passes without looking at the file (the common root case)."""
    if mask & MAY_EXEC and not mask & MAY_WRITE:
        return False            # a file needs some x bit even for CAP_DAC_OVERRIDE
    return cred.capable("CAP_DAC_OVERRIDE")


def _checked(*caps: str) -> Cred | None:
    """The emulated credentials to check, unless they hold all of caps
    (then every check of the caller passes without looking at a file)."""
    cred = emulated_cred()
    return None if cred is None or cred.caps.issuperset(caps) else cred


NAMES_CAPS = ("CAP_DAC_OVERRIDE", "CAP_FOWNER")    # what passes may_delete and may_create
SEARCH_CAPS = frozenset({"CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH"})   # either passes a search


def _need(cred: Cred, fd: int, mask: int, st: os.stat_result | None = None) -> None:
    if not _sure(cred, mask) and not permission(cred, _subject(cred, fd, st), mask):
        raise Errno(errno.EACCES)


# -- checks of the emulated identity the supervisor acts for -------------------------

def search_checked(lexical: bool) -> bool:
    """Whether the walk must check search permission before a lookup: for
    an emulated identity without CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH;
    with real credentials the kernel checks its own lookups, and only a
    lexical `..` of another identity than the supervisor's is asked of it."""
    cred = emulated_cred()
    if cred is not None:
        return not cred.caps & SEARCH_CAPS
    return lexical and acting_cred() is not None


def search(fd: int) -> None:
    """MAY_EXEC on the directory fd, which the walk looks a name up in."""
    cred = emulated_cred()
    if cred is not None:
        _need(cred, fd, MAY_EXEC)
    elif not os.access(_self(fd), os.X_OK, effective_ids=True):
        raise Errno(errno.EACCES)


def allowed(fd: int, mask: int, st: os.stat_result | None = None) -> bool:
    """MAY_READ/WRITE/EXEC on the file fd holds, by the emulated rules or,
    with real credentials, the kernel's for the identity acted as."""
    cred = emulated_cred()
    if cred is None:
        return os.access(_self(fd), mask, effective_ids=True)
    return _sure(cred, mask) or permission(cred, _subject(cred, fd, st), mask)


def need(fd: int, mask: int, st: os.stat_result | None = None) -> None:
    """EACCES unless the emulated identity may (real credentials: the
    kernel checks the call performed)."""
    cred = emulated_cred()
    if cred is not None:
        _need(cred, fd, mask, st)


def may_open(fd: int, st: os.stat_result, flags: int) -> None:
    """may_open() of an existing file: the access mode and O_TRUNC ask
    for read and write permission; O_NOATIME is the owner's. A directory
    opened for writing is left to the kernel (EISDIR)."""
    cred = emulated_cred()
    if cred is None:
        return
    mask = (MAY_READ, MAY_WRITE, MAY_READ | MAY_WRITE, MAY_READ | MAY_WRITE)[flags & 3]
    if flags & os.O_TRUNC and not stat.S_ISFIFO(st.st_mode) and not stat.S_ISSOCK(st.st_mode):
        mask |= MAY_WRITE
    if stat.S_ISDIR(st.st_mode) and mask & MAY_WRITE:
        return
    ov = None if _sure(cred, mask) else _subject(cred, fd, st)
    if ov is not None and not permission(cred, ov, mask):
        raise Errno(errno.EACCES)
    if flags & os.O_NOATIME and not owner_or_capable(cred, ov or _subject(cred, fd, st)):
        raise Errno(errno.EPERM)


def _lookup(dirfd: int, name: bytes) -> int:
    """An O_PATH fd of name in dirfd, not followed; -1 when it is not there."""
    try:
        return os.open(name or b".", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    except OSError:
        return -1


def may_create(dirfd: int, name: bytes | None = None) -> None:
    """may_create(): a new name needs write and search permission on its
    directory. A name given that exists is left to the kernel (EEXIST
    comes first)."""
    cred = _checked("CAP_DAC_OVERRIDE")
    if cred is None:
        return
    if name is not None:
        fd = _lookup(dirfd, name)
        if fd >= 0:
            os.close(fd)
            return
    _need(cred, dirfd, MAY_WRITE | MAY_EXEC)


def _may_delete(cred: Cred, dirfd: int, victim: int) -> None:
    d = view(dirfd)
    if not _sure(cred, MAY_WRITE | MAY_EXEC) and not permission(cred, d, MAY_WRITE | MAY_EXEC):
        raise Errno(errno.EACCES)
    if d.mode & stat.S_ISVTX and cred.fsuid != d.uid and not cred.capable("CAP_FOWNER") \
            and cred.fsuid != _subject(cred, victim).uid:
        raise Errno(errno.EPERM)


def may_delete(dirfd: int, name: bytes) -> None:
    """may_delete() of name in dirfd: write and search permission on the
    directory (EACCES); in a sticky one, only the file's or the
    directory's owner, or CAP_FOWNER (EPERM). A missing name is left to
    the kernel (ENOENT)."""
    cred = _checked(*NAMES_CAPS)
    if cred is None:
        return
    victim = _lookup(dirfd, name)
    if victim >= 0:
        try:
            _may_delete(cred, dirfd, victim)
        finally:
            os.close(victim)


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def may_rename(old_dir: int, old: bytes, new_dir: int, new: bytes, flags: int) -> None:
    """vfs_rename()'s checks: the source may be deleted, the target made
    or deleted (replaced, or exchanged); a directory that moves to another
    parent needs write permission itself (its ".." changes). What the kernel
    refuses before them (ENOENT, EEXIST) is left to it."""
    cred = _checked(*NAMES_CAPS)
    if cred is None:
        return
    src = _lookup(old_dir, old)
    dst = _lookup(new_dir, new)
    try:
        if src < 0 or (dst < 0 and flags & RENAME_EXCHANGE) or \
                (dst >= 0 and flags & RENAME_NOREPLACE):
            return
        src_st = os.fstat(src)
        dst_st = os.fstat(dst) if dst >= 0 else None
        if dst_st is not None and _same(src_st, dst_st):
            return
        _may_delete(cred, old_dir, src)
        if dst < 0:
            _need(cred, new_dir, MAY_WRITE | MAY_EXEC)
        else:
            _may_delete(cred, new_dir, dst)
        if not _same(os.fstat(old_dir), os.fstat(new_dir)):
            if stat.S_ISDIR(src_st.st_mode):
                _need(cred, src, MAY_WRITE, src_st)
            if flags & RENAME_EXCHANGE and dst_st is not None and stat.S_ISDIR(dst_st.st_mode):
                _need(cred, dst, MAY_WRITE, dst_st)
    finally:
        for fd in (src, dst):
            if fd >= 0:
                os.close(fd)


def protected(name: str, unset: int = 0) -> int:
    """The host's fs.protected_NAME, which the container shares (`unset`
    where it cannot be read)."""
    try:
        with open(f"/proc/sys/fs/protected_{name}", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return unset


PROTECTED_HARDLINKS = protected("hardlinks", 1) != 0


def _fsuid() -> int:
    """The filesystem UID checked: the emulated identity's, or the real
    one the thread acts as (none: the supervisor's own)."""
    cred = emulated_cred() or acting_cred()
    return cred.fsuid if cred is not None else os.geteuid()


def may_follow_link(dirfd: int, name: bytes) -> None:
    """may_follow_link() under fs.protected_symlinks: a symlink in a sticky
    world-writable directory is followed only by its owner, or when it is
    the directory owner's (EACCES; no capability passes it). The walk
    follows symlinks itself, so the kernel never checks this. Emulated
    identities take each caller for a symlink's owner (none is recorded),
    which this never refuses."""
    if emulated_cred() is not None:
        return
    d = os.fstat(dirfd)
    if d.st_mode & (stat.S_ISVTX | stat.S_IWOTH) != stat.S_ISVTX | stat.S_IWOTH or \
            not protected("symlinks"):
        return
    owner = os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_uid
    if owner not in (d.st_uid, _fsuid()):
        raise Errno(errno.EACCES)


def may_create_in_sticky(dirfd: int, fd: int, st: os.stat_result) -> None:
    """may_create_in_sticky() for O_CREAT of a regular file or fifo that
    exists, under fs.protected_regular and fs.protected_fifos (read at each
    such open, as the kernel does): in a sticky directory, one that is
    neither the directory owner's nor the caller's is EACCES if the
    directory is world-writable, at 2 also if it is group-writable. No
    capability passes it. The kernel cannot check it: what the supervisor
    then opens is that inode, without O_CREAT."""
    kind = stat.S_IFMT(st.st_mode)
    if kind not in (stat.S_IFREG, stat.S_IFIFO):
        return
    cred = emulated_cred()
    d = view(dirfd)
    if not d.mode & stat.S_ISVTX:
        return
    level = protected("regular" if kind == stat.S_IFREG else "fifos")
    owner = _subject(cred, fd, st).uid if cred is not None else st.st_uid
    if not level or owner in (d.uid, _fsuid()):
        return
    if d.mode & stat.S_IWOTH or (level >= 2 and d.mode & stat.S_IWGRP):
        raise Errno(errno.EACCES)


def may_link(fd: int, st: os.stat_result) -> None:
    """may_linkat() under fs.protected_hardlinks (the host's setting, which
    the container shares): who is not the owner (nor CAP_FOWNER) may link
    only a regular file, not setuid nor setgid-executable, that they may
    read and write (EPERM)."""
    cred = _checked("CAP_FOWNER")
    if cred is None or not PROTECTED_HARDLINKS:
        return
    ov = _subject(cred, fd, st)
    if owner_or_capable(cred, ov):
        return
    safe = ov.kind == "file" and not ov.mode & stat.S_ISUID and \
        ov.mode & (stat.S_ISGID | stat.S_IXGRP) != stat.S_ISGID | stat.S_IXGRP and \
        permission(cred, ov, MAY_READ | MAY_WRITE)
    if not safe:
        raise Errno(errno.EPERM)


def may_set_times(fd: int, st: os.stat_result | None, explicit: bool) -> None:
    """setattr_prepare()/may_setattr() for utimensat: explicit times are the
    owner's (EPERM); "now" (NULL or UTIME_NOW twice) also whoever may
    write the file (EACCES)."""
    cred = _checked("CAP_FOWNER")
    if cred is None:
        return
    ov = _subject(cred, fd, st)
    if owner_or_capable(cred, ov):
        return
    if explicit:
        raise Errno(errno.EPERM)
    if not permission(cred, ov, MAY_WRITE):
        raise Errno(errno.EACCES)


def may_xattr(fd: int, st: os.stat_result, name: bytes, write: bool) -> None:
    """xattr_permission() for the user.* namespace: the file's read (get)
    or write (set, remove) permission decides, and a sticky directory's
    are its owner's (EPERM). Files of other kinds, which take no user.*
    xattrs, are left to the kernel."""
    cred = _checked(*NAMES_CAPS)
    if cred is None or not name.startswith(b"user."):
        return
    ov = view(fd, st)
    if ov.kind not in ("file", "dir"):
        return
    if write and ov.kind == "dir" and ov.mode & stat.S_ISVTX and not owner_or_capable(cred, ov):
        raise Errno(errno.EPERM)
    mask = MAY_WRITE if write else MAY_READ
    if not _sure(cred, mask) and not permission(cred, ov, mask):
        raise Errno(errno.EACCES)
